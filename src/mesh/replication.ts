// Replication of one durable document over mesh links (y-protocols sync, see protocol.ts).
//
// Every pair of nodes shares one link per document: the node with the smaller id dials, the other
// accepts, and both speak the same protocol over it. On open each side sends SyncStep1; each
// answers with SyncStep2; then every update either side makes durable is forwarded as Update.
// What a peer sends is applied and persisted (the same apply-and-append as a client write) before
// it counts as held, then acknowledged with Held. Heartbeats find dead links; a closed dialled link
// redials with jittered exponential backoff. A malformed frame, or a write from a follower, closes
// the link and changes nothing.
//
// Whether a peer is reachable is a fact about the node, not the link: when a dialled link to a
// peer opens on its own backoff, the node is told (`onPeerUp`) and prompts every other replica's
// link to that peer to redial at once (`prompt`), instead of each waiting out its own backoff. A
// catch-up travels as a sequence of bounded updates, each applied and persisted on its own
// (catch-up.ts), asked of one peer at a time.

import * as Y from 'yjs'
import type { Durability } from '../config'
import * as liveness from '../domain/liveness'
import { reject, type Rejected } from '../domain/result'
import {
  catchUpPieceBytesMax,
  catchUpPiecesPerTurn,
  dialTimeoutMs,
  fragmentBytesMax,
  frameBytesMax,
  heartbeatIntervalMs,
  heartbeatTimeoutMs,
  linkUnacknowledgedMax,
  meshTokenLifetimeMs,
  peerPromptIntervalMsMin,
  quorumTimeoutMs,
  reconnectDelayMsMax,
  reconnectDelayMsMin,
} from '../constants'
import * as durable from '../replica/durable-doc'
import * as outbox from '../replica/outbox'
import { catchUpPieces } from './catch-up'
import * as protocol from './protocol'
import * as token from './token'
import { dial, type Dialer } from './transport'
import * as clock from '../clock'

export type MeshConfig = { nodeId: string; peers: Map<string, string>; meshSecret: string }

export type LinkStats = {
  peer: string
  role: token.PeerRole
  direction: 'in' | 'out'
  openedAt: number
  lastHeardAt: number
  bytesIn: number
  bytesOut: number
  updatesIn: number
  updatesOut: number
  /** The peer's state vector as last told (its SyncStep1 or Held). */
  peerStateVector: Map<number, number>
  /** Updates sent since the peer last acknowledged with Held: the link's outbound backlog. */
  unacknowledged: number
  /**
   * The highest lease term the peer had promised when it last told its state (a Held in term);
   * unknown (Infinity) on documents without leases and after a SyncStep1, which carries none.
   */
  peerPromisedTerm: number
}

/**
 * Where this replica stands in catching up from a link's peer: its SyncStep1 not sent yet
 * (deferred while another link catches it up, since both peers would send the same; a Held tells
 * the peer this replica's state meanwhile), sent, the peer's state vector known (what its answer
 * will cover) and not covered yet, or caught up.
 */
type CatchUpFrom = 'deferred' | 'asked' | Map<number, number> | 'done'

export type RemoteEvent = 'update' | 'caught_up'

/**
 * A link, the fragments of a large frame it is receiving, and, while catch-ups are being sent on
 * it, how many and the updates that wait for them to end (they may depend on what is not sent).
 */
type Link = {
  socket: WebSocket
  stats: LinkStats
  fragments: Uint8Array[]
  catchUps: number
  backlog: Uint8Array[]
  from: CatchUpFrom
  /** The first state vector the peer sent (its SyncStep1, or a Held if it deferred asking). */
  announced: Map<number, number> | null
}

type Redial = {
  attempt: number
  reconnects: number
  /** Redials made at once because the node learnt the peer is reachable (see `prompt`). */
  prompted: number
  promptedAt: number
  timer: ReturnType<typeof setTimeout> | null
  /** A dial is in flight: neither a timer nor a prompt starts another. */
  dialing: boolean
  lastError: string | null
}

