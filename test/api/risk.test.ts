// Refusals that keep money safe when inputs are stale, forged or replayed: a signed request's
// Idempotency-Key cannot be swapped, a mark from the future is refused, and a stale mark stops
// withdrawals and new risk while reduce-only orders still go through.

import { signRequest } from '../../src/api/signing'
import { describe, expect, it } from 'vitest'
import { api, setUpApiTests, uid } from './helpers'

setUpApiTests()

const mark = (instrument: string, price: string, ts: number) =>
  api.admin('POST', '/v1/admin/marks', { instrument, price, ts })

describe('risk refusals', () => {
  it('signs the Idempotency-Key: the same signed withdrawal under another key is refused', async () => {
    const id = uid('acct')
    const key = await api.fundedAccount(id, '1000')
    const body = JSON.stringify({ asset: 'USD', amount: '100' })
    const signed = await signRequest(key, {
      method: 'POST',
      pathWithQuery: '/v1/withdrawals',
      body,
      idempotencyKey: 'k1',
    })
    const headers = { 'content-type': 'application/json', ...signed }
    const first = await api.raw(
      'POST',
      '/v1/withdrawals',
      { ...headers, 'Idempotency-Key': 'k1' },
      body,
    )
    expect(first.status).toBe(201)
    const swapped = await api.raw(
      'POST',
      '/v1/withdrawals',
      { ...headers, 'Idempotency-Key': 'k2' },
      body,
    )
    expect(swapped.status).toBe(401)
    expect(swapped.body.error.code).toBe('invalid_signature')
    expect((await api.signed(key, 'GET', '/v1/account')).body.collateral).toBe('900')
  })

  it('refuses a mark stamped ahead of the node clock, so a broken feed cannot freeze the price', async () => {
    const reply = await mark('ETH-PERP', '3000', Date.now() + 3_600_000)
    expect(reply.status).toBe(400)
    expect(reply.body.error.code).toBe('mark_in_future')
  })

  it('stops withdrawals and new risk on a stale mark, and still takes reduce-only orders', async () => {
    const [alice, bob] = [uid('alice'), uid('bob')]
    const aliceKey = await api.fundedAccount(alice, '10000')
    const bobKey = await api.fundedAccount(bob, '10000')
    // A mark that turns stale (older than 30 s) about 3 s from now: time to open a position.
    const markedAt = Date.now() - 27_000
    expect((await mark('ETH-PERP', '3000', markedAt)).status).toBe(200)
    const trade = (key: typeof aliceKey, side: string, extra: Record<string, unknown> = {}) =>
      api.signed(key, 'POST', '/v1/orders', {
        clientOrderId: uid('o'),
        instrument: 'ETH-PERP',
        side,
        type: 'limit',
        price: '3000',
        size: '1',
        ...extra,
      })
    expect((await trade(bobKey, 'sell')).status).toBe(201)
    expect((await trade(aliceKey, 'buy')).body.status).toBe('filled')

    // The feed stalls: wait until the node reads the mark as stale.
    const deadline = Date.now() + 10_000
    let account = (await api.signed(aliceKey, 'GET', '/v1/account')).body
    while (!account.staleMarks.includes('ETH-PERP') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      account = (await api.signed(aliceKey, 'GET', '/v1/account')).body
    }
    expect(account.staleMarks).toEqual(['ETH-PERP'])

    const withdrawal = await api.signed(aliceKey, 'POST', '/v1/withdrawals', {
      withdrawalId: uid('w'),
      asset: 'USD',
      amount: '1',
    })
    expect(withdrawal.status).toBe(503)
    expect(withdrawal.body.error).toMatchObject({
      code: 'mark_stale',
      executionStatus: 'not_executed',
    })
    const more = await trade(aliceKey, 'buy')
    expect(more.status).toBe(503)
    expect(more.body.error.code).toBe('mark_stale')
    const reduce = await trade(aliceKey, 'sell', { reduceOnly: true })
    expect(reduce.status).toBe(201)
  })
})
