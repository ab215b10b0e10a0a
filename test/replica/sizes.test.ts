// Shard documents of about 128 KiB, 2 MB and 10 MB (design.md §3): reload from the log alone,
// compaction, reload from the snapshot, and a write after compaction, with every balance exact
// after each reload. The documents are built outside the replica through the same commands and
// written straight into the log: one deposit per row for the 128 KiB shard (what single writes
// leave), 200 deposits (about 30 KB) per row for the larger ones (what group commit would leave).
// Timings are printed, never asserted: this machine is shared and noisy.

import { evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { ledgerPageLimitMax, snapshotChunkBytesMax, storedValueBytesMax } from '../../src/constants'
import { formatUsd } from '../../src/domain/money'
import type { ShardReplica } from '../../src/replica/shard-replica'
import * as storage from '../../src/replica/shard-storage'
import {
  buildShard,
  depositOf,
  freshShard,
  largestStoredValue,
  ledgerSum,
  logRows,
  usd,
  type BuiltShard,
  type LedgerPage,
} from './helpers'

type Stub = DurableObjectStub<ShardReplica>

/** Time of the first call after an eviction: construction, load from storage, one small read. */
async function timedReload(stub: Stub, accountId: string): Promise<number> {
  await evictDurableObject(stub)
  const started = performance.now()
  const read = await stub.ledger(accountId, null, 1)
  const elapsed = performance.now() - started
  expect(read.ok).toBe(true)
  return elapsed
}

/**
 * Every account's ledger, read from the replica, holds the expected entries and sums to the
 * expected balance; a sample of account summaries shows the same collateral.
 */
async function expectBalances(stub: Stub, built: BuiltShard) {
  const wrong = await runInDurableObject(stub, async (instance: ShardReplica) => {
    const mismatches: string[] = []
    for (const [accountId, expected] of built.balances) {
      const read = instance.ledger(accountId, null, ledgerPageLimitMax)
      if (!read.ok) {
        mismatches.push(`${accountId}: ${read.code}`)
        continue
      }
      const page = read.value.value as LedgerPage
      const sum = ledgerSum(page)
      if (sum !== expected || page.entries.length !== built.entries.get(accountId)) {
        mismatches.push(
          `${accountId}: ${page.entries.length} entries summing to ${formatUsd(sum)}, ` +
            `expected ${built.entries.get(accountId)} summing to ${formatUsd(expected)}`,
        )
      }
    }
    const sample = [...built.balances].filter(
      (_, i) => i % Math.ceil(built.balances.size / 20) === 0,
    )
    for (const [accountId, expected] of sample) {
      const read = await instance.account(accountId)
      const actual = read.ok ? read.value.value.collateral : read.code
      if (actual !== formatUsd(expected)) {
        mismatches.push(`${accountId}: collateral ${actual}, expected ${formatUsd(expected)}`)
      }
    }
    return mismatches
  })
  expect(wrong).toEqual([])
}

const mb = (bytes: number) => (bytes / 1_000_000).toFixed(2)
const ms = (value: number) => value.toFixed(0)

const cases: { label: string; target: number; accounts: number; perUpdate: number }[] = [
  { label: '128 KiB', target: 128 * 1024, accounts: 100, perUpdate: 1 },
  { label: '2 MB', target: 2_000_000, accounts: 500, perUpdate: 200 },
  { label: '10 MB', target: 10_000_000, accounts: 1_000, perUpdate: 200 },
]

describe('shard documents by size', () => {
  for (const { label, target, accounts, perUpdate } of cases) {
    it(`reloads, compacts and reloads a ${label} shard exactly`, async () => {
      let started = performance.now()
      const built: BuiltShard = buildShard(target, accounts, perUpdate)
      const buildMs = performance.now() - started
      const stub = freshShard(`size-${label.replace(' ', '')}`)
      await runInDurableObject(stub, (_instance: ShardReplica, state) => {
        state.storage.transactionSync(() => {
          for (const update of built.updates) storage.append(state.storage.sql, update, 'builder')
        })
      })
      const firstAccount = built.balances.keys().next().value!

      // 1. Reload from the log alone.
      const reloadLogMs = await timedReload(stub, firstAccount)
      const loaded = await stub.status()
      expect(loaded.damage).toBeNull()
      expect(loaded.pending).toBe(false)
      expect(loaded.storage).toMatchObject({ logRows: built.updates.length, snapshot: null })
      expect(loaded.contentDigest).toBe(built.digest)
      await expectBalances(stub, built)

      // 2. Compaction.
      started = performance.now()
      const compacted = await stub.compact()
      const compactMs = performance.now() - started
      const snapshot = compacted.snapshot!
      expect(compacted).toMatchObject({ logRows: 0, lastSeq: built.updates.length })
      expect(snapshot).toMatchObject({ generation: 1, uptoSeq: built.updates.length })
      expect(snapshot.chunkCount).toBe(Math.ceil(snapshot.bytes / snapshotChunkBytesMax))
      expect(await largestStoredValue(stub)).toBeLessThanOrEqual(storedValueBytesMax)

      // 3. Reload from the snapshot with an empty tail.
      const reloadSnapshotMs = await timedReload(stub, firstAccount)
      const reloaded = await stub.status()
      expect(reloaded.damage).toBeNull()
      expect(reloaded.contentDigest).toBe(built.digest)
      await expectBalances(stub, built)

      // 4. A write after compaction continues the sequence and survives a reload.
      expect((await stub.deposit(depositOf(firstAccount, 'after-compaction', usd(1)))).ok).toBe(
        true,
      )
      built.balances.set(firstAccount, built.balances.get(firstAccount)! + usd(1))
      built.entries.set(firstAccount, built.entries.get(firstAccount)! + 1)
      expect((await logRows(stub)).map((row) => row.seq)).toEqual([snapshot.uptoSeq + 1])
      const reloadTailMs = await timedReload(stub, firstAccount)
      await expectBalances(stub, built)
      expect(await stub.transfer(`deposit/${firstAccount}/after-compaction`)).toMatchObject({
        ok: true,
      })

      console.log(
        `size ${label}: doc ${mb(snapshot.bytes)} MB, ${built.deposits} deposits in ` +
          `${built.updates.length} log rows (built in ${ms(buildMs)} ms) | reload log-only ` +
          `${ms(reloadLogMs)} ms | compact ${ms(compactMs)} ms -> ${snapshot.chunkCount} chunks | ` +
          `reload snapshot ${ms(reloadSnapshotMs)} ms | reload snapshot+1 ${ms(reloadTailMs)} ms`,
      )
    }, 90_000)
  }
})