export type Replication = {
  doc: string
  held: durable.DurableDoc
  config: MeshConfig
  fetcher: Dialer
  links: Set<Link>
  redials: Map<string, Redial>
  heartbeat: ReturnType<typeof setInterval> | null
  /** When each peer node was last heard on any link of this document: kept after links close. */
  lastHeard: Map<string, number>
  /**
   * Called after updates from a peer node were made durable (markets catch their state up), and
   * with `caught_up` once this replica holds everything the peer announced on a link (a catch-up
   * may take many frames): repair and a starting home matcher count those.
   */
  onRemote: (peer: string, event: RemoteEvent) => void
  /** Called when a link this replica dialled on its own backoff opens: the peer is reachable. */
  onPeerUp: (peer: string) => void
  /** Writes waiting for a majority of nodes to hold them; bounded by their timeouts. */
  quorumWaiters: Set<QuorumWaiter>
  /** Takes the lease frames a peer node sends (market documents, lease-agent.ts); null elsewhere. */
  onLease: ((peer: string, frame: protocol.LeaseFrame) => void) | null
  /** The highest lease term this node promised (market documents): its Helds carry it. */
  promisedTerm: (() => number) | null
}

/**
 * A write waiting until enough peers hold `target` (this replica's state vector after it); for a
 * matcher step of `term`, only peers that had promised no higher term count.
 */
type QuorumWaiter = {
  target: Map<number, number>
  term: number | null
  peersNeeded: number
  done: () => void
}

export function create(
  doc: string,
  held: durable.DurableDoc,
  config: MeshConfig,
  fetcher: Dialer,
  onRemote: Replication['onRemote'],
  onPeerUp: (peer: string) => void,
): Replication {
  const replication: Replication = {
    doc,
    held,
    config,
    fetcher,
    links: new Set(),
    redials: new Map(),
    heartbeat: null,
    lastHeard: new Map(),
    onRemote,
    onPeerUp,
    quorumWaiters: new Set(),
    onLease: null,
    promisedTerm: null,
  }
  outbox.subscribe(held.outbox, (update) => forward(replication, update))
  return replication
}

/** Dials every peer this node is the dialler for (the smaller id dials), once. */
export function start(replication: Replication): void {
  // A single node has no links: no dialling, and no heartbeat timer keeping it awake.
  if (replication.config.peers.size === 0) return
  for (const peer of replication.config.peers.keys()) {
    if (replication.config.nodeId < peer && !replication.redials.has(peer)) {
      replication.redials.set(peer, {
        attempt: 0,
        reconnects: 0,
        prompted: 0,
        promptedAt: 0,
        timer: null,
        dialing: false,
        lastError: null,
      })
      void connect(replication, peer, 'start')
    }
  }
  replication.heartbeat ??= setInterval(() => beat(replication), heartbeatIntervalMs)
}

/**
 * The node learnt that `peer` is reachable (another replica's link to it opened): if this
 * replica dials it and its link is down, redial now with the backoff reset. At most once per
 * `peerPromptIntervalMsMin`, so a peer whose links open and drop cannot make them redial in a
 * tight loop.
 */
export function prompt(replication: Replication, peer: string): void {
  const redial = replication.redials.get(peer)
  if (redial === undefined || redial.dialing || linkOpen(replication, peer)) return
  const now = clock.now()
  if (now - redial.promptedAt < peerPromptIntervalMsMin) return
  redial.promptedAt = now
  if (redial.timer !== null) clearTimeout(redial.timer)
  redial.timer = null
  redial.attempt = 0
  redial.prompted += 1
  void connect(replication, peer, 'prompt')
}

const credential = (replication: Replication): Promise<string> =>
  token.issue(
    replication.config.meshSecret,
    { role: 'node', id: replication.config.nodeId },
    replication.doc,
    clock.now() + meshTokenLifetimeMs,
  )

