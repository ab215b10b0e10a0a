// Compaction (design.md §3): the log folds into a chunked snapshot swapped in atomically, no stored
// value is over 128 KiB, reload = snapshot + log tail, and sequence numbers keep increasing across
// compactions and reloads. The alarm compacts once the tail crosses its row or byte threshold.

import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import {
  compactionDelayMs,
  compactionLogBytesMax,
  compactionLogRowsMax,
  snapshotChunkBytesMax,
  storedValueBytesMax,
} from '../../src/constants'
import { formatUsd } from '../../src/domain/money'
import type { ShardReplica } from '../../src/replica/shard-replica'
import { chunkRows, depositOf, freshShard, largestStoredValue, logRows, usd } from './helpers'

type Stub = DurableObjectStub<ShardReplica>

const collateral = async (stub: Stub, accountId: string) => {
  const read = await stub.account(accountId)
  if (!read.ok) throw new Error(`${read.code}: ${read.message}`)
  return read.value.value.collateral
}

const alarmOf = (stub: Stub) =>
  runInDurableObject(stub, (_instance: ShardReplica, state) => state.storage.getAlarm())

describe('compaction', () => {
  it('folds the log into a snapshot and keeps the sequence increasing across reloads', async () => {
    const stub = freshShard('compact')
    await stub.createAccount({ accountId: 'alice' })
    await stub.createAccount({ accountId: 'bob' })
    for (let i = 0; i < 30; i++) await stub.deposit(depositOf(i % 2 ? 'bob' : 'alice', `d${i}`, 3n))
    const before = await stub.status()
    expect(before.storage).toMatchObject({ logRows: 32, lastSeq: 32, snapshot: null })

    const compacted = await stub.compact()
    expect(compacted).toMatchObject({
      logRows: 0,
      logBytes: 0,
      lastSeq: 32,
      snapshot: { generation: 1, uptoSeq: 32, chunkCount: 1 },
    })
    expect((await stub.status()).storage).toEqual(compacted)
    expect((await stub.status()).contentDigest).toBe(before.contentDigest)

    // Reload from the snapshot alone (empty tail), then write: the write's seq follows the
    // snapshot's, not the empty log's.
    await evictDurableObject(stub)
    expect((await stub.status()).contentDigest).toBe(before.contentDigest)
    expect(await collateral(stub, 'alice')).toBe('0.000045')
    expect((await stub.deposit(depositOf('alice', 'after-1', usd(1)))).ok).toBe(true)
    expect((await logRows(stub)).map((row) => row.seq)).toEqual([33])
    expect((await stub.status()).storage).toMatchObject({ logRows: 1, lastSeq: 33 })

    // That write survives a reload: snapshot + tail.
    await evictDurableObject(stub)
    expect(await collateral(stub, 'alice')).toBe('1.000045')
    expect(await stub.transfer('deposit/alice/after-1')).toMatchObject({ ok: true })
    expect((await stub.deposit(depositOf('bob', 'after-2', usd(2)))).ok).toBe(true)
    expect((await logRows(stub)).map((row) => row.seq)).toEqual([33, 34])

    // A second compaction: a new generation, the old chunks gone, the sequence still going.
    const digest = (await stub.status()).contentDigest
    expect(await stub.compact()).toMatchObject({
      logRows: 0,
      lastSeq: 34,
      snapshot: { generation: 2, uptoSeq: 34 },
    })
    expect((await chunkRows(stub)).every((chunk) => chunk.generation === 2)).toBe(true)
    expect((await stub.deposit(depositOf('bob', 'after-3', usd(3)))).ok).toBe(true)
    expect((await logRows(stub)).map((row) => row.seq)).toEqual([35])

    // Compacting straight after a reload, and compacting with nothing new, both keep the order.
    await evictDurableObject(stub)
    expect(await stub.compact()).toMatchObject({ lastSeq: 35, snapshot: { generation: 3 } })
    expect(await stub.compact()).toMatchObject({
      lastSeq: 35,
      snapshot: { generation: 4, uptoSeq: 35 },
    })
    await evictDurableObject(stub)
    expect((await stub.deposit(depositOf('bob', 'after-4', usd(4)))).ok).toBe(true)
    expect((await logRows(stub)).map((row) => row.seq)).toEqual([36])
    await evictDurableObject(stub)
    expect(await collateral(stub, 'alice')).toBe('1.000045')
    expect(await collateral(stub, 'bob')).toBe('9.000045')
    expect((await stub.status()).contentDigest).not.toBe(digest)
    const ledger = await stub.ledger('bob', null, 500)
    expect(ledger.ok && ledger.value.value.entries.length).toBe(18)
    expect(await largestStoredValue(stub)).toBeLessThanOrEqual(storedValueBytesMax)
  }, 30_000)

  it('splits a large snapshot into chunks under the value limit', async () => {
    const stub = freshShard('chunked')
    const stats = await runInDurableObject(stub, (instance: ShardReplica) => {
      instance.createAccount({ accountId: 'alice' })
      for (let i = 0; i < 1_900; i++) instance.deposit(depositOf('alice', `d${i}`, 1n))
      return instance.compact()
    })
    const snapshot = stats.snapshot!
    expect(snapshot.chunkCount).toBe(Math.ceil(snapshot.bytes / snapshotChunkBytesMax))
    expect(snapshot.chunkCount).toBeGreaterThanOrEqual(3)
    const chunks = await chunkRows(stub)
    expect(chunks.map((chunk) => chunk.idx)).toEqual([...Array(snapshot.chunkCount).keys()])
    expect(chunks.reduce((n, chunk) => n + chunk.bytes, 0)).toBe(snapshot.bytes)
    for (const chunk of chunks.slice(0, -1)) expect(chunk.bytes).toBe(snapshotChunkBytesMax)
    expect(await largestStoredValue(stub)).toBeLessThanOrEqual(storedValueBytesMax)
    await evictDurableObject(stub)
    expect(await collateral(stub, 'alice')).toBe(formatUsd(1_900n))
  }, 30_000)
})

