// The operator's circuit breakers through the API: an instrument or the whole venue restricted
// (reduce-only, cancel-only, halted) refuses new orders it does not admit and still takes cancels
// and reducing orders; withdrawals halted refuse every withdrawal; lifting a breaker restores
// trading. Each refusal is 503 not executed and changes nothing.

import { beforeAll, describe, expect, it } from 'vitest'
import { api, newAccount, setUpApiTests, type ApiKey } from './helpers'

const breaker = (body: Record<string, unknown>) => api.admin('POST', '/v1/admin/breakers', body)
const limit = (clientOrderId: string, side: string, price: string, extra: object = {}) => ({
  clientOrderId,
  instrument: 'BTC-PERP',
  side,
  type: 'limit',
  price,
  size: '0.01',
  ...extra,
})

setUpApiTests()

describe('circuit breakers', () => {
  let trader: ApiKey
  let other: ApiKey
  const order = (key: ApiKey, body: object) => api.signed(key, 'POST', '/v1/orders', body)

  beforeAll(async () => {
    trader = (await newAccount('100000', ['read', 'trade', 'withdraw'], 'trader')).key
    other = (await newAccount('100000', ['read', 'trade'], 'other')).key
    const mark = await api.admin('POST', '/v1/admin/marks', {
      instrument: 'BTC-PERP',
      price: '60000',
      ts: Date.now(),
    })
    expect(mark.status).toBe(200)
    // The trader is long 0.01, so a sell can be reduce-only.
    expect((await order(other, limit('o1', 'sell', '60000'))).status).toBe(201)
    expect((await order(trader, limit('t1', 'buy', '60000'))).status).toBe(201)
  })

  it('refuses a malformed breaker, recording nothing', async () => {
    for (const body of [
      { scope: 'instrument', mode: 'halted', reason: 'no instrument named' },
      { scope: 'venue', instrument: 'BTC-PERP', mode: 'halted', reason: 'venue names none' },
      { scope: 'venue', mode: 'paused', reason: 'unknown mode' },
      { scope: 'venue', mode: 'halted', reason: '' },
    ]) {
      const reply = await breaker(body)
      expect(reply.status, JSON.stringify(body)).toBe(400)
    }
    expect((await api.admin('GET', '/v1/admin/breakers')).body).toEqual({
      withdrawals: 'normal',
      instruments: { 'BTC-PERP': 'normal', 'ETH-PERP': 'normal', 'SOL-PERP': 'normal' },
    })
  })

  it('restricts the venue to reduce-only, then the instrument to halted, then lifts both', async () => {
    expect((await breaker({ scope: 'venue', mode: 'reduce_only', reason: 'drill' })).status).toBe(
      201,
    )
    const opening = await order(trader, limit('t2', 'buy', '59000'))
    expect(opening.status).toBe(503)
    expect(opening.body.error).toMatchObject({
      code: 'market_restricted',
      retryable: true,
      executionStatus: 'not_executed',
    })
    const reducing = await order(trader, limit('t3', 'sell', '61000', { reduceOnly: true }))
    expect(reducing.status).toBe(201)
    // A cancel is always taken.
    expect((await api.signed(trader, 'DELETE', `/v1/orders/${reducing.body.orderId}`)).status).toBe(
      200,
    )

    await breaker({ scope: 'instrument', instrument: 'BTC-PERP', mode: 'halted', reason: 'feed' })
    expect((await api.admin('GET', '/v1/admin/breakers')).body.instruments['BTC-PERP']).toBe(
      'halted',
    )
    const halted = await order(trader, limit('t4', 'sell', '61000', { reduceOnly: true }))
    expect(halted.status).toBe(503)
    expect(halted.body.error.code).toBe('market_restricted')

    // Lifting: the stricter of venue and instrument applies, so both must be lifted.
    await breaker({ scope: 'instrument', instrument: 'BTC-PERP', mode: 'normal', reason: 'ok' })
    expect((await order(trader, limit('t5', 'buy', '59000'))).status).toBe(503)
    await breaker({ scope: 'venue', mode: 'normal', reason: 'drill over' })
    expect((await order(trader, limit('t5', 'buy', '59000'))).status).toBe(201)
  })

  it('halts and resumes withdrawals', async () => {
    await breaker({ scope: 'withdrawals', mode: 'halted', reason: 'custody check' })
    const halted = await api.signed(trader, 'POST', '/v1/withdrawals', {
      withdrawalId: 'w1',
      asset: 'USD',
      amount: '10',
    })
    expect(halted.status).toBe(503)
    expect(halted.body.error).toMatchObject({ code: 'withdrawals_halted', retryable: true })
    expect(halted.body.error.message).toMatch(/custody check/)
    await breaker({ scope: 'withdrawals', mode: 'normal', reason: 'done' })
    const served = await api.signed(trader, 'POST', '/v1/withdrawals', {
      withdrawalId: 'w1',
      asset: 'USD',
      amount: '10',
    })
    expect(served.status).toBe(201)
  })
})
