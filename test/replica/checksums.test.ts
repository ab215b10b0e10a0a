// Damaged storage (design.md §5, F10): every stored byte is checked on reload, and a shard whose
// log or snapshot does not match its checksums refuses every read and write, saying where,
// instead of serving wrong balances. Nothing repairs or compacts over the damage either.

import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import type { ShardReplica } from '../../src/replica/shard-replica'
import type { Damage } from '../../src/replica/shard-storage'
import { chunkRows, depositOf, freshShard, logRows, usd, withdrawalOf } from './helpers'

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

/** Everything durable, to show that nothing touches a damaged shard's storage. */
const storedRows = (stub: Stub) =>
  runInDurableObject(stub, (_instance: ShardReplica, state) => ({
    log: state.storage.sql
      .exec('SELECT seq, body, checksum FROM update_log ORDER BY seq')
      .toArray(),
    chunks: state.storage.sql
      .exec('SELECT generation, idx, body FROM snapshot_chunk ORDER BY generation, idx')
      .toArray(),
    meta: state.storage.sql.exec('SELECT * FROM snapshot_meta').toArray(),
  }))

async function expectRefusesEverything(stub: Stub, damage: Damage) {
  const status = await stub.status()
  expect(status.damage).toEqual(damage)
  expect(status.contentDigest).toBeNull()
  expect(status.stateVectorDigest).toBeNull()

  const stored = await storedRows(stub)
  const refusal = {
    ok: false,
    code: 'shard_damaged',
    message: expect.stringContaining(`${damage.where}: ${damage.reason}`),
  }
  const calls: [string, () => Promise<unknown>][] = [
    ['account', () => stub.account('alice')],
    ['missing account', () => stub.account('nobody')],
    ['ledger', () => stub.ledger('alice', null, 10)],
    ['transfer', () => stub.transfer('deposit/alice/d0')],
    ['key', () => stub.key('k1')],
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
  for (const [name, call] of calls) expect(await call(), name).toEqual(refusal)

  // Neither an explicit compaction nor the alarm folds a damaged shard over its evidence.
  await stub.compact()
  await runInDurableObject(stub, (_instance: ShardReplica, state) =>
    state.storage.setAlarm(Date.now() + 60_000),
  )
  expect(await runDurableObjectAlarm(stub)).toBe(true)
  expect(await storedRows(stub)).toEqual(stored)

  // The damage is in storage, not in the instance: another reload refuses the same way.
  await evictDurableObject(stub)
  expect((await stub.status()).damage).toEqual(damage)
  expect(await stub.account('alice')).toEqual(refusal)
}

describe('checksums of the update log', () => {
  it('serves the untampered shards it builds here', async () => {
    for (const compacted of [false, true]) {
      const stub = await populated('clean', 40, compacted)
      await evictDurableObject(stub)
      expect((await stub.status()).damage).toBeNull()
      expect(await stub.account('alice')).toMatchObject({ ok: true })
    }
  }, 30_000)

  it('refuses a shard with a flipped byte in a log row', async () => {
    const stub = await populated('log-flip', 40, false)
    const seq = (await logRows(stub))[20]!.seq
    await tamper(stub, (sql) => editBlob(sql, 'update_log', `seq = ${seq}`, flipMiddleByte))
    await evictDurableObject(stub)
    await expectRefusesEverything(stub, {
      where: 'update_log',
      seq,
      reason: `update ${seq} does not match its checksum`,
    })
  }, 30_000)

  it('refuses a shard with a truncated log row', async () => {
    const stub = await populated('log-truncate', 40, false)
    const seq = (await logRows(stub)).at(-1)!.seq
    await tamper(stub, (sql) => editBlob(sql, 'update_log', `seq = ${seq}`, dropLastBytes))
    await evictDurableObject(stub)
    await expectRefusesEverything(stub, {
      where: 'update_log',
      seq,
      reason: `update ${seq} does not match its checksum`,
    })
  }, 30_000)

  it('refuses a shard whose log tail after a snapshot is damaged', async () => {
    const stub = await populated('tail-flip', 40, true)
    const tail = await logRows(stub)
    expect(tail).toHaveLength(5)
    const seq = tail[2]!.seq
    await tamper(stub, (sql) => editBlob(sql, 'update_log', `seq = ${seq}`, flipMiddleByte))
    await evictDurableObject(stub)
    await expectRefusesEverything(stub, {
      where: 'update_log',
      seq,
      reason: `update ${seq} does not match its checksum`,
    })
  }, 30_000)

  // Sequence numbers are dense (append takes the next one, compaction folds a prefix), so a gap
  // is an acknowledged write that is gone. Serving without it serves wrong balances: the later
  // updates of the same Yjs client stay pending and every balance misses them.
  for (const [position, compacted, pick] of [
    ['the middle of the log', false, (rows: { seq: number }[]) => rows[20]!.seq],
    ['right after the snapshot', true, (rows: { seq: number }[]) => rows[0]!.seq],
  ] as const) {
    it(`refuses a shard with a log row missing from ${position}`, async () => {
      const stub = await populated('log-gap', 40, compacted)
      const seq = pick(await logRows(stub))
      await tamper(stub, (sql) => sql.exec('DELETE FROM update_log WHERE seq = ?', seq))
      await evictDurableObject(stub)
      const status = await stub.status()
      expect(status.damage).toMatchObject({ where: 'update_log', seq })
      expect(await stub.account('alice')).toMatchObject({ ok: false, code: 'shard_damaged' })
      expect(await stub.deposit(depositOf('alice', 'new', 1n))).toMatchObject({
        ok: false,
        code: 'shard_damaged',
      })
    }, 30_000)
  }
})

describe('checksums of the snapshot', () => {
  // 1,200 deposits make a snapshot of about 170 KB: two chunks.
  const deposits = 1_200

  it('builds a snapshot of more than one chunk', async () => {
    const stub = await populated('chunks', deposits, true)
    const chunks = await chunkRows(stub)
    expect(chunks.length).toBeGreaterThanOrEqual(2)
    expect(chunks.every((chunk) => chunk.generation === 1)).toBe(true)
  }, 30_000)

  it('refuses a shard with a flipped byte in a snapshot chunk', async () => {
    const stub = await populated('chunk-flip', deposits, true)
    await tamper(stub, (sql) =>
      editBlob(sql, 'snapshot_chunk', 'generation = 1 AND idx = 1', flipMiddleByte),
    )
    await evictDurableObject(stub)
    await expectRefusesEverything(stub, {
      where: 'snapshot',
      reason: 'snapshot bytes do not match their checksum',
    })
  }, 30_000)

  it('refuses a shard with a truncated snapshot chunk', async () => {
    const stub = await populated('chunk-truncate', deposits, true)
    await tamper(stub, (sql) =>
      editBlob(sql, 'snapshot_chunk', 'generation = 1 AND idx = 0', dropLastBytes),
    )
    await evictDurableObject(stub)
    await expectRefusesEverything(stub, {
      where: 'snapshot',
      reason: 'snapshot bytes do not match their checksum',
    })
  }, 30_000)

  for (const which of ['first', 'last'] as const) {
    it(`refuses a shard whose ${which} snapshot chunk is deleted`, async () => {
      const stub = await populated(`chunk-delete-${which}`, deposits, true)
      const chunks = await chunkRows(stub)
      const idx = which === 'first' ? 0 : chunks.at(-1)!.idx
      await tamper(stub, (sql) =>
        sql.exec('DELETE FROM snapshot_chunk WHERE generation = 1 AND idx = ?', idx),
      )
      await evictDurableObject(stub)
      await expectRefusesEverything(stub, {
        where: 'snapshot',
        reason: `expected ${chunks.length} chunks, found ${chunks.length - 1}`,
      })
    }, 30_000)
  }
})
