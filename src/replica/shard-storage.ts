// The durable layout of one shard in its Durable Object's SQLite storage:
//   update_log      every acknowledged Yjs update, in order, each with its checksum
//   snapshot_chunk  the compacted state, split in chunks below the 128 KiB value limit
//   snapshot_meta   which snapshot generation is current and which log rows it folds
//   repair          each repair of damaged storage: when it began, the damage, when it ended
//   quarantine      the stored bytes a repair took out of the log or snapshot, kept as evidence
// Reload = current snapshot + log rows after it. Every stored byte is checked on reload; what does
// not verify is moved to quarantine (never deleted), and the replica repairs from its peers.

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
  sql.exec(`CREATE TABLE IF NOT EXISTS repair (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at INTEGER NOT NULL,
    damage TEXT NOT NULL,
    finished_at INTEGER,
    peers TEXT
  )`)
  sql.exec(`CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repair_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    seq INTEGER NOT NULL,
    idx INTEGER,
    body BLOB NOT NULL,
    origin TEXT,
    verified INTEGER NOT NULL
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

export type LoadedRow = { seq: number; body: Uint8Array }

export type Loaded = {
  /** The current snapshot, if there is one and it verifies. */
  snapshot: Uint8Array | undefined
  /** Log rows after the snapshot, in order, up to the first one that does not verify. */
  tail: LoadedRow[]
  /** The first stored thing that did not verify; undefined when everything did. */
  damage: Damage | undefined
  /** What a repair takes out: the snapshot's chunks, and log rows from this seq on. */
  cut: { snapshot: boolean; fromSeq: number | undefined }
}

/**
 * Reads the current snapshot and the log tail after it, verifying every checksum, and keeps what
 * verifies: an intact snapshot, and the log rows up to the first bad one. Sequence numbers are
 * consecutive from the snapshot on, so a row after a bad or missing one may depend on it (the
 * later updates of one Yjs client need the earlier ones): the rest of the log is cut with it.
 */
export function load(sql: SqlStorage): Loaded {
  const meta = readMeta(sql)
  const read = meta === undefined ? undefined : readSnapshot(sql, meta)
  let damage: Damage | undefined =
    typeof read === 'string' ? { where: 'snapshot', reason: read } : undefined
  const tail: LoadedRow[] = []
  const rows = sql.exec<{ seq: number; body: ArrayBuffer; checksum: string }>(
    'SELECT seq, body, checksum FROM update_log WHERE seq > ? ORDER BY seq',
    meta?.uptoSeq ?? 0,
  )
  let expected = (meta?.uptoSeq ?? 0) + 1
  let fromSeq: number | undefined
  for (const row of rows) {
    const body = new Uint8Array(row.body)
    const reason =
      row.seq !== expected
        ? `update ${expected} is missing (next stored is ${row.seq})`
        : checksum(body) !== row.checksum
          ? `update ${row.seq} does not match its checksum`
          : undefined
    if (reason !== undefined) {
      fromSeq = expected
      damage ??= { where: 'update_log', seq: expected, reason }
      break
    }
    tail.push({ seq: row.seq, body })
    expected += 1
  }
  return {
    snapshot: read instanceof Uint8Array ? read : undefined,
    tail,
    damage,
    cut: { snapshot: typeof read === 'string', fromSeq },
  }
}

/** The snapshot's bytes, or why they cannot be trusted. */
function readSnapshot(sql: SqlStorage, meta: SnapshotMeta): Uint8Array | string {
  const chunks = sql
    .exec<{ idx: number; body: ArrayBuffer }>(
      'SELECT idx, body FROM snapshot_chunk WHERE generation = ? ORDER BY idx',
      meta.generation,
    )
    .toArray()
  if (chunks.length !== meta.chunkCount || chunks.some((chunk, i) => chunk.idx !== i)) {
    return `expected ${meta.chunkCount} chunks, found ${chunks.length}`
  }
  const snapshot = concat(chunks.map((chunk) => new Uint8Array(chunk.body)))
  if (
    snapshot.byteLength !== meta.bytes ||
    snapshotChecksum(snapshot, meta.uptoSeq) !== meta.checksum
  ) {
    return 'snapshot bytes do not match their checksum'
  }
  return snapshot
}

// --- repair ----------------------------------------------------------------------------------

export type RepairRecord = {
  id: number
  startedAt: number
  damage: Damage
  finishedAt: number | null
  /** The peers whose sync completed the repair. */
  peers: string[] | null
}

export type QuarantinedRow = {
  source: 'update_log' | 'snapshot_chunk'
  /** The log row's sequence number; for a snapshot chunk, the last row its snapshot folded. */
  seq: number
  idx: number | null
  body: Uint8Array
  origin: string | null
  /** Whether the bytes still match their checksum (a chunk has none of its own: false). */
  verified: boolean
}

/**
 * Takes what `loaded` could not trust out of the live tables into quarantine, under the repair in
 * progress (or a new one), and replaces the snapshot with `state`, the document rebuilt from what
 * verified, so the next load finds clean storage. Call inside one storage transaction.
 */
export function quarantine(
  sql: SqlStorage,
  loaded: Loaded,
  state: Uint8Array,
  now: number,
): number {
  assert(loaded.damage !== undefined, 'only damaged storage is quarantined')
  const repairId =
    openRepair(sql)?.id ??
    sql
      .exec<{ id: number }>(
        'INSERT INTO repair (started_at, damage) VALUES (?, ?) RETURNING id',
        now,
        JSON.stringify(loaded.damage),
      )
      .one().id
  const meta = readMeta(sql)
  if (loaded.cut.snapshot && meta !== undefined) {
    sql.exec(
      `INSERT INTO quarantine (repair_id, source, seq, idx, body, origin, verified)
       SELECT ?, 'snapshot_chunk', ?, idx, body, NULL, 0 FROM snapshot_chunk WHERE generation = ?`,
      repairId,
      meta.uptoSeq,
      meta.generation,
    )
  }
  const { fromSeq } = loaded.cut
  if (fromSeq !== undefined) {
    const rows = sql
      .exec<{ seq: number; body: ArrayBuffer; checksum: string; origin: string }>(
        'SELECT seq, body, checksum, origin FROM update_log WHERE seq >= ? ORDER BY seq',
        fromSeq,
      )
      .toArray()
    for (const row of rows) {
      sql.exec(
        `INSERT INTO quarantine (repair_id, source, seq, idx, body, origin, verified)
         VALUES (?, 'update_log', ?, NULL, ?, ?, ?)`,
        repairId,
        row.seq,
        row.body,
        row.origin,
        checksum(new Uint8Array(row.body)) === row.checksum ? 1 : 0,
      )
    }
    sql.exec('DELETE FROM update_log WHERE seq >= ?', fromSeq)
  }
  replaceSnapshot(sql, state, Math.max(meta?.uptoSeq ?? 0, loaded.tail.at(-1)?.seq ?? 0))
  return repairId
}

type RepairRow = {
  id: number
  started_at: number
  damage: string
  finished_at: number | null
  peers: string | null
}

const repairOf = (row: RepairRow | undefined): RepairRecord | undefined =>
  row && {
    id: row.id,
    startedAt: row.started_at,
    damage: JSON.parse(row.damage) as Damage,
    finishedAt: row.finished_at,
    peers: row.peers === null ? null : (JSON.parse(row.peers) as string[]),
  }

/** The repair in progress, if any: the replica refuses clients until it has finished. */
export const openRepair = (sql: SqlStorage): RepairRecord | undefined =>
  repairOf(
    sql
      .exec<RepairRow>('SELECT * FROM repair WHERE finished_at IS NULL ORDER BY id DESC LIMIT 1')
      .toArray()[0],
  )

/** The latest repair, in progress or finished. */
export const latestRepair = (sql: SqlStorage): RepairRecord | undefined =>
  repairOf(sql.exec<RepairRow>('SELECT * FROM repair ORDER BY id DESC LIMIT 1').toArray()[0])

export function finishRepair(sql: SqlStorage, id: number, now: number, peers: string[]): void {
  sql.exec(
    'UPDATE repair SET finished_at = ?, peers = ? WHERE id = ?',
    now,
    JSON.stringify(peers),
    id,
  )
}

/** What repair `id` took out of the live tables, in the order it was stored. */
export function quarantined(sql: SqlStorage, id: number): QuarantinedRow[] {
  return sql
    .exec<{
      source: QuarantinedRow['source']
      seq: number
      idx: number | null
      body: ArrayBuffer
      origin: string | null
      verified: number
    }>(
      'SELECT source, seq, idx, body, origin, verified FROM quarantine WHERE repair_id = ? ORDER BY id',
      id,
    )
    .toArray()
    .map((row) => ({ ...row, body: new Uint8Array(row.body), verified: row.verified === 1 }))
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

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}
