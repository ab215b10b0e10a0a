// Damaged storage (design.md §5, F10): every stored byte is checked on reload. What verifies is
// kept (an intact snapshot, the log rows before the first bad one), the rest is moved to
// quarantine as evidence, and the shard repairs from its peers: until then it refuses every read
// and write, saying where the damage is. These runtime nodes have no peers, so their repairs stay
// open; the last tests finish one by hand, a peer's SyncStep2 applied as the mesh applies it.

import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as durable from '../../src/replica/durable-doc'
import type { ShardReplica } from '../../src/replica/shard-replica'
import type { Damage } from '../../src/replica/shard-storage'
import { contentDigest, hasPending } from '../../src/state/digest'
import { shardChecks } from '../../src/state/remote-checks'
import {
  chunkRows,
  depositOf,
  freshShard,
  logRows,
  operatorCheck,
  usd,
  withdrawalOf,
} from './helpers'

type Stub = DurableObjectStub<ShardReplica>
type Sql = SqlStorage

/** A shard with two accounts and `deposits` deposits; compacted first when `compacted`. */
async function populated(label: string, deposits: number, compacted: boolean): Promise<Stub> {
  const stub = freshShard(label)
  await runInDurableObject(stub, async (instance: ShardReplica) => {
    for (const accountId of ['alice', 'bob']) instance.createAccount({ accountId })
    instance.createKey({ keyId: 'k1', accountId: 'alice', scopes: ['read'], label: 'desk' })
    for (let i = 0; i < deposits; i++) {
      const result = await instance.deposit(
        depositOf(i % 2 ? 'bob' : 'alice', `d${i}`, usd(1) + 1n),
      )
      if (!result.ok) throw new Error(result.message)
    }
    if (compacted) {
      instance.compact()
      // A tail after the snapshot.
      for (let i = 0; i < 5; i++) await instance.deposit(depositOf('alice', `tail${i}`, 1n))
    }
  })
  return stub
}

const tamper = (stub: Stub, change: (sql: Sql) => void) =>
  runInDurableObject(stub, (_instance: ShardReplica, state) => change(state.storage.sql))

/** Replaces a stored BLOB with `edit` of its bytes. */
function editBlob(sql: Sql, table: string, where: string, edit: (bytes: Uint8Array) => Uint8Array) {
  const row = sql.exec<{ body: ArrayBuffer }>(`SELECT body FROM ${table} WHERE ${where}`).one()
  sql.exec(`UPDATE ${table} SET body = ? WHERE ${where}`, edit(new Uint8Array(row.body)))
}

const flipMiddleByte = (bytes: Uint8Array) => {
  const copy = bytes.slice()
  const at = copy.length >> 1
  copy[at] = copy[at]! ^ 0x01
  return copy
}
const dropLastBytes = (bytes: Uint8Array) => bytes.slice(0, bytes.length - 7)
const zeroed = (bytes: Uint8Array) => new Uint8Array(bytes.length)

type Row = { seq: number; body: Uint8Array }

/** The log rows as stored, bytes included. */
const storedLog = (stub: Stub): Promise<Row[]> =>
  runInDurableObject(stub, (_instance: ShardReplica, state) =>
    state.storage.sql
      .exec<{ seq: number; body: ArrayBuffer }>('SELECT seq, body FROM update_log ORDER BY seq')
      .toArray()
      .map((row) => ({ seq: row.seq, body: new Uint8Array(row.body) })),
  )

/** The current snapshot's bytes, concatenated from its chunks. */
const storedSnapshot = (stub: Stub): Promise<Uint8Array> =>
  runInDurableObject(stub, (_instance: ShardReplica, state) => {
    const chunks = state.storage.sql
      .exec<{ body: ArrayBuffer }>(
        `SELECT body FROM snapshot_chunk WHERE generation =
           (SELECT generation FROM snapshot_meta WHERE id = 1) ORDER BY idx`,
      )
      .toArray()
    return new Uint8Array(chunks.flatMap((chunk) => [...new Uint8Array(chunk.body)]))
  })

