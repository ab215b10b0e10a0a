// Durability of the shard replica (design.md §3): an acknowledged write is in SQLite before the
// call returns, so a replica torn down and reloaded from storage answers every read as before;
// a rejected, replayed or refused command leaves no trace in the log or the document.

import { evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { formatUsd } from '../../src/domain/money'
import type { ShardReplica } from '../../src/replica/shard-replica'
import {
  depositOf,
  freshShard,
  logRows,
  nextCursor,
  usd,
  withdrawalOf,
  type LedgerPage,
} from './helpers'

type Stub = DurableObjectStub<ShardReplica>

/** Everything a client can read about the accounts of a test, in one comparable value. */
async function readAll(stub: Stub, accounts: string[], transferIds: string[], keyIds: string[]) {
  const out: Record<string, unknown> = {}
  for (const account of accounts) {
    const read = await stub.account(account)
    // The stable part of the summary (a read may also carry market figures that age).
    out[`account ${account}`] = read.ok
      ? {
          collateral: read.value.value.collateral,
          equity: read.value.value.equity,
          availableBalance: read.value.value.availableBalance,
          withdrawable: read.value.value.withdrawable,
          createdAt: read.value.value.createdAt,
          reflects: read.value.reflects,
        }
      : read
    out[`ledger ${account}`] = await stub.ledger(account, null, 500)
    // Paging with a cursor reads the same entries in the same order.
    const pages: unknown[] = []
    let cursor: { ts: number; id: string } | null = null
    do {
      const page = await stub.ledger(account, cursor, 2)
      if (!page.ok) throw new Error(page.message)
      const value = page.value.value as LedgerPage
      pages.push(...value.entries)
      cursor = nextCursor(value)
    } while (cursor !== null)
    out[`pages ${account}`] = pages
  }
  for (const id of transferIds) out[`transfer ${id}`] = await stub.transfer(id)
  for (const id of keyIds) out[`key ${id}`] = await stub.key(id)
  return out
}

describe('durability and reload', () => {
  it('finds every acknowledged write after the replica is evicted and reloaded', async () => {
    const stub = freshShard('durable')
    expect((await stub.createAccount({ accountId: 'alice' })).ok).toBe(true)
    expect((await stub.createAccount({ accountId: 'bob' })).ok).toBe(true)
    const writes = [
      await stub.deposit(depositOf('alice', 'd1', usd(100))),
      await stub.deposit(depositOf('alice', 'd2', 1_234_567n)),
      await stub.deposit(depositOf('bob', 'd1', usd(7))),
      await stub.withdraw(withdrawalOf('alice', 'w1', 35_000_001n)),
      await stub.createKey({ keyId: 'k1', accountId: 'alice', scopes: ['read'], label: 'desk' }),
      await stub.revokeKey({ keyId: 'k1' }),
    ]
    for (const write of writes)
      expect(write).toMatchObject({ ok: true, value: { replayed: false } })
    const transferIds = [
      'deposit/alice/d1',
      'deposit/alice/d2',
      'deposit/bob/d1',
      'withdrawal/alice/w1',
    ]

    const before = await readAll(stub, ['alice', 'bob'], transferIds, ['k1'])
    const statusBefore = await stub.status()
    expect(before['account alice']).toMatchObject({
      collateral: '66.234566',
      withdrawable: '66.234566',
    })
    expect(before['account bob']).toMatchObject({ collateral: '7' })
    const ledger = before['ledger alice'] as { ok: true; value: { value: LedgerPage } }
    expect(ledger.value.value.entries.map((entry) => [entry.id, entry.amount])).toEqual([
      ['deposit/alice/d1', '100'],
      ['deposit/alice/d2', '1.234567'],
      ['withdrawal/alice/w1', '-35.000001'],
    ])
    expect(statusBefore.storage).toMatchObject({ logRows: 8, lastSeq: 8, snapshot: null })

    await evictDurableObject(stub)

    const statusAfter = await stub.status()
    expect(statusAfter.damage).toBeNull()
    expect(statusAfter.contentDigest).toBe(statusBefore.contentDigest)
    expect(statusAfter.stateVectorDigest).toBe(statusBefore.stateVectorDigest)
    expect(statusAfter.storage).toEqual(statusBefore.storage)
    expect(await readAll(stub, ['alice', 'bob'], transferIds, ['k1'])).toEqual(before)
    expect(await stub.key('k1')).toMatchObject({ ok: true, value: { value: { revoked: true } } })

    // A retry after the restart replays the stored result (exactly once, I3) and appends nothing.
    const retry = await stub.deposit(depositOf('alice', 'd1', usd(100)))
    expect(retry).toMatchObject({ ok: true, value: { replayed: true } })
    expect(retry.ok && retry.value.record).toEqual(writes[0]!.ok && writes[0]!.value.record)
    // The next write continues the sequence.
    expect((await stub.deposit(depositOf('bob', 'd2', usd(1)))).ok).toBe(true)
    expect((await logRows(stub)).map((row) => row.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
  }, 30_000)

  it('keeps every write through repeated restarts, each writing under a new Yjs client', async () => {
    const stub = freshShard('restarts')
    await stub.createAccount({ accountId: 'carol' })
    let expected = 0n
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 3; i++) {
        const amount = BigInt(round * 10 + i + 1) * 1_000_001n
        expect((await stub.deposit(depositOf('carol', `r${round}-${i}`, amount))).ok).toBe(true)
        expected += amount
      }
      const digest = (await stub.status()).contentDigest
      await evictDurableObject(stub)
      expect((await stub.status()).contentDigest).toBe(digest)
      const summary = await stub.account('carol')
      expect(summary.ok && summary.value.value.collateral).toBe(formatUsd(expected))
      const ledger = await stub.ledger('carol', null, 500)
      expect(ledger.ok && ledger.value.value.entries.length).toBe((round + 1) * 3)
    }
    expect((await logRows(stub)).map((row) => row.seq)).toEqual(
      Array.from({ length: 16 }, (_, i) => i + 1),
    )
  }, 30_000)
})

describe('atomicity', () => {
  it('appends no log row and changes nothing for a rejected or replayed command', async () => {
    const stub = freshShard('atomic')
    await stub.createAccount({ accountId: 'dave' })
    await stub.deposit(depositOf('dave', 'd1', usd(10)))
    await stub.withdraw(withdrawalOf('dave', 'w1', usd(1)))
    await stub.createKey({ keyId: 'k1', accountId: 'dave', scopes: ['read', 'trade'], label: 'x' })
    await stub.revokeKey({ keyId: 'k1' })

    const cases: [
      string,
      () => Promise<{ ok: boolean; code?: string; value?: unknown }>,
      string,
    ][] = [
      [
        'deposit to a missing account',
        () => stub.deposit(depositOf('nobody', 'd1', usd(1))),
        'account_not_found',
      ],
      [
        'withdrawal from a missing account',
        () => stub.withdraw(withdrawalOf('nobody', 'w', 1n)),
        'account_not_found',
      ],
      [
        'withdrawal beyond the balance',
        () => stub.withdraw(withdrawalOf('dave', 'w2', usd(9) + 1n)),
        'insufficient_funds',
      ],
      [
        'deposit id reused with another amount',
        () => stub.deposit(depositOf('dave', 'd1', usd(11))),
        'idempotency_conflict',
      ],
      [
        'withdrawal id reused with another amount',
        () => stub.withdraw(withdrawalOf('dave', 'w1', usd(2))),
        'idempotency_conflict',
      ],
      [
        'key for a missing account',
        () => stub.createKey({ keyId: 'k2', accountId: 'nobody', scopes: ['read'], label: '' }),
        'account_not_found',
      ],
      [
        'key id taken',
        () => stub.createKey({ keyId: 'k1', accountId: 'dave', scopes: ['read'], label: '' }),
        'idempotency_conflict',
      ],
      ['revocation of a missing key', () => stub.revokeKey({ keyId: 'k9' }), 'key_not_found'],
      ['replayed account', () => stub.createAccount({ accountId: 'dave' }), 'replayed'],
      ['replayed deposit', () => stub.deposit(depositOf('dave', 'd1', usd(10))), 'replayed'],
      ['replayed withdrawal', () => stub.withdraw(withdrawalOf('dave', 'w1', usd(1))), 'replayed'],
      ['replayed revocation', () => stub.revokeKey({ keyId: 'k1' }), 'replayed'],
    ]

    const rowsBefore = await logRows(stub)
    const statusBefore = await stub.status()
    expect(rowsBefore).toHaveLength(5)
    for (const [name, run, outcome] of cases) {
      const result = await run()
      if (outcome === 'replayed') {
        expect(result, name).toMatchObject({ ok: true, value: { replayed: true } })
      } else expect(result, name).toMatchObject({ ok: false, code: outcome })
      expect(await logRows(stub), name).toEqual(rowsBefore)
      const status = await stub.status()
      expect(status.contentDigest, name).toBe(statusBefore.contentDigest)
      expect(status.stateVectorDigest, name).toBe(statusBefore.stateVectorDigest)
    }
    expect(await stub.account('dave')).toMatchObject({
      ok: true,
      value: { value: { collateral: '9' } },
    })
  }, 30_000)

  it('drops a change that storage refuses (an update over the value limit) instead of serving it', async () => {
    const stub = freshShard('refused')
    await stub.createAccount({ accountId: 'erin' })
    await stub.deposit(depositOf('erin', 'd1', usd(5)))
    const statusBefore = await stub.status()
    const rowsBefore = await logRows(stub)

    // A 200 KB label makes one update over 128 KiB: append refuses it inside the transaction.
    const huge = 'x'.repeat(200_000)
    // (Called in the object, not over RPC: the pool reports an RPC method's throw as unhandled.)
    await runInDurableObject(stub, (instance: ShardReplica) => {
      expect(() =>
        instance.createKey({ keyId: 'big', accountId: 'erin', scopes: ['read'], label: huge }),
      ).toThrow(/fits one stored value/)
    })

    expect(await logRows(stub)).toEqual(rowsBefore)
    expect(await stub.key('big')).toMatchObject({ ok: false, code: 'not_found' })
    const statusAfter = await stub.status()
    expect(statusAfter.contentDigest).toBe(statusBefore.contentDigest)
    expect(statusAfter.stateVectorDigest).toBe(statusBefore.stateVectorDigest)

    // The replica keeps serving; the next write takes the next sequence number.
    expect((await stub.deposit(depositOf('erin', 'd2', usd(1)))).ok).toBe(true)
    expect((await logRows(stub)).map((row) => row.seq)).toEqual([1, 2, 3])
    await evictDurableObject(stub)
    expect(await stub.key('big')).toMatchObject({ ok: false, code: 'not_found' })
    expect(await stub.account('erin')).toMatchObject({
      ok: true,
      value: { value: { collateral: '6' } },
    })
  }, 30_000)
})
