// One Yjs document made durable in a Durable Object's SQLite storage: load with checksums, apply a
// change and append its update in one storage transaction, compact into a chunked snapshot, repair
// damaged storage from peers. Every replica class (account shards, markets) holds one; nothing
// here knows what the document means.
//
// Repair (F10). A load that finds bytes failing their checksums keeps what verifies (an intact
// snapshot, the log rows before the first bad one), quarantines the rest as evidence and opens a
// repair, recorded in storage so a restart resumes it. While it lasts the replica refuses clients
// (it may miss acknowledged entries, so even its reads could be wrong) but its mesh links run and
// sync by state vectors as always. It ends once `peersToRepair` distinct peers have each answered
// its state vector with a SyncStep2 that is now durable here (replica-mesh.ts says why that many).
// Then the quarantined rows that still verify are applied again (a local write after the damaged
// row comes back even if no peer held it) and the damaged ones are judged: held now, or possibly
// lost (a write acknowledged under `local` durability that reached no peer is gone for good).

import * as decoding from 'lib0/decoding'
import type * as Y from 'yjs'
import * as Yjs from 'yjs'
import {
  compactionDelayMs,
  compactionLogBytesMax,
  compactionLogRowsMax,
  quarantineEvidenceShownMax,
  quarantineHeadBytesMax,
  latencyBucketsMs,
  updateBytesMax,
} from '../constants'
import { assert } from '../domain/assert'
import * as histogram from '../histogram'
import { contentDigest, hasPending, stateVectorDigest } from '../state/digest'
import { refusal, type DocRules } from '../state/remote-checks'
import * as outbox from './outbox'
import * as storage from './shard-storage'
import * as clock from '../clock'

/** What a read reflects, so a client can tell a lagging replica from a converged one. */
export type Reflects = { shard: string; stateVectorDigest: string; pending: boolean }

export type DurableDoc = {
  name: string
  storage: DurableObjectStorage
  outbox: outbox.Outbox
  /** The loaded document, or why the stored bytes cannot be trusted (nor repaired). */
  state: { ok: true; doc: Y.Doc } | { ok: false; damage: storage.Damage }
  /** The repair in progress: the document is loaded but must not serve clients yet. */
  repair: Repair | null
  /** Distinct peers whose completed sync ends a repair (set by the mesh; no peers, no repair). */
  peersToRepair: number
  /**
   * Peers whose answer to this replica's state vector (SyncStep2) is durable here since it started.
   * In memory only: a restarted or wiped replica starts again from none.
   */
  syncedSinceStart: Set<string>
  /** Size of the log after the snapshot, kept in memory so a write never scans the log. */
  logTail: { rows: number; bytes: number }
  /** Called after every (re)load with the fresh document, to rebuild derived indexes. */
  onLoad: (doc: Y.Doc) => void
  /** What peers may change in this document: the root maps and each entry's check. */
  remoteChecks: DocRules
  /** Time from a change's start to its update being appended, by who made it (`GET /metrics`). */
  writeMs: Record<WriteSource, histogram.Histogram>
}

/** A write made on this node (a client's command, a reconciler step) or applied from a peer. */
export type WriteSource = 'local' | 'peer'

/** A peer's update that breaks the document's rules: nothing of it is kept. */
export class RemoteRefused extends Error {
  override name = 'RemoteRefused'
}

/** The origin of the updates a peer sent, as stored with each log row. */
export const peerOrigin = (peer: string): string => `peer:${peer}`

export type Repair = storage.RepairRecord & {
  /** Peers whose SyncStep2 this instance made durable since the repair began. */
  syncedFrom: Set<string>
}

/** What became of one quarantined row once the peers' state was in. */
export type QuarantineOutcome =
  /** Everything in it is in the document now. */
  | 'held'
  /** It still verified, held something no peer sent, and was applied again. */
  | 'restored'
  /** It still verified but depends on updates nobody has: not applied, its writes are lost. */
  | 'depends_on_lost'
  /** Damaged, and decodes (in whole or, truncated, its first struct) to what is not held: lost. */
  | 'missing'
  /** Damaged, but a peer that completed the repair sent it: that peer's SyncStep2 held it. */
  | 'from_synced_peer'
  /** Damaged beyond decoding: what it held cannot be known (held if a peer had it). */
  | 'undecodable'
  /** A chunk of a damaged snapshot: its content came back from the peers' state, or did not. */
  | 'snapshot_chunk'