/** Takes over an accepted inbound socket from a verified peer. */
export function accept(replication: Replication, socket: WebSocket, peer: token.Peer): void {
  socket.accept()
  open(replication, socket, peer, 'in')
}

async function connect(
  replication: Replication,
  peer: string,
  cause: 'start' | 'backoff' | 'prompt',
): Promise<void> {
  const redial = replication.redials.get(peer)!
  redial.timer = null
  redial.dialing = true
  let socket: WebSocket
  try {
    const base = replication.config.peers.get(peer)!
    const presented = await credential(replication)
    socket = await dial(replication.fetcher, base, replication.doc, presented, dialTimeoutMs)
  } catch (error) {
    redial.dialing = false
    redial.lastError = String(error)
    return scheduleRedial(replication, peer)
  }
  redial.dialing = false
  redial.lastError = null
  open(replication, socket, { role: 'node', id: peer }, 'out')
  // Only a link that came back on its own backoff tells the node something new: on start every
  // replica dials anyway, and a prompted link was itself told.
  if (cause === 'backoff') replication.onPeerUp(peer)
}

function scheduleRedial(replication: Replication, peer: string): void {
  const redial = replication.redials.get(peer)
  if (redial === undefined || redial.timer !== null || redial.dialing) return
  const ceiling = Math.min(reconnectDelayMsMax, reconnectDelayMsMin * 2 ** redial.attempt)
  redial.attempt += 1
  redial.reconnects += 1
  // Full jitter: peers that lost each other at once do not redial in lockstep.
  redial.timer = setTimeout(
    () => void connect(replication, peer, 'backoff'),
    Math.random() * ceiling,
  )
}

function open(
  replication: Replication,
  socket: WebSocket,
  peer: token.Peer,
  direction: 'in' | 'out',
): void {
  // Frames are handled synchronously, in order: they must arrive as bytes, not Blobs.
  socket.binaryType = 'arraybuffer'
  const now = clock.now()
  const link: Link = {
    socket,
    fragments: [],
    catchUps: 0,
    backlog: [],
    from: 'deferred',
    announced: null,
    stats: {
      peer: peer.id,
      role: peer.role,
      direction,
      openedAt: now,
      lastHeardAt: now,
      bytesIn: 0,
      bytesOut: 0,
      updatesIn: 0,
      updatesOut: 0,
      peerStateVector: new Map(),
      unacknowledged: 0,
      peerPromisedTerm: Infinity,
    },
  }
  replication.links.add(link)
  socket.addEventListener('message', (event) => receive(replication, link, event.data))
  socket.addEventListener('close', () => closed(replication, link))
  socket.addEventListener('error', () => closed(replication, link))
  if (!replication.held.state.ok) return
  const own = Y.encodeStateVector(replication.held.state.doc)
  if (peer.role !== 'node') {
    // A follower writes nothing: its SyncStep1 answer is empty, nothing to catch up from.
    link.from = 'done'
    return send(link, protocol.writeSyncStep1(own))
  }
  settleCatchUps(replication)
  // Deferred: the peer still learns what this replica holds (its quorum count, and what it will
  // be asked to cover), without being asked for a catch-up yet.
  if (link.from === 'deferred') send(link, heldFrame(replication, own))
}

/**
 * The first state vector a peer sends on a link (its SyncStep1, or the Held of a peer that
 * deferred its own SyncStep1): what its answer to this replica's SyncStep1 will at least cover.
 */
function announced(replication: Replication, link: Link, stateVector: Map<number, number>): void {
  if (link.announced !== null) return
  link.announced = stateVector
  if (link.from === 'asked') link.from = stateVector
  settleCatchUps(replication)
}

/** Whether this replica is catching up from one of its links. */
const catchingUp = (replication: Replication): boolean =>
  [...replication.links].some((link) => link.from === 'asked' || link.from instanceof Map)

