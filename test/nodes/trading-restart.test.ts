// Trading state survives a SIGKILL: a real node takes resting, crossing and partially filled orders
// on BTC-PERP and ETH-PERP, is killed (node and workerd together) with nothing in flight, and
// restarts from its data folder. Every book level, position, fill, ledger entry, account figure and
// order reads back identical, no shard is damaged, and the restored books keep matching.

import { markFutureMsMax } from '../../src/constants'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { groupAlive } from '../../scripts/lib/node-process'
import type { ApiClient, ApiKey, Reply } from '../support/api-client'
import { checkShards } from './support/ledger-writes'
import { startTestNode, type TestNode } from './support/test-node'

type Trader = { accountId: string; key: ApiKey; orders: Map<string, string> }

const ok = (reply: Reply, status = 200) => {
  expect(reply.status, JSON.stringify(reply.body)).toBe(status)
  return reply.body
}
/** A read without its `reflects` (the node's time and digests of the moment). */
const withoutReflects = (body: any) => {
  const { reflects: _reflects, ...rest } = body
  return rest
}

/** Everything a client and the operator can read of the trading state. */
async function snapshot(client: ApiClient, traders: Trader[]) {
  const book = async (symbol: string) =>
    withoutReflects(ok(await client.plain('GET', `/v1/book/${symbol}?levels=100`)))
  const shards = ok(await client.admin('GET', '/v1/admin/shards')).shards.map((s: any) => ({
    shard: s.shard,
    contentDigest: s.contentDigest,
    stateVectorDigest: s.stateVectorDigest,
  }))
  const accounts: Record<string, unknown> = {}
  for (const trader of traders) {
    const read = async (path: string) => ok(await client.signed(trader.key, 'GET', path))
    const orders: Record<string, unknown> = {}
    for (const [clientOrderId, orderId] of trader.orders) {
      orders[clientOrderId] = withoutReflects(await read(`/v1/orders/${orderId}`))
    }
    const fills = await read('/v1/fills?limit=500')
    const ledger = await read('/v1/ledger?limit=500')
    expect(fills.nextCursor).toBeNull()
    expect(ledger.nextCursor).toBeNull()
    accounts[trader.accountId] = {
      account: withoutReflects(await read('/v1/account')),
      positions: (await read('/v1/positions')).positions,
      fills: fills.fills,
      ledger: ledger.entries,
      open: (await read('/v1/orders?status=open')).orders,
      orders,
    }
  }
  return { books: { btc: await book('BTC-PERP'), eth: await book('ETH-PERP') }, shards, accounts }
}

