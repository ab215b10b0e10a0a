// A read-only follower of one node's document over the mesh sync endpoint (a `follower` mesh
// token, stock y-protocols framing): it asks for everything with an empty SyncStep1, then applies
// every Update the node forwards. The node forwards each update right after making it durable, so
// what a follower holds, and when it got it, tells what the node holds and since when, without
// polling the node. Used by the benchmarks to time replication and convergence.

import WebSocket from 'ws'
import * as Y from 'yjs'
import * as protocol from '../../src/mesh/protocol'
import * as meshToken from '../../src/mesh/token'

export type Follower = {
  readonly node: string
  /** The document's name, e.g. `shard/3`. */
  readonly doc: string
  readonly ydoc: Y.Doc
  /** Resolves once the node's first SyncStep2 (everything it held) was applied. */
  readonly synced: Promise<void>
  /** Bytes of every frame received. */
  bytesIn(): number
  /** When (ms since the epoch) the last update arrived; 0 before any. */
  lastArrivalMs(): number
  stateVector(): Map<number, number>
  close(): void
}

export type FollowOptions = {
  /** Called for every update applied, with when it arrived (ms since the epoch). */
  onUpdate?: (update: Uint8Array, arrivedAtMs: number, follower: Follower) => void
  timeoutMs?: number
  /** Id in the follower token (any; it names the follower in the node's logs). */
  id?: string
}

const epochMs = () => performance.timeOrigin + performance.now()

export async function follow(
  node: string,
  baseUrl: string,
  meshSecret: string,
  doc: string,
  options: FollowOptions = {},
): Promise<Follower> {
  const token = await meshToken.issue(
    meshSecret,
    { role: 'follower', id: options.id ?? 'bench' },
    doc,
    Date.now() + 24 * 3_600_000,
  )
  const url = `${baseUrl.replace(/^http/, 'ws')}/v1/mesh/sync/${doc}?token=${encodeURIComponent(token)}`
  const socket = new WebSocket(url, { perMessageDeflate: false })
  const ydoc = new Y.Doc()
  let bytes = 0
  let lastArrival = 0
  let markSynced!: () => void
  let failSync!: (error: Error) => void
  const synced = new Promise<void>((resolve, reject) => {
    markSynced = resolve
    failSync = reject
  })
  synced.catch(() => undefined)
  const follower: Follower = {
    node,
    doc,
    ydoc,
    synced,
    bytesIn: () => bytes,
    lastArrivalMs: () => lastArrival,
    stateVector: () => Y.decodeStateVector(Y.encodeStateVector(ydoc)),
    close: () => socket.terminate(),
  }
  const timer = setTimeout(
    () =>
      failSync(new Error(`${node} ${doc}: no SyncStep2 within ${options.timeoutMs ?? 30_000} ms`)),
    options.timeoutMs ?? 30_000,
  )
  socket.on('error', (error) => failSync(error))
  socket.on('close', () => failSync(new Error(`${node} ${doc}: closed before SyncStep2`)))
  socket.on('open', () => socket.send(protocol.writeSyncStep1(Y.encodeStateVector(new Y.Doc()))))
  socket.on('message', (data: Buffer) => {
    const arrivedAt = epochMs()
    bytes += data.length
    const frame = protocol.readFrame(new Uint8Array(data.buffer, data.byteOffset, data.length))
    if (frame.type !== 'sync_step2' && frame.type !== 'update') return
    lastArrival = arrivedAt
    Y.applyUpdate(ydoc, frame.update, 'node')
    options.onUpdate?.(frame.update, arrivedAt, follower)
    if (frame.type === 'sync_step2') {
      clearTimeout(timer)
      markSynced()
    }
  })
  await synced
  return follower
}

/** Whether `vector` holds at least every clock of `target`. */
export function covers(vector: Map<number, number>, target: Map<number, number>): boolean {
  for (const [client, clock] of target) if ((vector.get(client) ?? 0) < clock) return false
  return true
}

/** The union (clock-wise maximum) of state vectors. */
export function unionOf(vectors: Map<number, number>[]): Map<number, number> {
  const union = new Map<number, number>()
  for (const vector of vectors) {
    for (const [client, clock] of vector) union.set(client, Math.max(union.get(client) ?? 0, clock))
  }
  return union
}
