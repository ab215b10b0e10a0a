// What both replica classes do to take part in the mesh: hold the replication of their document,
// accept the inbound sockets the Worker hands them, finish a repair of damaged storage once enough
// peers have synced, keep their dialled links up from an alarm that also runs compaction when it
// is due, and share with the node's other replicas that a peer is reachable (so their links to it
// redial at once, not each on its own backoff).

import * as Y from 'yjs'
import type { Env, NodeConfig } from '../config'
import { maintenanceIntervalMs } from '../constants'
import { ok, reject, type Result } from '../domain/result'
import * as replication from '../mesh/replication'
import type { PeerRole } from '../mesh/token'
import { findings, writeOnce } from '../state/shard-doc'
import { nodeReplicas } from './addressing'
import { checksum } from './checksum'
import * as durable from './durable-doc'
import * as clock from '../clock'

/** Header by which the Worker, having verified a mesh token, tells a replica who connects. */
export const peerHeader = 'X-Clearmesh-Peer'

/** The name a document has on every node: its replica's name without the node id. */
export const linkName = (replicaName: string): string =>
  replicaName.slice(replicaName.indexOf('/') + 1)

/**
 * Peers whose completed sync ends a repair: a write acknowledged under `quorum` is held by a
 * majority of the N nodes, this one among them, so by at least majority - 1 of the N - 1 peers;
 * any N - majority + 1 peers include one of those. With no peers there is nobody to repair from.
 */
const peersToRepair = (config: NodeConfig): number =>
  config.peers.size + 1 - replication.majorityOf(config) + 1

export function attach(
  env: Env,
  config: NodeConfig,
  held: durable.DurableDoc,
  onRemote: () => void,
): replication.Replication {
  held.peersToRepair = peersToRepair(config)
  const mesh = replication.create(
    linkName(held.name),
    held,
    config,
    (url, init) => fetch(url, init),
    (peer, event) => {
      if (event === 'caught_up') {
        const report = durable.peerSynced(held, peer)
        if (report !== undefined) recordRepair(config, held, report)
      }
      onRemote()
    },
    (peer) => promptOthers(env, config, held.name, peer),
  )
  replication.start(mesh)
  return mesh
}

/** A finished repair becomes a finding of the document, replicated to every node. */
function recordRepair(
  config: NodeConfig,
  held: durable.DurableDoc,
  report: durable.RepairReport,
): void {
  const id = `repair/${report.doc}/${report.startedAt}`
  const kept = report.quarantined.map((row) => `${row.source} ${row.seq}: ${row.outcome}`)
  const message =
    `${report.doc} repaired from ${report.peers.join(', ')} in ` +
    `${report.finishedAt - report.startedAt} ms after ${report.damage.where}: ` +
    `${report.damage.reason}; quarantined ${kept.join('; ') || 'nothing'}` +
    (report.mayHaveLost
      ? '. Writes in a quarantined row no peer held (acknowledged under local durability, ' +
        'not replicated before the damage) are lost; the rows are kept as evidence'
      : '')
  console.error(JSON.stringify({ msg: 'document repaired', ...report }))
  durable.write(held, config.nodeId, (doc) =>
    writeOnce(findings(doc), id, {
      id,
      kind: 'repair',
      invariant: 'I2',
      accountId: null,
      message,
      evidence: report,
      ts: report.finishedAt,
      node: config.nodeId,
    }),
  )
}

/**
 * Tells every other replica of this node that `peer` is reachable: each one whose link to it is
 * down redials now. A replica that cannot be told redials on its own backoff.
 */
function promptOthers(env: Env, config: NodeConfig, self: string, peer: string): void {
  for (const { name, stub } of nodeReplicas(env, config)) {
    if (name === self) continue
    stub.peerReachable(peer).catch((error: unknown) => {
      console.error(JSON.stringify({ msg: 'peer prompt failed', to: name, error: String(error) }))
    })
  }
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
  if (down) await durable.alarmBy(storage, clock.now() + maintenanceIntervalMs)
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
  // Like a peer's live update: replicas fold it in; it is no peer's sync, so no repair counts it.
  mesh.onRemote('snapshot', 'update')
  return held.state.ok
    ? ok({ stateVector: Y.encodeStateVector(held.state.doc) })
    : reject('shard_damaged', durable.damageMessage(held))
}
