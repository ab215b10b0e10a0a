// The durable layout of one shard in its Durable Object's SQLite storage:
//   update_log      every acknowledged Yjs update, in order, each with its checksum
//   snapshot_chunk  the compacted state, split in chunks below the 128 KiB value limit
//   snapshot_meta   which snapshot generation is current and which log rows it folds
// Reload = current snapshot + log rows after it. Every stored byte is checked on reload; a shard
// with a damaged byte refuses to serve instead of serving wrong balances.

import { assert } from '../domain/assert'
import { snapshotChunkBytesMax, updateBytesMax } from '../constants'
import { checksum } from './checksum'

/**
 * The replica's name (`<node>/shard/3`), kept in its own storage: an instance woken by an alarm
 * is not told the name it was created with, yet its links and status need it.
 */
export function rememberName(sql: SqlStorage, given: string | undefined): string | undefined {
  sql.exec(
    'CREATE TABLE IF NOT EXISTS replica_name (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL)',
  )
  if (given !== undefined) {
    sql.exec('INSERT OR IGNORE INTO replica_name (id, name) VALUES (1, ?)', given)
    return given
  }
  return sql.exec<{ name: string }>('SELECT name FROM replica_name WHERE id = 1').toArray()[0]?.name
}

export function migrate(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS update_log (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL,
    checksum TEXT NOT NULL,
    origin TEXT NOT NULL
  )`)
  sql.exec(`CREATE TABLE IF NOT EXISTS snapshot_chunk (
    generation INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (generation, idx)
  )`)
  sql.exec(`CREATE TABLE IF NOT EXISTS snapshot_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL,
    upto_seq INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    checksum TEXT NOT NULL
  )`)
}

/**
 * Appends one update to the log and returns its sequence number, which never repeats one that a
 * snapshot already folded. Call inside a transaction.
 */
export function append(sql: SqlStorage, update: Uint8Array, origin: string): number {
  assert(update.byteLength > 0, 'an appended update is not empty')
  assert(update.byteLength <= updateBytesMax, 'an appended update fits one stored value')
  const row = sql
    .exec<{ seq: number }>(
      `INSERT INTO update_log (seq, body, checksum, origin)
       VALUES (MAX(
         COALESCE((SELECT MAX(seq) FROM update_log), 0),
         COALESCE((SELECT upto_seq FROM snapshot_meta WHERE id = 1), 0)
       ) + 1, ?, ?, ?) RETURNING seq`,
      update,
      checksum(update),
      origin,
    )
    .one()
  return row.seq
}

export type SnapshotMeta = {
  generation: number
  uptoSeq: number
  chunkCount: number
  bytes: number
  checksum: string
}

const readMeta = (sql: SqlStorage): SnapshotMeta | undefined => {
  const rows = sql
    .exec<{
      generation: number
      upto_seq: number
      chunk_count: number
      bytes: number
      checksum: string
    }>('SELECT generation, upto_seq, chunk_count, bytes, checksum FROM snapshot_meta WHERE id = 1')
    .toArray()
  const row = rows[0]
  if (row === undefined) return undefined
  return {
    generation: row.generation,
    uptoSeq: row.upto_seq,
    chunkCount: row.chunk_count,
    bytes: row.bytes,
    checksum: row.checksum,
  }
}

export type Damage = { where: 'snapshot' | 'update_log'; seq?: number; reason: string }

export type Loaded =
  | {
      ok: true
      snapshot: Uint8Array | undefined
      tail: { seq: number; body: Uint8Array }[]
    }
  | { ok: false; damage: Damage }

/** Reads the current snapshot and the log tail after it, verifying every checksum. */
export function load(sql: SqlStorage): Loaded {
  const meta = readMeta(sql)
  let snapshot: Uint8Array | undefined
  if (meta !== undefined) {
    const chunks = sql
      .exec<{ idx: number; body: ArrayBuffer }>(
        'SELECT idx, body FROM snapshot_chunk WHERE generation = ? ORDER BY idx',
        meta.generation,
      )
      .toArray()
    if (chunks.length !== meta.chunkCount || chunks.some((chunk, i) => chunk.idx !== i)) {
      return damaged('snapshot', `expected ${meta.chunkCount} chunks, found ${chunks.length}`)
    }
    snapshot = concat(chunks.map((chunk) => new Uint8Array(chunk.body)))
    if (
      snapshot.byteLength !== meta.bytes ||
      snapshotChecksum(snapshot, meta.uptoSeq) !== meta.checksum
    ) {
      return damaged('snapshot', 'snapshot bytes do not match their checksum')
    }
  }
  const tail: { seq: number; body: Uint8Array }[] = []
  const rows = sql.exec<{ seq: number; body: ArrayBuffer; checksum: string }>(
    'SELECT seq, body, checksum FROM update_log WHERE seq > ? ORDER BY seq',
    meta?.uptoSeq ?? 0,
  )
  // Sequence numbers are consecutive from the snapshot on: a gap is a lost acknowledged write.
  let expected = (meta?.uptoSeq ?? 0) + 1
  for (const row of rows) {
    if (row.seq !== expected) {
      return damaged(
        'update_log',
        `update ${expected} is missing (next stored is ${row.seq})`,
        expected,
      )
    }
    expected += 1
    const body = new Uint8Array(row.body)
    if (checksum(body) !== row.checksum) {
      return damaged('update_log', `update ${row.seq} does not match its checksum`, row.seq)
    }
    tail.push({ seq: row.seq, body })
  }
  return { ok: true, snapshot, tail }
}

/**
 * Replaces the snapshot with `state`, folding every log row up to `uptoSeq`, then drops what it
 * folded. Call inside one storage transaction: a crash at any point leaves either the old
 * snapshot with its full log or the new one, never a mix.
 */
export function replaceSnapshot(sql: SqlStorage, state: Uint8Array, uptoSeq: number): SnapshotMeta {
  const previous = readMeta(sql)
  const generation = (previous?.generation ?? 0) + 1
  const chunkCount = Math.ceil(state.byteLength / snapshotChunkBytesMax)
  for (let idx = 0; idx < chunkCount; idx++) {
    const body = state.subarray(idx * snapshotChunkBytesMax, (idx + 1) * snapshotChunkBytesMax)
    sql.exec(
      'INSERT INTO snapshot_chunk (generation, idx, body) VALUES (?, ?, ?)',
      generation,
      idx,
      body,
    )
  }
  const meta = {
    generation,
    uptoSeq,
    chunkCount,
    bytes: state.byteLength,
    checksum: snapshotChecksum(state, uptoSeq),
  }
  sql.exec(
    `INSERT OR REPLACE INTO snapshot_meta (id, generation, upto_seq, chunk_count, bytes, checksum)
     VALUES (1, ?, ?, ?, ?, ?)`,
    meta.generation,
    meta.uptoSeq,
    meta.chunkCount,
    meta.bytes,
    meta.checksum,
  )
  sql.exec('DELETE FROM snapshot_chunk WHERE generation <> ?', generation)
  sql.exec('DELETE FROM update_log WHERE seq <= ?', uptoSeq)
  return meta
}

export type StorageStats = {
  logRows: number
  logBytes: number
  lastSeq: number
  snapshot: SnapshotMeta | null
}

export function stats(sql: SqlStorage): StorageStats {
  const log = sql
    .exec<{ rows: number; bytes: number | null; last: number | null }>(
      'SELECT COUNT(*) AS rows, SUM(LENGTH(body)) AS bytes, MAX(seq) AS last FROM update_log',
    )
    .one()
  const snapshot = readMeta(sql) ?? null
  return {
    logRows: log.rows,
    logBytes: log.bytes ?? 0,
    lastSeq: log.last ?? snapshot?.uptoSeq ?? 0,
    snapshot,
  }
}

/** Covers the folded sequence number too: raising it would silently hide log rows. */
const snapshotChecksum = (state: Uint8Array, uptoSeq: number): string =>
  checksum(state, new TextEncoder().encode(`upto:${uptoSeq}`))

const damaged = (where: Damage['where'], reason: string, seq?: number): Loaded => ({
  ok: false,
  damage: seq === undefined ? { where, reason } : { where, reason, seq },
})

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}