describe('the compaction alarm', () => {
  it(`is set by the write that brings the tail to ${compactionLogRowsMax} rows, and compacts`, async () => {
    const stub = freshShard('alarm-rows')
    await runInDurableObject(stub, (instance: ShardReplica) => {
      instance.createAccount({ accountId: 'alice' })
      for (let i = 0; i < compactionLogRowsMax - 2; i++) {
        instance.deposit(depositOf('alice', `d${i}`, 1n))
      }
    })
    expect((await stub.status()).storage.logRows).toBe(compactionLogRowsMax - 1)
    expect(await alarmOf(stub)).toBeNull()

    const setAt = Date.now()
    expect((await stub.deposit(depositOf('alice', 'crossing', 1n))).ok).toBe(true)
    const alarm = await alarmOf(stub)
    const digest = (await stub.status()).contentDigest
    expect(alarm).not.toBeNull()
    expect(alarm!).toBeGreaterThanOrEqual(setAt + compactionDelayMs - 50)

    // The alarm may already have fired on its own on a slow machine; either way it compacts.
    const ran = await runDurableObjectAlarm(stub)
    const status = await stub.status()
    expect(status.storage).toMatchObject({
      logRows: 0,
      lastSeq: compactionLogRowsMax,
      snapshot: { generation: 1, uptoSeq: compactionLogRowsMax },
    })
    expect(status.contentDigest).toBe(digest)
    expect(await alarmOf(stub)).toBeNull()
    console.log(`alarm compaction: ran by runDurableObjectAlarm=${ran}`)

    // The next write does not schedule another compaction and survives a reload.
    expect((await stub.deposit(depositOf('alice', 'next', 1n))).ok).toBe(true)
    expect(await alarmOf(stub)).toBeNull()
    await evictDurableObject(stub)
    expect((await logRows(stub)).map((row) => row.seq)).toEqual([compactionLogRowsMax + 1])
    expect(await collateral(stub, 'alice')).toBe(formatUsd(BigInt(compactionLogRowsMax)))
  }, 30_000)

  it(`is set by the write that brings the tail to ${compactionLogBytesMax} bytes`, async () => {
    const stub = freshShard('alarm-bytes')
    await stub.createAccount({ accountId: 'alice' })
    const label = 'x'.repeat(100_000)
    let bytes = (await stub.status()).storage.logBytes
    let keys = 0
    for (;;) {
      const write = await stub.createKey({
        keyId: `k${keys++}`,
        accountId: 'alice',
        scopes: ['read'],
        label,
      })
      expect(write.ok).toBe(true)
      bytes = (await stub.status()).storage.logBytes
      if (bytes >= compactionLogBytesMax) break
      expect(await alarmOf(stub)).toBeNull()
    }
    expect(await alarmOf(stub)).not.toBeNull()
    await runDurableObjectAlarm(stub)
    const status = await stub.status()
    expect(status.storage).toMatchObject({ logRows: 0, snapshot: { generation: 1 } })
    expect(status.storage.snapshot!.chunkCount).toBeGreaterThan(40)
    expect(await largestStoredValue(stub)).toBeLessThanOrEqual(storedValueBytesMax)
    await evictDurableObject(stub)
    expect(await stub.key(`k${keys - 1}`)).toMatchObject({ ok: true })
  }, 30_000)
})
