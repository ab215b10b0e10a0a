// Client reads: the account summary (exact decimal strings) and the ledger (cursor paging in the
// order every node agrees on), each saying what it reflects.

import { describe, expect, it } from 'vitest'
import {
  accountOf,
  accountShardOf,
  api,
  deposit,
  expectReflects,
  expectRejectedUnchanged,
  newAccount,
  setUpApiTests,
  shardFingerprints,
  withdraw,
  type ApiKey,
} from './helpers'

setUpApiTests()

type Entry = { id: string; kind: string; amount: string; ts: number; node: string }

const byTimeThenId = (a: Entry, b: Entry) => a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** An account with five ledger entries: three deposits and two withdrawals. */
async function accountWithFiveEntries() {
  const { accountId, key } = await newAccount('100')
  await deposit(accountId, '0.1', 'dep-b')
  await withdraw(key, '20.5', 'wd-a')
  await deposit(accountId, '0.2', 'dep-a')
  await withdraw(key, '0.000001', 'wd-b')
  return { accountId, key }
}

async function walk(key: ApiKey, limit: number) {
  const pages: Entry[][] = []
  let cursor: string | null = null
  do {
    const query: string =
      cursor === null ? `?limit=${limit}` : `?limit=${limit}&cursor=${encodeURIComponent(cursor)}`
    const page = await api.signed(key, 'GET', `/v1/ledger${query}`)
    expect(page.status, JSON.stringify(page.body)).toBe(200)
    pages.push(page.body.entries)
    cursor = page.body.nextCursor
    expect(pages.length).toBeLessThan(20)
  } while (cursor !== null)
  return pages
}

describe('account summary', () => {
  it('reports exact decimal strings after deposits and withdrawals', async () => {
    const { accountId, key } = await newAccount('0')
    await deposit(accountId, '0.1')
    await deposit(accountId, '0.2')
    await withdraw(key, '0.05')
    const before = Date.now()
    const account = await accountOf(key)
    // Later fields (positions, marks) may be added; these figures are exact.
    expect(account).toMatchObject({
      accountId,
      createdAt: expect.any(Number),
      collateral: '0.25',
      equity: '0.25',
      unrealizedPnl: '0',
      initialMargin: '0',
      maintenanceMargin: '0',
      availableBalance: '0.25',
      withdrawable: '0.25',
      marginRatio: '0',
      reflects: expect.any(Object),
    })
    expectReflects(account.reflects, { from: before })
  })

  it('keeps every unit of large and tiny amounts', async () => {
    const { accountId, key } = await newAccount('999999999999.999999')
    await deposit(accountId, '0.000001')
    expect((await accountOf(key)).collateral).toBe('1000000000000')
    await withdraw(key, '999999999999.999998')
    const account = await accountOf(key)
    expect(account.collateral).toBe('0.000002')
    expect(account.withdrawable).toBe('0.000002')
  })

  it("reflects the node's current digest of the account's shard", async () => {
    const { key } = await newAccount('5')
    const account = await accountOf(key)
    const shards = await shardFingerprints()
    const read = accountShardOf(account.reflects)
    const status = shards.find((s) => s.shard === read.shard)
    expect(status).toBeDefined()
    expect(read.stateVectorDigest).toBe(status!.stateVectorDigest)
    // A write to the account's shard moves the digest the next read reflects.
    await withdraw(key, '1')
    const after = await accountOf(key)
    expect(accountShardOf(after.reflects).shard).toBe(read.shard)
    expect(accountShardOf(after.reflects).stateVectorDigest).not.toBe(read.stateVectorDigest)
    expect(after.reflects.at).toBeGreaterThanOrEqual(account.reflects.at)
  })
})