/**
 * Marks the catch-ups this replica's state now covers as done; then, while none is under way,
 * asks the next link that waits (its SyncStep1, with the state this replica holds now): one peer
 * at a time, so links that open together (a heal, a wiped node) do not all send the same.
 */
function settleCatchUps(replication: Replication): void {
  const { held } = replication
  if (!held.state.ok) return
  const own = Y.decodeStateVector(Y.encodeStateVector(held.state.doc))
  const covered = (target: Map<number, number>) =>
    [...target].every(([client, clock]) => (own.get(client) ?? 0) >= clock)
  const caughtUp: string[] = []
  for (const link of replication.links) {
    if (link.from instanceof Map && covered(link.from)) {
      link.from = 'done'
      caughtUp.push(link.stats.peer)
    }
  }
  while (!catchingUp(replication)) {
    const next = [...replication.links].find((link) => link.from === 'deferred')
    if (next === undefined) break
    send(next, protocol.writeSyncStep1(Y.encodeStateVector(held.state.doc)))
    next.from =
      next.announced === null ? 'asked' : covered(next.announced) ? 'done' : next.announced
    if (next.from === 'done') caughtUp.push(next.stats.peer)
  }
  // Told once the links are settled: counting a sync may reload the document (a finished repair).
  for (const peer of caughtUp) replication.onRemote(peer, 'caught_up')
}

function closed(replication: Replication, link: Link): void {
  if (!replication.links.delete(link)) return
  // A link catching this replica up is gone: the next one that waits asks now.
  settleCatchUps(replication)
  if (link.stats.direction !== 'out') return
  // Only a link that outlived a heartbeat timeout resets the backoff: one its peer drops right
  // after opening keeps backing off instead of redialling (and resending) in a tight loop.
  const redial = replication.redials.get(link.stats.peer)
  if (redial !== undefined && clock.now() - link.stats.openedAt >= heartbeatTimeoutMs) {
    redial.attempt = 0
  }
  scheduleRedial(replication, link.stats.peer)
}

function close(link: Link, code: number, reason: string): void {
  console.error(JSON.stringify({ msg: 'closing mesh link', peer: link.stats.peer, code, reason }))
  try {
    link.socket.close(code, reason.slice(0, 120))
  } catch (error) {
    // Already closing: the close event does the bookkeeping either way.
    console.error(JSON.stringify({ msg: 'close failed', error: String(error) }))
  }
}

function send(link: Link, frame: Uint8Array): void {
  link.stats.bytesOut += frame.byteLength
  try {
    // Followers speak stock y-websocket, which knows no fragments: they get whole frames.
    if (frame.byteLength <= fragmentBytesMax || link.stats.role !== 'node')
      return link.socket.send(frame)
    for (const fragment of protocol.writeFragments(frame, fragmentBytesMax))
      link.socket.send(fragment)
  } catch {
    // The socket closed under us: its close event drops the link, and the next link resyncs.
  }
}

/** The bytes of a binary message; undefined for text (sockets may hand either buffer kind). */
function bytesOf(data: unknown): Uint8Array | undefined {
  if (typeof data === 'string' || data === null || typeof data !== 'object') return undefined
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if ('byteLength' in data && 'slice' in data) return new Uint8Array(data as ArrayBuffer)
  return undefined
}

function receive(replication: Replication, link: Link, data: unknown): void {
  const bytes = bytesOf(data)
  if (bytes === undefined) return close(link, 1003, `frames are binary, not ${typeof data}`)
  if (bytes.byteLength > frameBytesMax) return close(link, 1009, 'frame too large')
  link.stats.bytesIn += bytes.byteLength
  link.stats.lastHeardAt = clock.now()
  if (link.stats.role === 'node') replication.lastHeard.set(link.stats.peer, link.stats.lastHeardAt)
  let frame: protocol.Frame
  try {
    frame = protocol.readFrame(bytes)
  } catch (error) {
    return close(link, 1002, `malformed frame: ${String(error)}`)
  }
  if (frame.type !== 'fragment') return handleSafely(replication, link, frame)
  const whole = reassemble(link, frame)
  if (typeof whole === 'string') return close(link, 1002, whole)
  if (whole === undefined) return
  try {
    frame = protocol.readFrame(whole)
  } catch (error) {
    return close(link, 1002, `malformed frame: ${String(error)}`)
  }
  if (frame.type === 'fragment') return close(link, 1002, 'a fragment holds a fragment')
  handleSafely(replication, link, frame)
}