export type QuarantineEvidence = {
  source: storage.QuarantinedRow['source']
  seq: number
  idx: number | null
  bytes: number
  origin: string | null
  verified: boolean
  outcome: QuarantineOutcome
  /** The first bytes, hex: what is left to look at when nothing decodes. */
  head: string
}

export type RepairReport = {
  doc: string
  startedAt: number
  finishedAt: number
  damage: storage.Damage
  peers: string[]
  /** How many quarantined rows came to each outcome. */
  outcomes: Partial<Record<QuarantineOutcome, number>>
  /** The first quarantined rows, in stored order. */
  quarantined: QuarantineEvidence[]
  /** Whether an acknowledged write may be lost: something quarantined is not held, or unknown. */
  mayHaveLost: boolean
}

/** Creates the tables if needed and loads the document. Call inside blockConcurrencyWhile. */
export function open(
  name: string,
  durable: DurableObjectStorage,
  onLoad: (doc: Y.Doc) => void,
  remoteChecks: DocRules,
): DurableDoc {
  storage.migrate(durable.sql)
  const held: DurableDoc = {
    name,
    storage: durable,
    outbox: outbox.create(),
    state: { ok: false, damage: { where: 'snapshot', reason: 'not loaded' } },
    repair: null,
    peersToRepair: 1,
    syncedSinceStart: new Set(),
    logTail: { rows: 0, bytes: 0 },
    onLoad,
    remoteChecks,
    writeMs: {
      local: histogram.create(latencyBucketsMs),
      peer: histogram.create(latencyBucketsMs),
    },
  }
  reload(held)
  return held
}

/**
 * Rebuilds the document from what is durable, dropping anything only in memory. Damaged storage
 * is quarantined and repaired (see the top); storage that refuses even that keeps refusing.
 */
export function reload(held: DurableDoc): void {
  const sql = held.storage.sql
  const loaded = storage.load(sql)
  const doc = new Yjs.Doc()
  Yjs.transact(doc, () => {
    if (loaded.snapshot !== undefined) Yjs.applyUpdate(doc, loaded.snapshot)
    for (const row of loaded.tail) Yjs.applyUpdate(doc, row.body)
  })
  held.logTail = {
    rows: loaded.tail.length,
    bytes: loaded.tail.reduce((n, row) => n + row.body.byteLength, 0),
  }
  if (loaded.damage !== undefined) {
    console.error(JSON.stringify({ msg: 'document damaged', doc: held.name, ...loaded.damage }))
    try {
      const state = Yjs.encodeStateAsUpdate(doc)
      held.storage.transactionSync(() => storage.quarantine(sql, loaded, state, clock.now()))
    } catch (error) {
      console.error(
        JSON.stringify({ msg: 'quarantine failed', doc: held.name, error: String(error) }),
      )
      held.state = { ok: false, damage: loaded.damage }
      return
    }
    held.logTail = { rows: 0, bytes: 0 }
  }
  const open = storage.openRepair(sql)
  const synced = held.repair !== null && held.repair.id === open?.id ? held.repair.syncedFrom : null
  held.repair = open === undefined ? null : { ...open, syncedFrom: synced ?? new Set() }
  held.state = { ok: true, doc }
  held.onLoad(doc)
}

/** A document that may serve clients: loaded, and not repairing. */
export type Serving = DurableDoc & { state: { ok: true; doc: Y.Doc }; repair: null }

export const serving = (held: DurableDoc): held is Serving => held.state.ok && held.repair === null

/**
 * Whether this replica has synced with enough peers since it started that nothing a majority held
 * can be missing here (the repair's count), or has no peers: what a replica that writes in
 * sequence (a home matcher) waits for.
 */
