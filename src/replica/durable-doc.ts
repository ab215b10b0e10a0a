// One Yjs document made durable in a Durable Object's SQLite storage: load with checksums, apply a
// change and append its update in one storage transaction, compact into a chunked snapshot. Every
// replica class (account shards, markets) holds one; nothing here knows what the document means.

import type * as Y from 'yjs'
import * as Yjs from 'yjs'
import {
  compactionDelayMs,
  compactionLogBytesMax,
  compactionLogRowsMax,
  latencyBucketsMs,
  updateBytesMax,
} from '../constants'
import { assert } from '../domain/assert'
import * as histogram from '../histogram'
import { contentDigest, hasPending, stateVectorDigest } from '../state/digest'
import { refusal, type EntryCheck } from '../state/remote-checks'
import * as outbox from './outbox'
import * as storage from './shard-storage'

/** What a read reflects, so a client can tell a lagging replica from a converged one. */
export type Reflects = { shard: string; stateVectorDigest: string; pending: boolean }

export type DurableDoc = {
  name: string
  storage: DurableObjectStorage
  outbox: outbox.Outbox
  /** The loaded document, or why the stored bytes cannot be trusted. */
  state: { ok: true; doc: Y.Doc } | { ok: false; damage: storage.Damage }
  /** Size of the log after the snapshot, kept in memory so a write never scans the log. */
  logTail: { rows: number; bytes: number }
  /** Called after every (re)load with the fresh document, to rebuild derived indexes. */
  onLoad: (doc: Y.Doc) => void
  /** What peers may change in this document: the root maps and each entry's check. */
  remoteChecks: ReadonlyMap<string, EntryCheck>
  /** Time from a change's start to its update being appended, by who made it (`GET /metrics`). */
  writeMs: Record<WriteSource, histogram.Histogram>
}

/** A write made on this node (a client's command, a reconciler step) or applied from a peer. */
export type WriteSource = 'local' | 'peer'

/** A peer's update that breaks the document's rules: nothing of it is kept. */
export class RemoteRefused extends Error {
  override name = 'RemoteRefused'
}

/** Creates the tables if needed and loads the document. Call inside blockConcurrencyWhile. */
export function open(
  name: string,
  durable: DurableObjectStorage,
  onLoad: (doc: Y.Doc) => void,
  remoteChecks: ReadonlyMap<string, EntryCheck>,
): DurableDoc {
  storage.migrate(durable.sql)
  const held: DurableDoc = {
    name,
    storage: durable,
    outbox: outbox.create(),
    state: { ok: false, damage: { where: 'snapshot', reason: 'not loaded' } },
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

/** Rebuilds the document from what is durable, dropping anything only in memory. */
export function reload(held: DurableDoc): void {
  const loaded = storage.load(held.storage.sql)
  if (!loaded.ok) {
    console.error(JSON.stringify({ msg: 'document damaged', doc: held.name, ...loaded.damage }))
    held.state = { ok: false, damage: loaded.damage }
    return
  }
  held.logTail = {
    rows: loaded.tail.length,
    bytes: loaded.tail.reduce((n, row) => n + row.body.byteLength, 0),
  }
  const doc = new Yjs.Doc()
  Yjs.transact(doc, () => {
    if (loaded.snapshot !== undefined) Yjs.applyUpdate(doc, loaded.snapshot)
    for (const row of loaded.tail) Yjs.applyUpdate(doc, row.body)
  })
  held.state = { ok: true, doc }
  held.onLoad(doc)
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
  if ((await held.storage.getAlarm()) !== null) return
  await held.storage.setAlarm(Date.now() + compactionDelayMs)
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
  assert(!held.state.ok, 'only a damaged document has a damage message')
  const { where, reason } = held.state.damage
  return `${held.name} refuses to serve: ${where}: ${reason}`
}

export type DocStatus = {
  shard: string
  damage: storage.Damage | null
  storage: storage.StorageStats
  stateVectorDigest: string | null
  contentDigest: string | null
  pending: boolean
}

export function status(held: DurableDoc): DocStatus {
  const doc = held.state.ok ? held.state.doc : null
  return {
    shard: held.name,
    damage: held.state.ok ? null : held.state.damage,
    storage: storage.stats(held.storage.sql),
    stateVectorDigest: doc && stateVectorDigest(doc),
    contentDigest: doc && contentDigest(doc),
    pending: doc !== null && hasPending(doc),
  }
}