/** Adds a fragment; returns the whole frame once complete, or why the fragments are refused. */
function reassemble(
  link: Link,
  fragment: Extract<protocol.Frame, { type: 'fragment' }>,
): Uint8Array | string | undefined {
  const countMax = Math.ceil(frameBytesMax / fragmentBytesMax)
  if (fragment.count < 2 || fragment.count > countMax) return 'fragment count out of bounds'
  if (fragment.index !== link.fragments.length) return 'fragments out of order'
  if (fragment.part.byteLength > fragmentBytesMax) return 'fragment too large'
  link.fragments.push(fragment.part)
  if (link.fragments.length < fragment.count) return undefined
  const whole = new Uint8Array(link.fragments.reduce((n, part) => n + part.byteLength, 0))
  let offset = 0
  for (const part of link.fragments) {
    whole.set(part, offset)
    offset += part.byteLength
  }
  link.fragments = []
  return whole
}

/** A frame whose payload does not decode (a state vector cut short) closes the link. */
function handleSafely(
  replication: Replication,
  link: Link,
  frame: Exclude<protocol.Frame, { type: 'fragment' }>,
): void {
  try {
    handle(replication, link, frame)
  } catch (error) {
    close(link, 1002, `malformed ${frame.type}: ${String(error)}`)
  }
}

function handle(
  replication: Replication,
  link: Link,
  frame: Exclude<protocol.Frame, { type: 'fragment' }>,
): void {
  const { held } = replication
  if (!held.state.ok) return close(link, 1011, 'this replica is damaged')
  switch (frame.type) {
    case 'sync_step1':
      link.stats.peerStateVector = Y.decodeStateVector(frame.stateVector)
      link.stats.peerPromisedTerm = Infinity
      link.stats.unacknowledged = 0
      settleQuorums(replication)
      announced(replication, link, Y.decodeStateVector(frame.stateVector))
      return void sendCatchUp(replication, link, Y.decodeStateVector(frame.stateVector))
    case 'sync_step2':
    case 'update':
      return applyFromPeer(replication, link, frame.update)
    case 'held':
    case 'held_in_term':
      link.stats.peerStateVector = Y.decodeStateVector(frame.stateVector)
      link.stats.peerPromisedTerm = frame.type === 'held' ? Infinity : frame.promisedTerm
      link.stats.unacknowledged = 0
      settleQuorums(replication)
      return announced(replication, link, Y.decodeStateVector(frame.stateVector))
    case 'heartbeat':
    case 'awareness':
      return
    case 'lease_request':
    case 'lease_answer':
    case 'lease_release':
    case 'failback':
      if (link.stats.role !== 'node') return close(link, 1008, 'followers take no part in leases')
      if (replication.onLease === null)
        return close(link, 1002, `${frame.type} on a non-market link`)
      return replication.onLease(link.stats.peer, frame)
  }
}

/** Sends a frame on every live link to node `peer`; false when there is none. */
export function sendToPeer(replication: Replication, peer: string, frame: Uint8Array): boolean {
  let sent = false
  for (const link of replication.links) {
    if (link.stats.peer !== peer || link.stats.role !== 'node') continue
    send(link, frame)
    sent = true
  }
  return sent
}