export const caughtUp = (held: DurableDoc, peerCount: number): boolean =>
  peerCount === 0 || held.syncedSinceStart.size >= held.peersToRepair

/**
 * Counts `peer`'s completed sync (its SyncStep2 applied and durable here) toward the repair in
 * progress and finishes the repair once enough peers have synced. Returns its report then.
 */
export function peerSynced(held: DurableDoc, peer: string): RepairReport | undefined {
  held.syncedSinceStart.add(peer)
  const { repair } = held
  if (repair === null || !held.state.ok) return undefined
  repair.syncedFrom.add(peer)
  if (repair.syncedFrom.size < held.peersToRepair) return undefined
  const sql = held.storage.sql
  const peers = [...repair.syncedFrom].sort()
  // Bounded by the log rows the repair cut (at most one log between compactions).
  const quarantined = storage.quarantined(sql, repair.id).map((row) => judged(held, row, peers))
  const finishedAt = clock.now()
  held.storage.transactionSync(() => storage.finishRepair(sql, repair.id, finishedAt, peers))
  // A fresh document from storage: every replica's derived state is rebuilt from it (a market
  // replays its steps through the matcher and checks them before it matches again).
  reload(held)
  return {
    doc: held.name,
    startedAt: repair.startedAt,
    finishedAt,
    damage: repair.damage,
    peers,
    outcomes: countBy(quarantined.map((row) => row.outcome)),
    quarantined: quarantined.slice(0, quarantineEvidenceShownMax),
    mayHaveLost: quarantined.some((row) => lostOutcomes.has(row.outcome)),
  }
}

const countBy = <K extends string>(keys: K[]): Partial<Record<K, number>> => {
  const counts: Partial<Record<K, number>> = {}
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1
  return counts
}

const lostOutcomes = new Set<QuarantineOutcome>(['depends_on_lost', 'missing', 'undecodable'])

class NotRestorable extends Error {
  override name = 'NotRestorable'
}

/** Applies a quarantined row again if it still verifies; says what became of it either way. */
function judged(
  held: DurableDoc,
  row: storage.QuarantinedRow,
  peers: string[],
): QuarantineEvidence {
  const evidence = {
    source: row.source,
    seq: row.seq,
    idx: row.idx,
    bytes: row.body.byteLength,
    origin: row.origin,
    verified: row.verified,
    head: [...row.body.subarray(0, quarantineHeadBytesMax)]
      .map((byte) => byte.toString(16).padStart(2, '0'))
      .join(''),
  }
  if (row.source === 'snapshot_chunk') return { ...evidence, outcome: 'snapshot_chunk' }
  // The peer persisted what it sent before sending it, and answered the repair with everything
  // it holds: whatever the damaged bytes were, they are in the document now.
  if (!row.verified && peers.some((peer) => row.origin === peerOrigin(peer)))
    return { ...evidence, outcome: 'from_synced_peer' }
  if (!row.verified) return { ...evidence, outcome: damagedOutcome(held, row.body) }
  const lastSeq = storage.stats(held.storage.sql).lastSeq
  try {
    write(held, 'repair', (doc) => {
      const pendingBefore = hasPending(doc)
      Yjs.applyUpdate(doc, row.body)
      // Thrown inside the transaction: `write` reloads what is durable, dropping it again.
      if (!pendingBefore && hasPending(doc)) throw new NotRestorable()
    })
  } catch (error) {
    if (error instanceof NotRestorable) return { ...evidence, outcome: 'depends_on_lost' }
    throw error
  }
  const restored = storage.stats(held.storage.sql).lastSeq !== lastSeq
  return { ...evidence, outcome: restored ? 'restored' : 'held' }
}

