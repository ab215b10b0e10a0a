// Per-key rate limits through the signed API, on a clock the test sets (Date is faked in this
// isolate, the node's and the signer's alike): a key's burst, then 429 `rate_limited` with
// Retry-After and the envelope, changing nothing; cancels and reduce-only orders drawn from a
// bucket of their own while other requests are refused; refills as the clock moves.

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  api,
  expectError,
  expectRejectedUnchanged,
  newAccount,
  newKey,
  setUpApiTests,
  uid,
  type ApiKey,
} from './helpers'

setUpApiTests()

let now = Date.now()
/** Moves the faked clock of this isolate (the node's and the signer's) forward. */
const advance = (ms: number) => vi.setSystemTime((now += ms))

/** A key of `accountId` with its own rate limit. */
async function limitedKey(accountId: string, perSecond: number, burst: number): Promise<ApiKey> {
  const created = await api.admin('POST', `/v1/admin/accounts/${accountId}/keys`, {
    scopes: ['read', 'trade', 'withdraw'],
    rateLimit: { perSecond, burst },
  })
  expect(created.status, JSON.stringify(created.body)).toBe(201)
  expect(created.body.rateLimit).toEqual({ perSecond, burst })
  return { keyId: created.body.keyId, secret: created.body.secret }
}

const order = (key: ApiKey, body: Record<string, unknown>) =>
  api.signed(key, 'POST', '/v1/orders', { instrument: 'BTC-PERP', type: 'limit', ...body })

const expectRateLimited = (reply: Awaited<ReturnType<typeof api.signed>>) => {
  expectError(reply, { status: 429, code: 'rate_limited', retryable: true })
  expect(reply.body.error.executionStatus).toBe('not_executed')
  expect(Number(reply.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
}

describe('per-key rate limits', () => {
  beforeAll(() => {
    vi.useFakeTimers({ toFake: ['Date'], now })
  })
  afterAll(() => {
    vi.useRealTimers()
  })

  it('refuses past the burst with 429, Retry-After and the envelope; other keys are unaffected', async () => {
    const { accountId, key: unlimited } = await newAccount('0')
    const key = await limitedKey(accountId, 1, 3)
    for (let i = 0; i < 3; i++)
      expect((await api.signed(key, 'GET', '/v1/account')).status).toBe(200)
    const refused = await api.signed(key, 'GET', '/v1/account')
    expectRateLimited(refused)
    // One token a second, none left: back in a second.
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(refused.body.error).toMatchObject({
      retryAfterMs: 1000,
      rateLimit: { perSecond: 1, burst: 3 },
    })
    // The account's other key has a bucket of its own.
    expect((await api.signed(unlimited, 'GET', '/v1/account')).status).toBe(200)
  })

  it('a burst of withdrawals beyond the bucket is refused and changes no digest', async () => {
    const { accountId } = await newAccount('100')
    const key = await limitedKey(accountId, 1, 2)
    const withdrawal = () =>
      api.signed(key, 'POST', '/v1/withdrawals', {
        withdrawalId: uid('wd'),
        asset: 'USD',
        amount: '1',
      })
    expect((await withdrawal()).status).toBe(201)
    expect((await withdrawal()).status).toBe(201)
    for (let i = 0; i < 3; i++) {
      await expectRejectedUnchanged(withdrawal, {
        status: 429,
        code: 'rate_limited',
        retryable: true,
      })
    }
    const account = await api.signed(await newKey(accountId, ['read']), 'GET', '/v1/account')
    expect(account.body.collateral).toBe('98')
  })

  it('cancels and reduce-only orders are admitted while the key is refused other requests', async () => {
    const mark = await api.admin('POST', '/v1/admin/marks', {
      instrument: 'BTC-PERP',
      price: '60000',
      ts: now,
    })
    expect(mark.status, JSON.stringify(mark.body)).toBe(200)
    const maker = await newAccount('100000')
    const alice = await newAccount('100000')
    const key = await limitedKey(alice.accountId, 1, 2)
    const sell = await order(maker.key, {
      clientOrderId: uid('s'),
      side: 'sell',
      price: '60000',
      size: '0.1',
    })
    const buy = await order(maker.key, {
      clientOrderId: uid('b'),
      side: 'buy',
      price: '59000',
      size: '0.1',
    })
    expect([sell.status, buy.status]).toEqual([201, 201])
    // Alice's two tokens: a position, and a resting order.
    const opened = await order(key, {
      clientOrderId: uid('a'),
      side: 'buy',
      price: '60000',
      size: '0.1',
      timeInForce: 'IOC',
    })
    expect(opened.body.status, JSON.stringify(opened.body)).toBe('filled')
    const resting = await order(key, {
      clientOrderId: uid('r'),
      side: 'buy',
      price: '58000',
      size: '0.01',
    })
    expect(resting.body.status, JSON.stringify(resting.body)).toBe('open')
    // Everything else is refused now, changing nothing...
    await expectRejectedUnchanged(
      () => order(key, { clientOrderId: uid('n'), side: 'buy', price: '58000', size: '0.01' }),
      { status: 429, code: 'rate_limited', retryable: true },
    )
    expectRateLimited(await api.signed(key, 'GET', '/v1/positions'))
    // ...but the cancel and the reduce-only sell that closes the position are taken.
    const cancelled = await api.signed(key, 'DELETE', `/v1/orders/${resting.body.orderId}`)
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200)
    expect(cancelled.body.status).toBe('cancelled')
    const closed = await order(key, {
      clientOrderId: uid('c'),
      side: 'sell',
      price: '59000',
      size: '0.1',
      timeInForce: 'IOC',
      reduceOnly: true,
    })
    expect(closed.status, JSON.stringify(closed.body)).toBe(201)
    expect(closed.body.status).toBe('filled')
    // Their own bucket is bounded too (the same burst).
    expectRateLimited(await api.signed(key, 'DELETE', '/v1/orders?instrument=BTC-PERP'))
    const positions = await api.signed(maker.key, 'GET', '/v1/positions')
    expect(positions.status).toBe(200)
  })

  it("refills at the key's rate as the clock moves, never above its burst", async () => {
    const { accountId } = await newAccount('0')
    const key = await limitedKey(accountId, 2, 2)
    const read = () => api.signed(key, 'GET', '/v1/account')
    expect((await read()).status).toBe(200)
    expect((await read()).status).toBe(200)
    expectRateLimited(await read())
    // Half a second is one token at 2 a second; a quarter more is half of the next.
    advance(500)
    expect((await read()).status).toBe(200)
    advance(250)
    const early = await read()
    expectRateLimited(early)
    expect(early.body.error.retryAfterMs).toBe(250)
    advance(250)
    expect((await read()).status).toBe(200)
    // A long quiet spell refills the burst, not more.
    advance(60_000)
    expect((await read()).status).toBe(200)
    expect((await read()).status).toBe(200)
    expectRateLimited(await read())
  })
})