type QuarantineRow = { source: string; seq: number; idx: number | null; verified: number }

const quarantine = (stub: Stub) =>
  runInDurableObject(stub, (_instance: ShardReplica, state) => ({
    rows: state.storage.sql
      .exec<QuarantineRow & { body: ArrayBuffer }>(
        'SELECT source, seq, idx, verified, body FROM quarantine ORDER BY id',
      )
      .toArray()
      .map(({ body, ...row }) => ({ ...row, body: new Uint8Array(body) })),
    repairs: state.storage.sql.exec('SELECT * FROM repair').toArray(),
  }))

/** The content digest of a document made of `updates`, as a replica would load it. */
function digestOf(updates: Uint8Array[]): { digest: string; pending: boolean } {
  const doc = new Y.Doc()
  Y.transact(doc, () => updates.forEach((update) => Y.applyUpdate(doc, update)))
  return { digest: contentDigest(doc), pending: hasPending(doc) }
}

/** Every client call, each of which a repairing shard must refuse. */
const clientCalls = (stub: Stub): [string, () => Promise<unknown>][] => [
  ['account', () => stub.account('alice')],
  ['missing account', () => stub.account('nobody')],
  ['ledger', () => stub.ledger('alice', null, 10)],
  ['transfer', () => stub.transfer('deposit/alice/d0')],
  ['key', () => stub.key('k1')],
  ['figures', () => stub.figures('alice')],
  ['createAccount', () => stub.createAccount({ accountId: 'carol' })],
  ['deposit', () => stub.deposit(depositOf('alice', 'new', usd(1)))],
  ['replayed deposit', () => stub.deposit(depositOf('alice', 'd0', usd(1) + 1n))],
  ['withdraw', () => stub.withdraw(withdrawalOf('alice', 'w', 1n))],
  [
    'createKey',
    () => stub.createKey({ keyId: 'k2', accountId: 'alice', scopes: ['read'], label: '' }),
  ],
  ['revokeKey', () => stub.revokeKey({ keyId: 'k1' })],
]

/**
 * The shard keeps exactly `kept` (its content digest is theirs), has quarantined `quarantined`
 * (source, seq, verified), refuses every client call while repairing, and stays so across
 * compaction, the alarm and a reload: the repair is in storage, not in the instance.
 */
async function expectRepairing(
  stub: Stub,
  damage: Damage,
  kept: Uint8Array[],
  quarantined: Omit<QuarantineRow, 'idx'>[],
) {
  const status = await stub.status()
  expect(status.damage).toEqual(damage)
  expect(status.repair).toMatchObject({ state: 'repairing', damage, finishedAt: null, peers: [] })
  const expected = digestOf(kept)
  expect(status.contentDigest).toBe(expected.digest)
  expect(status.pending).toBe(expected.pending)
  // Storage is clean again: one snapshot of what was kept, the log empty after it.
  expect(await logRows(stub)).toEqual([])

  const evidence = await quarantine(stub)
  expect(evidence.repairs).toHaveLength(1)
  expect(evidence.rows.map(({ source, seq, verified }) => ({ source, seq, verified }))).toEqual(
    quarantined,
  )

  const refusal = {
    ok: false,
    code: 'shard_damaged',
    message: expect.stringMatching(
      new RegExp(`repairing .*${escaped(`${damage.where}: ${damage.reason}`)}`),
    ),
  }
  for (const [name, call] of clientCalls(stub)) expect(await call(), name).toEqual(refusal)

  await stub.compact()
  await runInDurableObject(stub, (_instance: ShardReplica, state) =>
    state.storage.setAlarm(Date.now() + 60_000),
  )
  expect(await runDurableObjectAlarm(stub)).toBe(true)
  await evictDurableObject(stub)
  const again = await stub.status()
  expect(again.repair).toMatchObject({ state: 'repairing', damage })
  expect(again.contentDigest).toBe(expected.digest)
  expect(await quarantine(stub)).toEqual(evidence)
  expect(await stub.account('alice')).toEqual(refusal)
}

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