/**
 * Sends what the peer lacks as updates it applies and persists one by one: the first is the
 * protocol's SyncStep2, the rest follow as Update frames (a stock client takes both). Between
 * batches it lets other work run (heartbeats, writes: a large document takes seconds to send,
 * longer than the peer waits for a heartbeat); updates made meanwhile wait in the link's backlog
 * and follow the last piece, since they may depend on structs not sent yet.
 */
async function sendCatchUp(
  replication: Replication,
  link: Link,
  remote: Map<number, number>,
): Promise<void> {
  const { held } = replication
  if (!held.state.ok) return
  const doc = held.state.doc
  link.catchUps += 1
  let sent = 0
  try {
    for (const piece of catchUpPieces(doc, remote, catchUpPieceBytesMax)) {
      send(link, sent === 0 ? protocol.writeSyncStep2(piece) : protocol.writeUpdate(piece))
      if (++sent % catchUpPiecesPerTurn !== 0) continue
      await new Promise((resolve) => setTimeout(resolve, 0))
      if (!replication.links.has(link)) return
      // A reload dropped what was not durable: the rest would come from a document that is gone.
      if (!held.state.ok || held.state.doc !== doc)
        return close(link, 1011, 'document reloaded during a catch-up')
    }
  } catch (error) {
    return close(link, 1011, `catch-up failed: ${String(error)}`)
  } finally {
    link.catchUps -= 1
  }
  if (link.catchUps > 0) return
  const backlog = link.backlog
  link.backlog = []
  for (const frame of backlog) send(link, frame)
}

/** Applies and persists what a peer sent, then tells it what this node now holds. */
function applyFromPeer(replication: Replication, link: Link, update: Uint8Array): void {
  let decoded: ReturnType<typeof Y.decodeUpdate>
  try {
    // Decoding first refuses a malformed update before any of it reaches the document.
    decoded = Y.decodeUpdate(update)
  } catch (error) {
    return close(link, 1007, `malformed update: ${String(error)}`)
  }
  if (link.stats.role !== 'node') {
    // A stock y-websocket follower answers the node's SyncStep1 with what it holds: nothing new
    // is its normal reply, anything new is a write, and followers cannot write.
    if (holdsAlready(replication.held, decoded)) return
    return close(link, 1008, 'followers cannot write')
  }
  link.stats.updatesIn += 1
  // Whatever a peer sends, it holds: its state vector is at least the update's.
  for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVectorFromUpdate(update))) {
    const known = link.stats.peerStateVector.get(client) ?? 0
    if (clock > known) link.stats.peerStateVector.set(client, clock)
  }
  settleQuorums(replication)
  try {
    durable.applyRemote(replication.held, originOf(link.stats.peer), update)
  } catch (error) {
    if (error instanceof durable.RemoteRefused) {
      return close(link, 1008, `update refused: ${error.message}`)
    }
    // Nothing of it was kept (a failed write reloads what is durable); the peer sends it again
    // on its next link. Never let it escape the socket handler: that breaks the whole replica.
    return close(link, 1011, `could not persist the update: ${String(error)}`)
  }
  if (!replication.held.state.ok) return
  send(link, heldFrame(replication, Y.encodeStateVector(replication.held.state.doc)))
  replication.onRemote(link.stats.peer, 'update')
  settleCatchUps(replication)
}

/**
 * What this replica holds, as a Held; a market's carries the highest term it promised, read after
 * the update was persisted, so a peer counting it knows no higher promise came first.
 */
const heldFrame = (replication: Replication, stateVector: Uint8Array): Uint8Array =>
  replication.promisedTerm === null
    ? protocol.writeHeld(stateVector)
    : protocol.writeHeldInTerm(stateVector, replication.promisedTerm())

