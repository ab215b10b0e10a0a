// What both replica classes do to take part in the mesh: hold the replication of their document,
// accept the inbound sockets the Worker hands them, and keep their dialled links up from an alarm
// that also runs compaction when it is due.

import * as Y from 'yjs'
import type { NodeConfig } from '../config'
import { maintenanceIntervalMs } from '../constants'
import { ok, reject, type Result } from '../domain/result'
import * as replication from '../mesh/replication'
import type { PeerRole } from '../mesh/token'
import { checksum } from './checksum'
import * as durable from './durable-doc'

/** Header by which the Worker, having verified a mesh token, tells a replica who connects. */
export const peerHeader = 'X-Clearmesh-Peer'

/** The name a document has on every node: its replica's name without the node id. */
export const linkName = (replicaName: string): string =>
  replicaName.slice(replicaName.indexOf('/') + 1)

export function attach(
  config: NodeConfig,
  held: durable.DurableDoc,
  onRemote: () => void,
): replication.Replication {
  const mesh = replication.create(
    linkName(held.name),
    held,
    config,
    (url, init) => fetch(url, init),
    onRemote,
  )
  replication.start(mesh)
  return mesh
}

/** Answers the Worker's forwarded upgrade with the replica's end of a new socket. */
export function acceptUpgrade(mesh: replication.Replication, request: Request): Response {
  const [role, id] = (request.headers.get(peerHeader) ?? '').split('.')
  if (
    (role !== 'node' && role !== 'follower') ||
    id === undefined ||
    request.headers.get('Upgrade') !== 'websocket'
  ) {
    return new Response('expected a verified mesh upgrade', { status: 400 })
  }
  const pair = new WebSocketPair()
  replication.accept(mesh, pair[1], { role: role as PeerRole, id })
  return new Response(null, { status: 101, webSocket: pair[0] })
}

/** The alarm: compaction when due, redial while any dialled peer is down. */
export async function maintain(
  storage: DurableObjectStorage,
  held: durable.DurableDoc,
  mesh: replication.Replication,
): Promise<void> {
  if (durable.compactionDue(held)) durable.compact(held)
  replication.start(mesh)
  const down = replication.status(mesh).some((link) => link.state === 'down')
  if (down && (await storage.getAlarm()) === null)
    await storage.setAlarm(Date.now() + maintenanceIntervalMs)
}

/** A document's whole state at one instant: the update that rebuilds it, its state vector. */
export type Snapshot = {
  doc: string
  update: Uint8Array
  stateVector: Uint8Array
  checksum: string
}

export function snapshot(held: durable.DurableDoc): Result<Snapshot, 'shard_damaged'> {
  if (!held.state.ok) return reject('shard_damaged', durable.damageMessage(held))
  const update = Y.encodeStateAsUpdate(held.state.doc)
  return ok({
    doc: linkName(held.name),
    update,
    stateVector: Y.encodeStateVector(held.state.doc),
    checksum: checksum(update),
  })
}

/** Updates of a restore are applied under this origin: forwarded to every peer, as a peer's are. */
const restoreOrigin = 'peer:snapshot'

/**
 * Loads a snapshot's update the way a peer's update is taken: decoded first, then the document's
 * remote checks and the durable apply-and-append in one storage transaction, then whatever
 * follows a peer's update (markets catch their matcher state up). Anything refused changes nothing.
 */
export function restore(
  mesh: replication.Replication,
  update: Uint8Array,
): Result<{ stateVector: Uint8Array }, 'shard_damaged' | 'snapshot_refused'> {
  const { held } = mesh
  if (!held.state.ok) return reject('shard_damaged', durable.damageMessage(held))
  try {
    Y.decodeUpdate(update)
  } catch (error) {
    return reject('snapshot_refused', `the snapshot is not a Yjs update: ${String(error)}`)
  }
  try {
    durable.applyRemote(held, restoreOrigin, update)
  } catch (error) {
    if (error instanceof durable.RemoteRefused) {
      return reject(
        'snapshot_refused',
        `the snapshot breaks ${held.name}'s rules: ${error.message}`,
      )
    }
    throw error
  }
  mesh.onRemote()
  return held.state.ok
    ? ok({ stateVector: Y.encodeStateVector(held.state.doc) })
    : reject('shard_damaged', durable.damageMessage(held))
}