const logDamage = (seq: number): Damage => ({
  where: 'update_log',
  seq,
  reason: `update ${seq} does not match its checksum`,
})

const fromSeq = (rows: Row[], seq: number, damaged: number[]) =>
  rows
    .filter((row) => row.seq >= seq)
    .map((row) => ({
      source: 'update_log',
      seq: row.seq,
      verified: damaged.includes(row.seq) ? 0 : 1,
    }))

describe('a damaged update log', () => {
  it('serves the untampered shards it builds here', async () => {
    for (const compacted of [false, true]) {
      const stub = await populated('clean', 40, compacted)
      await evictDurableObject(stub)
      const status = await stub.status()
      expect(status.damage).toBeNull()
      expect(status.repair).toBeNull()
      expect(await stub.account('alice')).toMatchObject({ ok: true })
    }
  }, 30_000)

  it('keeps the rows before a flipped byte and quarantines it and every row after it', async () => {
    const stub = await populated('log-flip', 40, false)
    const rows = await storedLog(stub)
    const seq = rows[20]!.seq
    await tamper(stub, (sql) => editBlob(sql, 'update_log', `seq = ${seq}`, flipMiddleByte))
    await evictDurableObject(stub)
    await expectRepairing(
      stub,
      logDamage(seq),
      rows.filter((row) => row.seq < seq).map((row) => row.body),
      fromSeq(rows, seq, [seq]),
    )
    // The damaged bytes are kept as they were found, the rows after it untouched.
    const evidence = (await quarantine(stub)).rows
    expect(evidence[0]!.body).toEqual(flipMiddleByte(rows[20]!.body))
    expect(evidence.slice(1).map((row) => row.body)).toEqual(rows.slice(21).map((row) => row.body))
  }, 30_000)

  it('quarantines a truncated newest row alone', async () => {
    const stub = await populated('log-truncate', 40, false)
    const rows = await storedLog(stub)
    const seq = rows.at(-1)!.seq
    await tamper(stub, (sql) => editBlob(sql, 'update_log', `seq = ${seq}`, dropLastBytes))
    await evictDurableObject(stub)
    await expectRepairing(
      stub,
      logDamage(seq),
      rows.slice(0, -1).map((row) => row.body),
      fromSeq(rows, seq, [seq]),
    )
  }, 30_000)

  it('keeps an intact snapshot when the log tail after it is damaged', async () => {
    const stub = await populated('tail-flip', 40, true)
    const snapshot = await storedSnapshot(stub)
    const tail = await storedLog(stub)
    expect(tail).toHaveLength(5)
    const seq = tail[2]!.seq
    await tamper(stub, (sql) => editBlob(sql, 'update_log', `seq = ${seq}`, flipMiddleByte))
    await evictDurableObject(stub)
    await expectRepairing(
      stub,
      logDamage(seq),
      [snapshot, ...tail.slice(0, 2).map((row) => row.body)],
      fromSeq(tail, seq, [seq]),
    )
  }, 30_000)

  // Sequence numbers are dense (append takes the next one, compaction folds a prefix), so a gap
  // is an acknowledged write that is gone, and the rows after it may depend on it: they are
  // quarantined too, intact (a repair applies them again once the peers' state is in).
  for (const [position, compacted, index] of [
    ['the middle of the log', false, 20],
    ['right after the snapshot', true, 0],
  ] as const) {
    it(`cuts the log at a row missing from ${position}`, async () => {
      const stub = await populated('log-gap', 40, compacted)
      const snapshot = compacted ? [await storedSnapshot(stub)] : []
      const rows = await storedLog(stub)
      const seq = rows[index]!.seq
      await tamper(stub, (sql) => sql.exec('DELETE FROM update_log WHERE seq = ?', seq))
      await evictDurableObject(stub)
      await expectRepairing(
        stub,
        {
          where: 'update_log',
          seq,
          reason: `update ${seq} is missing (next stored is ${seq + 1})`,
        },
        [...snapshot, ...rows.slice(0, index).map((row) => row.body)],
        fromSeq(rows, seq + 1, []),
      )
    }, 30_000)
  }
})