/** Whether every struct and deletion of a decoded update is already in this replica. */
function holdsAlready(
  held: durable.DurableDoc,
  update: ReturnType<typeof Y.decodeUpdate>,
): boolean {
  if (!held.state.ok) return false
  const doc = held.state.doc
  const own = Y.decodeStateVector(Y.encodeStateVector(doc))
  const structsHeld = update.structs.every(
    (struct) => struct.id.clock + struct.length <= (own.get(struct.id.client) ?? 0),
  )
  if (!structsHeld) return false
  // Ranges of a store's delete set come sorted and merged: a range held is inside one of them.
  const deleted = Y.createDeleteSetFromStructStore(doc.store).clients
  return [...update.ds.clients].every(([client, items]) =>
    items.every((item) =>
      (deleted.get(client) ?? []).some(
        (range) => range.clock <= item.clock && item.clock + item.len <= range.clock + range.len,
      ),
    ),
  )
}

const originOf = durable.peerOrigin

/** Sends a durable update to every link but the one it came from. */
function forward(replication: Replication, update: outbox.DurableUpdate): void {
  const frame = protocol.writeUpdate(update.update)
  for (const link of replication.links) {
    if (originOf(link.stats.peer) === update.origin) continue
    // A peer that heartbeats but stops acknowledging (a one-way link, a stalled process) would
    // have the runtime buffer every update for it: past the bound the link is closed instead,
    // and the next one catches up from state vectors. Followers never acknowledge: not counted.
    if (link.stats.role === 'node' && link.stats.unacknowledged >= linkUnacknowledgedMax) {
      close(link, 1013, `peer acknowledged none of the last ${linkUnacknowledgedMax} updates`)
      closed(replication, link)
      continue
    }
    link.stats.updatesOut += 1
    link.stats.unacknowledged += 1
    if (link.catchUps > 0) link.backlog.push(frame)
    else send(link, frame)
  }
}

function beat(replication: Replication): void {
  const now = clock.now()
  for (const link of replication.links) {
    if (link.stats.role !== 'node') continue
    if (now - link.stats.lastHeardAt > heartbeatTimeoutMs) {
      close(link, 1001, 'no heartbeat')
      closed(replication, link)
      continue
    }
    send(link, protocol.writeHeartbeat(now))
  }
}

/** Whether any link to node `peer` is open, live or not yet found dead. */
const linkOpen = (replication: Replication, peer: string): boolean =>
  [...replication.links].some(({ stats }) => stats.peer === peer && stats.role === 'node')

/** Whether a live link to `peer` is up: opened, and heard from within the heartbeat timeout. */
export function linkUp(replication: Replication, peer: string): boolean {
  const now = clock.now()
  return [...replication.links].some(
    ({ stats }) =>
      stats.peer === peer && stats.role === 'node' && now - stats.lastHeardAt <= heartbeatTimeoutMs,
  )
}

export const heartbeatTiming: liveness.Timing = { heartbeatIntervalMs, heartbeatTimeoutMs }

/** Every peer node's liveness as this document's links have heard it. */
export const livenessOf = (replication: Replication): liveness.PeerLiveness[] =>
  liveness.view(
    replication.config.peers.keys(),
    replication.lastHeard,
    clock.now(),
    heartbeatTiming,
  )

/** Nodes that make a majority of the mesh, this one included. */
export const majorityOf = (config: MeshConfig): number =>
  Math.floor((config.peers.size + 1) / 2) + 1

/**
 * Waits until a write is as durable as asked: nothing to wait for `local`; for `quorum`, held by
 * a majority of nodes within the quorum timeout, or a rejection saying where it does stand.
 */
export async function awaitDurability(
  replication: Replication,
  durability: Durability,
  term: number | null = null,
): Promise<Rejected<'quorum_timeout'> | undefined> {
  if (durability === 'local') return undefined
  if (await heldByMajority(replication, quorumTimeoutMs, term)) return undefined
  const { config } = replication
  return reject(
    'quorum_timeout',
    `${replication.doc} was not held by ${majorityOf(config)} of ${config.peers.size + 1} nodes ` +
      `within ${quorumTimeoutMs} ms; it is durable on node ${config.nodeId} and replicates ` +
      'once its peers are reachable',
  )
}