/** Whether damaged bytes still decode, in whole or in part, and whether the document holds them. */
function damagedOutcome(held: DurableDoc, body: Uint8Array): QuarantineOutcome {
  assert(held.state.ok, 'only a loaded document judges its quarantine')
  const own = Yjs.decodeStateVector(Yjs.encodeStateVector(held.state.doc))
  let decoded: ReturnType<typeof Yjs.decodeUpdate>
  try {
    decoded = Yjs.decodeUpdate(body)
  } catch {
    return headOutcome(body, own)
  }
  // Zeroed bytes decode as an empty update: nothing in them says what the row held.
  if (decoded.structs.length === 0 && decoded.ds.clients.size === 0) return 'undecodable'
  const holds = decoded.structs.every(
    (struct) => struct.id.clock + struct.length <= (own.get(struct.id.client) ?? 0),
  )
  return holds ? 'held' : 'missing'
}

/**
 * A truncated update still begins with its first client's id and first clock. A replica holding
 * that clock got the whole update: one transaction's update travels whole, and a sync sends
 * everything after the receiver's clocks.
 */
function headOutcome(body: Uint8Array, own: Map<number, number>): QuarantineOutcome {
  try {
    const decoder = decoding.createDecoder(body)
    if (decoding.readVarUint(decoder) === 0) return 'undecodable'
    decoding.readVarUint(decoder) // how many structs the first client has
    const client = decoding.readVarUint(decoder)
    const clock = decoding.readVarUint(decoder)
    return (own.get(client) ?? 0) > clock ? 'held' : 'missing'
  } catch {
    return 'undecodable'
  }
}

/**
 * Runs `change` in one Yjs transaction and, if it changed the document, appends the update in one
 * storage transaction before returning: the caller may acknowledge only after this returns.
 * `change` must validate before it writes; if it throws, the document is rebuilt from storage.
 */
export function write<T>(
  held: DurableDoc,
  origin: string,
  change: (doc: Y.Doc) => T,
  oversize: 'refuse' | 'fold' = 'refuse',
): T {
  assert(held.state.ok, 'a damaged document is never written')
  const startedAt = performance.now()
  const doc = held.state.doc
  const updates: Uint8Array[] = []
  const capture = (update: Uint8Array) => updates.push(update)
  doc.on('update', capture)
  let result: T
  try {
    result = doc.transact(() => change(doc), origin)
  } catch (error) {
    reload(held)
    throw error
  } finally {
    doc.off('update', capture)
  }
  assert(updates.length <= 1, 'one transaction makes at most one update')
  const update = updates[0]
  if (update !== undefined) {
    persist(held, update, origin, oversize)
    // Peers' updates carry the origins replication gives them (`peer:<id>`).
    const source = origin.startsWith('peer:') ? 'peer' : 'local'
    histogram.observe(held.writeMs[source], performance.now() - startedAt)
  }
  return result
}

/**
 * Applies an update a peer sent and makes it durable, as `write` does. A peer's catch-up can be
 * larger than one stored value (a node back from a long absence, a wiped node rebuilt, a long
 * partition healed): then the whole document, the update included, is folded into a new chunked
 * snapshot in the same storage transaction instead of refusing it, which no retry could change.
 */
export function applyRemote(held: DurableDoc, origin: string, update: Uint8Array): void {
  write(
    held,
    origin,
    (doc) => {
      const pendingBefore = hasPending(doc)
      Yjs.applyUpdate(doc, update, origin)
      const refused = refusal(doc, doc._transaction!, held.remoteChecks, pendingBefore)
      // Thrown inside the transaction: `write` reloads what is durable, dropping all of it.
      if (refused !== undefined) throw new RemoteRefused(refused)
    },
    'fold',
  )
}

function persist(
  held: DurableDoc,
  update: Uint8Array,
  origin: string,
  oversize: 'refuse' | 'fold',
): void {
  const sql = held.storage.sql
  const folds = oversize === 'fold' && update.byteLength > updateBytesMax
  let seq: number
  try {
    seq = held.storage.transactionSync(() => {
      if (!folds) return storage.append(sql, update, origin)
      assert(held.state.ok, 'only a loaded document is folded')
      const uptoSeq = storage.stats(sql).lastSeq + 1
      storage.replaceSnapshot(sql, Yjs.encodeStateAsUpdate(held.state.doc), uptoSeq)
      return uptoSeq
    })
  } catch (error) {
    // The document holds a change storage refused: drop it by reloading what is durable.
    reload(held)
    throw error
  }
  if (folds) held.logTail = { rows: 0, bytes: 0 }
  else {
    held.logTail.rows += 1
    held.logTail.bytes += update.byteLength
  }
  outbox.offer(held.outbox, { seq, update, origin })
  void scheduleCompaction(held)
}