describe('a damaged snapshot', () => {
  // 1,200 deposits make a snapshot of about 170 KB: two chunks.
  const deposits = 1_200

  it('builds a snapshot of more than one chunk', async () => {
    const stub = await populated('chunks', deposits, true)
    const chunks = await chunkRows(stub)
    expect(chunks.length).toBeGreaterThanOrEqual(2)
    expect(chunks.every((chunk) => chunk.generation === 1)).toBe(true)
  }, 30_000)

  // The log rows the snapshot folded are gone: the shard starts from the log tail after it alone
  // (its structs pending on what the snapshot held) and the whole snapshot goes to quarantine.
  for (const [how, idx, edit] of [
    ['a flipped byte', 1, flipMiddleByte],
    ['a truncated chunk', 0, dropLastBytes],
  ] as const) {
    it(`quarantines every chunk of a snapshot with ${how}`, async () => {
      const stub = await populated(`chunk-${idx}`, deposits, true)
      const chunks = await chunkRows(stub)
      const tail = await storedLog(stub)
      const uptoSeq = tail[0]!.seq - 1
      await tamper(stub, (sql) =>
        editBlob(sql, 'snapshot_chunk', `generation = 1 AND idx = ${idx}`, edit),
      )
      await evictDurableObject(stub)
      await expectRepairing(
        stub,
        { where: 'snapshot', reason: 'snapshot bytes do not match their checksum' },
        tail.map((row) => row.body),
        chunks.map(() => ({ source: 'snapshot_chunk', seq: uptoSeq, verified: 0 })),
      )
      expect((await stub.status()).pending).toBe(true)
    }, 30_000)
  }

  it('quarantines the chunks left of a snapshot missing one', async () => {
    const stub = await populated('chunk-delete', deposits, true)
    const chunks = await chunkRows(stub)
    const tail = await storedLog(stub)
    await tamper(stub, (sql) =>
      sql.exec('DELETE FROM snapshot_chunk WHERE generation = 1 AND idx = 0'),
    )
    await evictDurableObject(stub)
    await expectRepairing(
      stub,
      { where: 'snapshot', reason: `expected ${chunks.length} chunks, found ${chunks.length - 1}` },
      tail.map((row) => row.body),
      chunks.slice(1).map(() => ({ source: 'snapshot_chunk', seq: tail[0]!.seq - 1, verified: 0 })),
    )
  }, 30_000)
})

