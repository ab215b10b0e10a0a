// A client's trading day through the signed API, checked against numbers worked by hand:
// BTC-PERP with 10% / 5% margin, 2 bp maker and 5 bp taker fees.

import { evictDurableObject } from 'cloudflare:test'
import { beforeAll, describe, expect, it } from 'vitest'
import { api, bindings, setUpApiTests, type ApiKey } from './helpers'

let markTs = Date.now()
const mark = (price: string) =>
  api.admin('POST', '/v1/admin/marks', { instrument: 'BTC-PERP', price, ts: ++markTs })
const order = (key: ApiKey, body: Record<string, unknown>) =>
  api.signed(key, 'POST', '/v1/orders', body)
const account = async (key: ApiKey) => (await api.signed(key, 'GET', '/v1/account')).body

setUpApiTests()

describe('trading through the API', () => {
  let alice: ApiKey
  let bob: ApiKey

  beforeAll(async () => {
    alice = await api.fundedAccount('alice-t', '10000')
    bob = await api.fundedAccount('bob-t', '10000')
    expect((await mark('60000')).status).toBe(200)
  })

  it('lists instruments and refuses orders for an unknown one', async () => {
    const listed = await api.plain('GET', '/v1/instruments')
    expect(listed.body.instruments.map((i: { symbol: string }) => i.symbol)).toContain('BTC-PERP')
    const unknown = await order(alice, {
      clientOrderId: 'x',
      instrument: 'DOGE-PERP',
      side: 'buy',
      type: 'limit',
      price: '1',
      size: '1',
    })
    expect(unknown.status).toBe(400)
    expect(unknown.body.error.code).toBe('unknown_instrument')
  })

  it('opens, reduces and marks positions with exact fees, PnL and margin', async () => {
    const rest = await order(bob, {
      clientOrderId: 'b1',
      instrument: 'BTC-PERP',
      side: 'sell',
      type: 'limit',
      price: '60000',
      size: '0.5',
    })
    expect(rest.status).toBe(201)
    expect(rest.body).toMatchObject({ status: 'open', remainingSize: '0.5', filledSize: '0' })
    expect((await account(bob)).initialMargin).toBe('3000') // 10% of the resting 30000

    const take = await order(alice, {
      clientOrderId: 'a1',
      instrument: 'BTC-PERP',
      side: 'buy',
      type: 'limit',
      price: '60000',
      size: '0.5',
      timeInForce: 'IOC',
    })
    expect(take.status).toBe(201)
    expect(take.body).toMatchObject({
      status: 'filled',
      filledSize: '0.5',
      averageFillPrice: '60000',
    })

    await mark('61000')
    expect(await account(alice)).toMatchObject({
      collateral: '9985', // 10000 − 15 taker fee
      unrealizedPnl: '500',
      equity: '10485',
      initialMargin: '3050',
      maintenanceMargin: '1525',
      availableBalance: '7435',
      withdrawable: '7435',
    })
    expect(await account(bob)).toMatchObject({
      collateral: '9994',
      unrealizedPnl: '-500',
      equity: '9494',
    })

    // alice sells 0.2 at 62000 to bob: alice realizes +400, bob −400
    await order(alice, {
      clientOrderId: 'a2',
      instrument: 'BTC-PERP',
      side: 'sell',
      type: 'limit',
      price: '62000',
      size: '0.2',
      timeInForce: 'POST_ONLY',
    })
    const cover = await order(bob, {
      clientOrderId: 'b2',
      instrument: 'BTC-PERP',
      side: 'buy',
      type: 'market',
      size: '0.2',
    })
    expect(cover.body).toMatchObject({ status: 'filled', averageFillPrice: '62000' })
    expect((await account(alice)).collateral).toBe('10382.52') // 9985 + 400 − 2.48 maker fee
    expect((await account(bob)).collateral).toBe('9587.8') // 9994 − 400 − 6.2 taker fee

    const positions = (await api.signed(alice, 'GET', '/v1/positions')).body.positions
    expect(positions).toEqual([
      expect.objectContaining({
        instrument: 'BTC-PERP',
        size: '0.3',
        entryPrice: '60000',
        markPrice: '61000',
        unrealizedPnl: '300',
        realizedPnl: '400',
        fees: '17.48',
      }),
    ])
    const fills = (await api.signed(alice, 'GET', '/v1/fills?limit=1')).body
    expect(fills.fills).toEqual([
      expect.objectContaining({
        liquidity: 'taker',
        side: 'buy',
        price: '60000',
        size: '0.5',
        fee: '15',
      }),
    ])
    const next = (await api.signed(alice, 'GET', `/v1/fills?cursor=${fills.nextCursor}`)).body
    expect(next.fills).toEqual([
      expect.objectContaining({
        liquidity: 'maker',
        side: 'sell',
        fee: '2.48',
        realizedPnl: '400',
      }),
    ])
    expect(next.nextCursor).toBeNull()

    const ledger = (await api.signed(alice, 'GET', '/v1/ledger?limit=50')).body.entries
    expect(
      ledger.map((e: { kind: string; amount: string }) => `${e.kind} ${e.amount}`).sort(),
    ).toEqual(['deposit 10000', 'fee -15', 'fee -2.48', 'realized_pnl 400'].sort())
  })

  it('replays a client order id, refuses it with another payload, and rejects a taking POST_ONLY', async () => {
    const body = {
      clientOrderId: 'a3',
      instrument: 'BTC-PERP',
      side: 'buy',
      type: 'limit',
      price: '56000',
      size: '0.01',
    }
    const first = await order(alice, body)
    const again = await order(alice, body)
    expect(again.status).toBe(201)
    expect(again.headers.get('Idempotent-Replayed')).toBe('true')
    expect(again.body.orderId).toBe(first.body.orderId)
    const other = await order(alice, { ...body, size: '0.02' })
    expect(other.status).toBe(409)
    expect(other.body.error.code).toBe('idempotency_conflict')

    await order(bob, {
      clientOrderId: 'b3',
      instrument: 'BTC-PERP',
      side: 'sell',
      type: 'limit',
      price: '66000',
      size: '0.01',
    })
    const taking = await order(alice, {
      clientOrderId: 'a4',
      instrument: 'BTC-PERP',
      side: 'buy',
      type: 'limit',
      price: '66000',
      size: '0.01',
      timeInForce: 'POST_ONLY',
    })
    expect(taking.status).toBe(422)
    expect(taking.body.error).toMatchObject({ code: 'post_only_would_take', retryable: false })
    expect(taking.body.error.order.status).toBe('rejected')
  })

  it('cancels a resting order once and shows it by client order id', async () => {
    const placed = await order(alice, {
      clientOrderId: 'a5',
      instrument: 'BTC-PERP',
      side: 'buy',
      type: 'limit',
      price: '55500',
      size: '0.01',
    })
    const { orderId } = placed.body
    const open = (await api.signed(alice, 'GET', '/v1/orders?status=open')).body.orders
    expect(open.map((o: { orderId: string }) => o.orderId)).toContain(orderId)
    const cancelled = await api.signed(alice, 'DELETE', `/v1/orders/${orderId}`)
    expect(cancelled.body).toMatchObject({ status: 'cancelled', reason: 'user' })
    expect((await api.signed(alice, 'DELETE', `/v1/orders/${orderId}`)).body.status).toBe(
      'cancelled',
    )
    const byClientId = (await api.signed(alice, 'GET', '/v1/orders?clientOrderId=a5')).body.orders
    expect(byClientId).toEqual([expect.objectContaining({ orderId, status: 'cancelled' })])
    expect((await api.signed(bob, 'GET', `/v1/orders/${orderId}`)).status).toBe(404)
    expect((await api.signed(bob, 'DELETE', `/v1/orders/${orderId}`)).status).toBe(404)
  })

  it('refuses an order the available balance cannot margin, and takes nothing', async () => {
    const carol = await api.fundedAccount('carol-t', '100')
    const body = {
      clientOrderId: 'c1',
      instrument: 'BTC-PERP',
      side: 'buy',
      type: 'limit',
      price: '60000',
      size: '1',
    }
    // Needs 10% of 1 BTC at the worse of price and mark (61000) plus the 5 bp taker fee on
    // 60000: 6100 + 30 = 6130 USD.
    const refused = await order(carol, body)
    expect(refused.status).toBe(422)
    expect(refused.body.error.code).toBe('insufficient_margin')
    expect(refused.body.error.message).toMatch(/needs 6130 USD/)
    const topUp = (depositId: string, amount: string) =>
      api.admin('POST', '/v1/admin/deposits', {
        depositId,
        accountId: 'carol-t',
        asset: 'USD',
        amount,
        signedAt: Date.now(),
      })
    await topUp('c-top-up-1', '6029.999999')
    expect((await order(carol, body)).body.error.code).toBe('insufficient_margin')
    await topUp('c-top-up-2', '0.000001')
    expect((await order(carol, body)).status).toBe(201) // the client order id was not taken by the refusals
  })

  it('refuses prices outside the band around the mark, which bounds any off-market fill', async () => {
    // mark 61000 ± 10%: 54900..67100. An off-market fill between colluding accounts could move
    // value out; the band refuses the order before it can rest or cross.
    for (const [n, price] of ['67100.5', '54899.5', '120000', '0.5'].entries()) {
      const reply = await order(alice, {
        clientOrderId: `band-${n}`,
        instrument: 'BTC-PERP',
        side: 'sell',
        type: 'limit',
        price,
        size: '0.001',
      })
      expect(reply.status).toBe(422)
      expect(reply.body.error).toMatchObject({ code: 'price_outside_band', retryable: false })
      expect(reply.body.error.message).toMatch(/54900\.\.67100/)
    }
  })

  it('answers 503 not_executed for an instrument matched on another node', async () => {
    const routed = await order(alice, {
      clientOrderId: 'a6',
      instrument: 'SOL-PERP',
      side: 'buy',
      type: 'limit',
      price: '100',
      size: '0.01',
    })
    expect(routed.status).toBe(503)
    expect(routed.headers.get('retry-after')).toBe('1')
    expect(routed.body.error).toMatchObject({
      code: 'home_node_unreachable',
      retryable: true,
      executionStatus: 'not_executed',
    })
  })

  it('rebuilds the same book and positions after the market replica restarts', async () => {
    const before = (await api.plain('GET', '/v1/book/BTC-PERP')).body
    const positions = (await api.signed(alice, 'GET', '/v1/positions')).body.positions
    await evictDurableObject(bindings.MARKET.get(bindings.MARKET.idFromName('a/market/BTC-PERP')))
    const after = (await api.plain('GET', '/v1/book/BTC-PERP')).body
    expect({ bids: after.bids, asks: after.asks }).toEqual({ bids: before.bids, asks: before.asks })
    expect((await api.signed(alice, 'GET', '/v1/positions')).body.positions).toEqual(positions)
  })
})