/** Whether the log after the snapshot has grown past a compaction threshold. */
export const compactionDue = (held: DurableDoc): boolean =>
  held.logTail.rows >= compactionLogRowsMax || held.logTail.bytes >= compactionLogBytesMax

async function scheduleCompaction(held: DurableDoc): Promise<void> {
  if (!compactionDue(held)) return
  await alarmBy(held.storage, clock.now() + compactionDelayMs)
}

/**
 * Has the object's one alarm fire by `nodeTime` (this node's clock), unless it is set to fire
 * sooner: compaction, redials and epoch checkpoints share it, and its handler serves them all.
 */
export async function alarmBy(storage: DurableObjectStorage, nodeTime: number): Promise<void> {
  const at = clock.schedulerTime(nodeTime)
  const set = await storage.getAlarm()
  if (set === null || set > at) await storage.setAlarm(at)
}

/** Folds the whole log into a new snapshot in one storage transaction. */
export function compact(held: DurableDoc): storage.StorageStats {
  const sql = held.storage.sql
  if (held.state.ok) {
    const state = Yjs.encodeStateAsUpdate(held.state.doc)
    held.storage.transactionSync(() => {
      storage.replaceSnapshot(sql, state, storage.stats(sql).lastSeq)
    })
    held.logTail = { rows: 0, bytes: 0 }
  }
  return storage.stats(sql)
}

export function reflects(held: DurableDoc): Reflects {
  assert(held.state.ok, 'only a loaded document is read')
  const doc = held.state.doc
  return { shard: held.name, stateVectorDigest: stateVectorDigest(doc), pending: hasPending(doc) }
}

export function damageMessage(held: DurableDoc): string {
  if (!held.state.ok) {
    const { where, reason } = held.state.damage
    return `${held.name} refuses to serve: ${where}: ${reason}`
  }
  assert(held.repair !== null, 'only a damaged or repairing document has a damage message')
  const { where, reason } = held.repair.damage
  return (
    `${held.name} is repairing from its peers (${held.repair.syncedFrom.size} of ` +
    `${held.peersToRepair} synced): ${where}: ${reason}; retry shortly`
  )
}

export type RepairStatus = {
  state: 'repairing' | 'repaired'
  startedAt: number
  finishedAt: number | null
  damage: storage.Damage
  /** Peers synced so far (repairing), or those whose sync completed it (repaired). */
  peers: string[]
  peersNeeded: number
}

export type DocStatus = {
  shard: string
  /** Why the document refuses to serve: damage found on load, for good or under repair. */
  damage: storage.Damage | null
  /** The latest repair of this replica's storage, in progress or finished. */
  repair: RepairStatus | null
  storage: storage.StorageStats
  stateVectorDigest: string | null
  contentDigest: string | null
  pending: boolean
}

export function status(held: DurableDoc): DocStatus {
  const doc = held.state.ok ? held.state.doc : null
  const latest = storage.latestRepair(held.storage.sql)
  const repair: RepairStatus | null =
    latest === undefined
      ? null
      : {
          state: latest.finishedAt === null ? 'repairing' : 'repaired',
          startedAt: latest.startedAt,
          finishedAt: latest.finishedAt,
          damage: latest.damage,
          peers: latest.peers ?? [...(held.repair?.syncedFrom ?? [])].sort(),
          peersNeeded: held.peersToRepair,
        }
  return {
    shard: held.name,
    damage: held.state.ok ? (held.repair?.damage ?? null) : held.state.damage,
    repair,
    storage: storage.stats(held.storage.sql),
    stateVectorDigest: doc && stateVectorDigest(doc),
    contentDigest: doc && contentDigest(doc),
    pending: doc !== null && hasPending(doc),
  }
}