describe('finishing a repair', () => {
  /**
   * Damages row `index` of a fresh shard's log (zeroed, as the partition harness does), then, in
   * the shard's storage, opens the document as a replica would and applies a peer's SyncStep2:
   * what `peer` (updates held by the peer) lacks against the repairing document's state vector.
   * Returns the repair's report and the shard, reloaded from storage afterwards.
   */
  async function repairFrom(
    label: string,
    index: number,
    peer: (rows: Row[]) => Row[],
    { origin, edit = zeroed }: { origin?: string; edit?: (bytes: Uint8Array) => Uint8Array } = {},
  ) {
    const stub = await populated(label, 40, false)
    const rows = await storedLog(stub)
    const seq = rows.at(index)!.seq
    await tamper(stub, (sql) => {
      editBlob(sql, 'update_log', `seq = ${seq}`, edit)
      if (origin !== undefined)
        sql.exec('UPDATE update_log SET origin = ? WHERE seq = ?', origin, seq)
    })
    await evictDurableObject(stub)
    const peerDoc = new Y.Doc()
    for (const row of peer(rows)) Y.applyUpdate(peerDoc, row.body)
    const report = await runInDurableObject(stub, (_instance: ShardReplica, state) => {
      const held = durable.open(
        label,
        state.storage,
        () => undefined,
        shardChecks(0, 1, operatorCheck()),
      )
      expect(held.repair).not.toBeNull()
      expect(durable.serving(held)).toBe(false)
      held.peersToRepair = 1
      if (!held.state.ok) throw new Error('the repairing document is loaded')
      const step2 = Y.encodeStateAsUpdate(peerDoc, Y.encodeStateVector(held.state.doc))
      durable.applyRemote(held, 'peer:b', step2)
      const finished = durable.peerSynced(held, 'b')
      expect(durable.serving(held)).toBe(true)
      return finished
    })
    await evictDurableObject(stub)
    return { stub, rows, seq, report: report! }
  }

  it('ends once the peers are synced, holding everything, the quarantine kept', async () => {
    // The peer holds everything this node held (the harness drains a node before damaging it).
    const { stub, rows, seq, report } = await repairFrom('finish-all', 20, (rows) => rows)
    expect(report).toMatchObject({ damage: logDamage(seq), peers: ['b'], mayHaveLost: true })
    // Zeroed bytes decode as nothing: what the row held cannot be told from them.
    expect(report.outcomes).toEqual({ undecodable: 1, held: rows.length - 21 })
    expect(report.quarantined[0]).toMatchObject({ seq, outcome: 'undecodable', verified: false })
    expect(report.quarantined[0]!.head).toMatch(/^(00)+$/)
    const status = await stub.status()
    expect(status.damage).toBeNull()
    expect(status.repair).toMatchObject({ state: 'repaired', peers: ['b'] })
    expect(status.contentDigest).toBe(digestOf(rows.map((row) => row.body)).digest)
    expect(await stub.account('alice')).toMatchObject({ ok: true })
    expect(await stub.deposit(depositOf('alice', 'after', 1n))).toMatchObject({ ok: true })
    expect((await quarantine(stub)).rows).toHaveLength(rows.length - 20)
  }, 30_000)

  it('counts a damaged row that a synced peer had sent as held', async () => {
    const { rows, seq, report } = await repairFrom('finish-sent', 20, (rows) => rows, {
      origin: 'peer:b',
    })
    expect(report.mayHaveLost).toBe(false)
    expect(report.outcomes).toEqual({ from_synced_peer: 1, held: rows.length - 21 })
    expect(report.quarantined[0]).toMatchObject({ seq, origin: 'peer:b' })
  }, 30_000)

  // Halved bytes no longer decode, but still name their first client and clock.
  const halved = (bytes: Uint8Array) => bytes.slice(0, bytes.length >> 1)
  for (const [held, peer, outcome] of [
    [true, (rows: Row[]) => rows, 'held'],
    [false, (rows: Row[]) => rows.slice(0, -1), 'missing'],
  ] as const) {
    it(`judges a truncated row by the first struct it names: ${outcome}`, async () => {
      const { report } = await repairFrom(`finish-halved-${outcome}`, -1, peer, { edit: halved })
      expect(report.outcomes).toEqual({ [outcome]: 1 })
      expect(report.mayHaveLost).toBe(!held)
    }, 30_000)
  }

  it('applies again the quarantined rows after the damage that no peer held', async () => {
    // The peer has everything up to the damaged row: the writes after it were only here.
    const { stub, rows, report } = await repairFrom('finish-restore', 20, (rows) =>
      rows.slice(0, 21),
    )
    expect(report.outcomes).toEqual({ undecodable: 1, restored: rows.length - 21 })
    expect((await stub.status()).contentDigest).toBe(digestOf(rows.map((row) => row.body)).digest)
    const ledger = await stub.ledger('alice', null, 100)
    expect(ledger).toMatchObject({ ok: true })
  }, 30_000)

  it('records the writes no peer held and that depend on the lost row as lost', async () => {
    // Nobody else holds the damaged row: the rows after it (the same Yjs client's later writes)
    // depend on it and cannot be applied; the shard serves what it could get, pending nothing.
    const { stub, rows, report } = await repairFrom('finish-lost', 20, (rows) => rows.slice(0, 20))
    expect(report.mayHaveLost).toBe(true)
    expect(report.outcomes).toEqual({ undecodable: 1, depends_on_lost: rows.length - 21 })
    const status = await stub.status()
    expect(status.pending).toBe(false)
    expect(status.contentDigest).toBe(digestOf(rows.slice(0, 20).map((row) => row.body)).digest)
  }, 30_000)
})