describe('trading state across a SIGKILL and restart', () => {
  let node: TestNode & { coldStartMs: number }
  const figures: Record<string, number> = {}
  let alice: Trader
  let bob: Trader

  const place = async (
    trader: Trader,
    clientOrderId: string,
    order: Record<string, unknown>,
  ): Promise<any> => {
    const body = ok(
      await node.client().signed(trader.key, 'POST', '/v1/orders', { clientOrderId, ...order }),
      201,
    )
    trader.orders.set(clientOrderId, body.orderId)
    return body
  }
  const limit = (instrument: string, side: string, price: string, size: string, tif = 'GTC') => ({
    instrument,
    side,
    type: 'limit',
    price,
    size,
    timeInForce: tif,
  })

  beforeAll(async () => {
    node = await startTestNode()
    figures.coldStartMs = Math.round(node.coldStartMs)
    const client = node.client()
    const trader = async (accountId: string): Promise<Trader> => ({
      accountId,
      key: await client.fundedAccount(accountId, '100000', ['read', 'trade']),
      orders: new Map(),
    })
    alice = await trader('alice')
    bob = await trader('bob')
    // Dated as far ahead as a node accepts (markFutureMsMax), so no mark turns stale between the
    // two reads (stale flags are figures too): fresh for 30 s of mark age plus that lead.
    const ts = Date.now() + markFutureMsMax - 1_000
    for (const [instrument, price] of [
      ['BTC-PERP', '60000'],
      ['ETH-PERP', '3000'],
    ]) {
      ok(await client.admin('POST', '/v1/admin/marks', { instrument, price, ts }))
    }
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${node?.output()}`)
  })

  afterAll(async () => {
    console.log(`trading-restart figures: ${JSON.stringify(figures)}`)
    await node?.stop()
  })

  it('reads back every book, position, fill, figure and order identical, and keeps matching', async () => {
    // BTC-PERP: two asks, a bid, a taker that sweeps one ask and part of the next, a bid hit in part.
    expect(await place(bob, 'b1', limit('BTC-PERP', 'sell', '60500', '0.5'))).toMatchObject({
      status: 'open',
    })
    await place(bob, 'b2', limit('BTC-PERP', 'sell', '61000', '0.3'))
    await place(alice, 'a1', limit('BTC-PERP', 'buy', '59000', '0.4'))
    expect(await place(alice, 'a2', limit('BTC-PERP', 'buy', '61000', '0.7'))).toMatchObject({
      status: 'filled',
      filledSize: '0.7',
      averageFillPrice: '60642.8', // (0.5 × 60500 + 0.2 × 61000) / 0.7, truncated to the tick
    })
    await place(alice, 'a3', limit('BTC-PERP', 'buy', '59500', '0.2'))
    expect(await place(bob, 'b3', limit('BTC-PERP', 'sell', '59500', '0.1'))).toMatchObject({
      status: 'filled',
    })
    // ETH-PERP: an ask taken in part by an IOC, a bid taken in part by a market order.
    await place(alice, 'a4', limit('ETH-PERP', 'sell', '3010', '2'))
    await place(bob, 'b4', limit('ETH-PERP', 'buy', '3010', '1.5', 'IOC'))
    await place(bob, 'b5', limit('ETH-PERP', 'buy', '2990', '3'))
    expect(
      await place(alice, 'a5', { instrument: 'ETH-PERP', side: 'sell', type: 'market', size: '1' }),
    ).toMatchObject({ status: 'filled', averageFillPrice: '2990' })

    const client = node.client()
    const before = await snapshot(client, [alice, bob])
    // The state is what this test claims it is: fills, partial fills and resting orders on both.
    expect(before.books).toEqual({
      btc: {
        instrument: 'BTC-PERP',
        bids: [
          { price: '59500', size: '0.1', orders: 1 },
          { price: '59000', size: '0.4', orders: 1 },
        ],
        asks: [{ price: '61000', size: '0.1', orders: 1 }],
      },
      eth: {
        instrument: 'ETH-PERP',
        bids: [{ price: '2990', size: '2', orders: 1 }],
        asks: [{ price: '3010', size: '0.5', orders: 1 }],
      },
    })
    const statuses = (trader: Trader) =>
      Object.fromEntries(
        Object.entries((before.accounts[trader.accountId] as any).orders).map(
          ([id, order]: [string, any]) => [id, order.status],
        ),
      )
    expect(statuses(alice)).toEqual({
      a1: 'open',
      a2: 'filled',
      a3: 'partially_filled',
      a4: 'partially_filled',
      a5: 'filled',
    })
    expect(statuses(bob)).toEqual({
      b1: 'filled',
      b2: 'partially_filled',
      b3: 'filled',
      b4: 'filled',
      b5: 'partially_filled',
    })
    const aliceBefore = before.accounts.alice as any
    expect(aliceBefore.fills).toHaveLength(5)
    expect(aliceBefore.open.map((o: any) => o.clientOrderId).sort()).toEqual(['a1', 'a3', 'a4'])
    expect(aliceBefore.positions.map((p: any) => [p.instrument, p.size])).toEqual([
      ['BTC-PERP', '0.8'],
      ['ETH-PERP', '-2.5'],
    ])
    expect(aliceBefore.account.collateral).not.toBe('100000') // fees moved it

    // SIGKILL with nothing in flight: every answer above was acknowledged, hence durable.
    const pid = node.pid()
    await node.kill()
    expect(groupAlive(pid)).toBe(false)
    figures.restartToReadyMs = Math.round(await node.restart())

    const restarted = node.client()
    const after = await snapshot(restarted, [alice, bob])
    expect(after).toEqual(before)
    expect((await checkShards(restarted)).problems).toEqual([])

    // A retried client order id replays its stored answer after the restart.
    const replay = await restarted.signed(alice.key, 'POST', '/v1/orders', {
      clientOrderId: 'a2',
      ...limit('BTC-PERP', 'buy', '61000', '0.7'),
    })
    expect(replay.status).toBe(201)
    expect(replay.headers.get('Idempotent-Replayed')).toBe('true')
    expect(withoutReflects(replay.body)).toEqual((before.accounts.alice as any).orders.a2)

    // The restored books keep matching: new crossing orders fill against the resting remainders.
    expect(await place(bob, 'b6', limit('BTC-PERP', 'sell', '59500', '0.1'))).toMatchObject({
      status: 'filled',
      averageFillPrice: '59500',
    })
    expect(await place(bob, 'b7', limit('ETH-PERP', 'buy', '3010', '0.5', 'IOC'))).toMatchObject({
      status: 'filled',
      averageFillPrice: '3010',
    })
    const a3 = ok(await restarted.signed(alice.key, 'GET', `/v1/orders/${alice.orders.get('a3')}`))
    expect(a3).toMatchObject({ status: 'filled', filledSize: '0.2', remainingSize: '0' })
    const a4 = ok(await restarted.signed(alice.key, 'GET', `/v1/orders/${alice.orders.get('a4')}`))
    expect(a4).toMatchObject({ status: 'filled', filledSize: '2', remainingSize: '0' })
    const books = await snapshot(restarted, [])
    expect(books.books.btc).toMatchObject({
      bids: [{ price: '59000', size: '0.4', orders: 1 }],
      asks: [{ price: '61000', size: '0.1', orders: 1 }],
    })
    expect(books.books.eth).toMatchObject({ bids: [{ price: '2990', size: '2' }], asks: [] })
    const fills = ok(await restarted.signed(alice.key, 'GET', '/v1/fills?limit=500')).fills
    expect(fills).toHaveLength(7)
    expect(fills.slice(0, 5)).toEqual(aliceBefore.fills)
    const positions = ok(await restarted.signed(alice.key, 'GET', '/v1/positions')).positions
    expect(positions.map((p: any) => [p.instrument, p.size])).toEqual([
      ['BTC-PERP', '0.9'],
      ['ETH-PERP', '-3'],
    ])
    expect((await checkShards(restarted)).problems).toEqual([])
  })
})