describe('ledger', () => {
  it('lists every entry with signed amounts in time-then-id order', async () => {
    const { accountId, key } = await accountWithFiveEntries()
    const before = Date.now()
    const all = await api.signed(key, 'GET', '/v1/ledger')
    expect(all.status).toBe(200)
    expect(all.body.nextCursor).toBeNull()
    expectReflects(all.body.reflects, { from: before })
    const entries: Entry[] = all.body.entries
    expect(entries).toHaveLength(5)
    expect([...entries].sort(byTimeThenId)).toEqual(entries)
    const byId = Object.fromEntries(entries.map((e) => [e.id, e]))
    expect(Object.keys(byId).sort()).toEqual(
      [
        `deposit/${accountId}/initial-${accountId}`,
        `deposit/${accountId}/dep-a`,
        `deposit/${accountId}/dep-b`,
        `withdrawal/${accountId}/wd-a`,
        `withdrawal/${accountId}/wd-b`,
      ].sort(),
    )
    expect(byId[`deposit/${accountId}/initial-${accountId}`]).toMatchObject({
      kind: 'deposit',
      amount: '100',
      node: 'a',
    })
    expect(byId[`deposit/${accountId}/dep-b`]!.amount).toBe('0.1')
    expect(byId[`deposit/${accountId}/dep-a`]!.amount).toBe('0.2')
    expect(byId[`withdrawal/${accountId}/wd-a`]).toMatchObject({
      kind: 'withdrawal',
      amount: '-20.5',
    })
    expect(byId[`withdrawal/${accountId}/wd-b`]!.amount).toBe('-0.000001')
    for (const entry of entries) expect(Number.isInteger(entry.ts)).toBe(true)
  })

  it('walks five entries two at a time, in order, ending with a null cursor', async () => {
    const { key } = await accountWithFiveEntries()
    const all = (await api.signed(key, 'GET', '/v1/ledger?limit=500')).body.entries as Entry[]
    const pages = await walk(key, 2)
    expect(pages.map((page) => page.length)).toEqual([2, 2, 1])
    expect(pages.flat()).toEqual(all)
    // One page per entry walks the same order; a page of exactly all has no next cursor.
    expect((await walk(key, 1)).flat()).toEqual(all)
    expect(await walk(key, 5)).toEqual([all])
  })

  it('a cursor is stable: the same cursor returns the same page', async () => {
    const { key } = await accountWithFiveEntries()
    const first = await api.signed(key, 'GET', '/v1/ledger?limit=2')
    const cursor = encodeURIComponent(first.body.nextCursor)
    const a = await api.signed(key, 'GET', `/v1/ledger?limit=2&cursor=${cursor}`)
    const b = await api.signed(key, 'GET', `/v1/ledger?cursor=${cursor}&limit=2`)
    expect(a.body.entries).toEqual(b.body.entries)
    expect(a.body.nextCursor).toBe(b.body.nextCursor)
  })

  it('an account without entries has an empty page', async () => {
    const { key } = await newAccount('0')
    const page = await api.signed(key, 'GET', '/v1/ledger')
    expect(page.status).toBe(200)
    expect(page.body.entries).toEqual([])
    expect(page.body.nextCursor).toBeNull()
  })

  it.each(['0', '501', 'x', '1.5', '-1', ''])(
    'refuses limit=%s with 400 validation_failed',
    async (limit) => {
      const { key } = await newAccount('1')
      await expectRejectedUnchanged(() => api.signed(key, 'GET', `/v1/ledger?limit=${limit}`), {
        status: 400,
        code: 'validation_failed',
      })
    },
  )

  it('accepts the limit bounds 1 and 500', async () => {
    const { key } = await newAccount('1')
    for (const limit of [1, 500]) {
      const page = await api.signed(key, 'GET', `/v1/ledger?limit=${limit}`)
      expect(page.status).toBe(200)
      expect(page.body.entries).toHaveLength(1)
    }
  })

  it('refuses an unknown query parameter with 400 validation_failed', async () => {
    const { key } = await newAccount('1')
    await expectRejectedUnchanged(() => api.signed(key, 'GET', '/v1/ledger?account=other'), {
      status: 400,
      code: 'validation_failed',
    })
  })

  it("refuses another account's cursor with 400 invalid_cursor", async () => {
    const alice = await accountWithFiveEntries()
    const mallory = await accountWithFiveEntries()
    const page = await api.signed(alice.key, 'GET', '/v1/ledger?limit=2')
    const cursor = encodeURIComponent(page.body.nextCursor)
    await expectRejectedUnchanged(
      () => api.signed(mallory.key, 'GET', `/v1/ledger?limit=2&cursor=${cursor}`),
      { status: 400, code: 'invalid_cursor' },
    )
  })

  it.each([
    ['not base64', '!!!'],
    ['base64 of text', btoa('hello')],
    ['base64 of null', btoa('null')],
    ['base64 of a number', btoa('42')],
    ['base64 of an array', btoa('[1,2]')],
    ['a cursor without a time', btoa(JSON.stringify({ a: 'x', id: 'y' }))],
  ])('refuses a forged cursor (%s) with 400 invalid_cursor', async (_, cursor) => {
    const { key } = await newAccount('1')
    await expectRejectedUnchanged(
      () => api.signed(key, 'GET', `/v1/ledger?cursor=${encodeURIComponent(cursor)}`),
      { status: 400, code: 'invalid_cursor' },
    )
  })

  it("refuses a cursor forged for one's own account id with a wrong shape", async () => {
    const { accountId, key } = await newAccount('1')
    const forged = btoa(JSON.stringify({ a: accountId, ts: '0', id: 'x' }))
    await expectRejectedUnchanged(
      () => api.signed(key, 'GET', `/v1/ledger?cursor=${encodeURIComponent(forged)}`),
      { status: 400, code: 'invalid_cursor' },
    )
  })

  it('refuses an over-long cursor with 400 validation_failed', async () => {
    const { key } = await newAccount('1')
    await expectRejectedUnchanged(
      () => api.signed(key, 'GET', `/v1/ledger?cursor=${'A'.repeat(513)}`),
      { status: 400, code: 'validation_failed' },
    )
  })

  it('every read of the same unchanged shard reflects the same state', async () => {
    const { key } = await newAccount('1')
    const ledger = await api.signed(key, 'GET', '/v1/ledger')
    const account = await accountOf(key)
    expect(accountShardOf(ledger.body.reflects)).toEqual(accountShardOf(account.reflects))
  })
})