/**
 * Resolves true once a majority of the mesh (this node and enough peers, by their own word: a
 * Held or a SyncStep1 after they persisted) holds everything this replica holds now; false if that
 * has not happened within `timeoutMs`. The write stays durable here either way.
 */
export function heldByMajority(
  replication: Replication,
  timeoutMs: number,
  term: number | null = null,
): Promise<boolean> {
  const { held } = replication
  if (!held.state.ok) return Promise.resolve(false)
  const waiter: QuorumWaiter = {
    target: Y.decodeStateVector(Y.encodeStateVector(held.state.doc)),
    term,
    peersNeeded: majorityOf(replication.config) - 1,
    done: () => undefined,
  }
  if (peersHolding(replication, waiter.target, waiter.term) >= waiter.peersNeeded)
    return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      replication.quorumWaiters.delete(waiter)
      resolve(false)
    }, timeoutMs)
    waiter.done = () => {
      clearTimeout(timer)
      resolve(true)
    }
    replication.quorumWaiters.add(waiter)
  })
}

function settleQuorums(replication: Replication): void {
  for (const waiter of replication.quorumWaiters) {
    if (peersHolding(replication, waiter.target, waiter.term) < waiter.peersNeeded) continue
    replication.quorumWaiters.delete(waiter)
    waiter.done()
  }
}

/**
 * Distinct peer nodes whose last word shows they hold every clock of `target` (for a step of
 * `term`: and that they had promised no higher term when they said so).
 */
function peersHolding(
  replication: Replication,
  target: Map<number, number>,
  term: number | null,
): number {
  const holding = new Set<string>()
  for (const { stats } of replication.links) {
    if (stats.role !== 'node') continue
    if (term !== null && stats.peerPromisedTerm > term) continue
    const covers = [...target].every(
      ([client, clock]) => (stats.peerStateVector.get(client) ?? 0) >= clock,
    )
    if (covers) holding.add(stats.peer)
  }
  return holding.size
}

/** How often a dialled peer was redialled: on the backoff, and at once on a prompt. */
export type RedialCounts = { reconnects: number; prompted: number }

export type LinkStatus = Omit<LinkStats, 'peerStateVector'> &
  Partial<RedialCounts> & {
    state: 'up'
    /** Clock units the peer holds that this replica does not, by the peer's last word. */
    behind: number
    /** Clock units this replica holds that the peer does not, by the peer's last word. */
    ahead: number
  }

export type PeerStatus = RedialCounts & {
  peer: string
  state: 'down'
  lastError: string | null
}

const redialCounts = ({ reconnects, prompted }: Redial): RedialCounts => ({ reconnects, prompted })

/** Every link of this document, and every dialled peer that has none. */
export function status(replication: Replication): (LinkStatus | PeerStatus)[] {
  const own = replication.held.state.ok
    ? Y.decodeStateVector(Y.encodeStateVector(replication.held.state.doc))
    : new Map<number, number>()
  const up = [...replication.links].map(({ stats: { peerStateVector, ...stats } }) => {
    const redial = stats.direction === 'out' ? replication.redials.get(stats.peer) : undefined
    return {
      ...stats,
      ...(redial !== undefined && redialCounts(redial)),
      state: 'up' as const,
      ...difference(own, peerStateVector),
    }
  })
  const down = [...replication.redials]
    .filter(([peer]) => !up.some((link) => link.peer === peer))
    .map(([peer, redial]) => ({
      peer,
      state: 'down' as const,
      ...redialCounts(redial),
      lastError: redial.lastError,
    }))
  return [...up, ...down]
}

function difference(
  own: Map<number, number>,
  peer: Map<number, number>,
): { behind: number; ahead: number } {
  let behind = 0
  let ahead = 0
  for (const [client, clock] of peer) behind += Math.max(0, clock - (own.get(client) ?? 0))
  for (const [client, clock] of own) ahead += Math.max(0, clock - (peer.get(client) ?? 0))
  return { behind, ahead }
}
