import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as matcher from '../../src/domain/matcher'
import { btc, price, size } from '../support/instruments'

let counter = 0
const order = (
  accountId: string,
  side: matcher.Side,
  qty: string,
  at: string | null,
  extra: Partial<matcher.OrderIntent> = {},
): matcher.OrderIntent => ({
  orderId: `o${++counter}`,
  accountId,
  side,
  price: at === null ? null : price(at),
  size: size(qty),
  timeInForce: at === null ? 'IOC' : 'GTC',
  reduceOnly: false,
  ...extra,
})

const types = (decisions: matcher.Decision[]) => decisions.map((d) => d.type)
const fills = (decisions: matcher.Decision[]) =>
  decisions.filter((d): d is matcher.Fill => d.type === 'fill')

describe('matcher', () => {
  it('fills by price, then time, at the maker price, partially', () => {
    const book = matcher.create(btc)
    const first = order('m1', 'sell', '0.002', '60001')
    const second = order('m2', 'sell', '0.002', '60001')
    const better = order('m3', 'sell', '0.001', '60000')
    for (const o of [first, second, better])
      expect(types(matcher.submit(book, o))).toEqual(['accepted', 'rested'])
    const taker = order('t', 'buy', '0.004', '60001')
    const decisions = matcher.submit(book, taker)
    expect(fills(decisions).map((f) => [f.makerOrderId, f.price, f.size])).toEqual([
      [better.orderId, price('60000'), size('0.001')],
      [first.orderId, price('60001'), size('0.002')],
      [second.orderId, price('60001'), size('0.001')],
    ])
    expect(matcher.depth(book, 5).asks).toEqual([
      { price: price('60001'), size: size('0.001'), orders: 1 },
    ])
    // fees: taker 5 bp, maker 2 bp of each fill's notional, rounded up to the USD unit
    expect(fills(decisions)[0]).toMatchObject({ takerFee: 30000n, makerFee: 12000n })
  })

  it('rests the unfilled rest of a GTC order and cancels that of an IOC', () => {
    const book = matcher.create(btc)
    matcher.submit(book, order('m', 'sell', '0.001', '100'))
    const gtc = matcher.submit(book, order('t', 'buy', '0.003', '100'))
    expect(types(gtc)).toEqual(['accepted', 'fill', 'rested'])
    const ioc = matcher.submit(book, order('u', 'sell', '0.005', '100', { timeInForce: 'IOC' }))
    expect(types(ioc)).toEqual(['accepted', 'fill', 'cancelled'])
    expect(ioc.at(-1)).toMatchObject({ reason: 'unfilled_ioc', remaining: size('0.003') })
    expect(book.orders.size).toBe(0)
  })

  it('fills a FOK whole or rejects it without touching the book', () => {
    const book = matcher.create(btc)
    matcher.submit(book, order('m', 'sell', '0.002', '100'))
    expect(matcher.submit(book, order('t', 'buy', '0.003', '100', { timeInForce: 'FOK' }))).toEqual(
      [expect.objectContaining({ type: 'rejected', reason: 'fok_not_fillable' })],
    )
    expect(matcher.depth(book, 1).asks[0]?.size).toBe(size('0.002'))
    expect(
      types(matcher.submit(book, order('t', 'buy', '0.002', '100', { timeInForce: 'FOK' }))),
    ).toEqual(['accepted', 'fill'])
  })

  it('rejects a POST_ONLY order that would take', () => {
    const book = matcher.create(btc)
    matcher.submit(book, order('m', 'sell', '0.001', '100'))
    expect(
      matcher.submit(book, order('t', 'buy', '0.001', '100', { timeInForce: 'POST_ONLY' }))[0],
    ).toMatchObject({
      type: 'rejected',
      reason: 'post_only_would_take',
    })
    expect(
      types(matcher.submit(book, order('t', 'buy', '0.001', '99.5', { timeInForce: 'POST_ONLY' }))),
    ).toEqual(['accepted', 'rested'])
  })

  it('walks the book for a market order and cancels what finds no liquidity', () => {
    const book = matcher.create(btc)
    matcher.submit(book, order('m', 'sell', '0.001', '100'))
    matcher.submit(book, order('m', 'sell', '0.001', '150'))
    const decisions = matcher.submit(book, order('t', 'buy', '0.003', null))
    expect(fills(decisions).map((f) => f.price)).toEqual([price('100'), price('150')])
    expect(decisions.at(-1)).toMatchObject({
      type: 'cancelled',
      reason: 'no_liquidity',
      remaining: size('0.001'),
    })
    expect(
      matcher.submit(book, order('t', 'buy', '0.001', null, { timeInForce: 'GTC' }))[0],
    ).toMatchObject({
      reason: 'market_requires_ioc_or_fok',
    })
  })

  it('prevents self-trades by cancelling the taker remainder', () => {
    const book = matcher.create(btc)
    matcher.submit(book, order('other', 'sell', '0.001', '100'))
    const own = order('self', 'sell', '0.001', '101')
    matcher.submit(book, own)
    const decisions = matcher.submit(book, order('self', 'buy', '0.003', '101'))
    expect(types(decisions)).toEqual(['accepted', 'fill', 'cancelled'])
    expect(decisions.at(-1)).toMatchObject({ reason: 'self_trade', remaining: size('0.002') })
    expect(book.orders.has(own.orderId)).toBe(true)
  })

  it('never lets a reduce-only order increase a position, as taker or maker', () => {
    const book = matcher.create(btc)
    expect(
      matcher.submit(book, order('a', 'sell', '0.001', '100', { reduceOnly: true }))[0],
    ).toMatchObject({
      reason: 'reduce_only_would_increase',
    })
    matcher.submit(book, order('b', 'sell', '0.002', '100'))
    matcher.submit(book, order('a', 'buy', '0.002', '100')) // a is long 0.002
    const resting = order('a', 'sell', '0.005', '110', { reduceOnly: true })
    expect(matcher.submit(book, resting).at(-1)).toMatchObject({
      type: 'rested',
      remaining: size('0.002'),
    })
    // a closes its long elsewhere; its resting reduce-only order is now exhausted
    matcher.submit(book, order('c', 'buy', '0.002', '105'))
    matcher.submit(book, order('a', 'sell', '0.002', '105'))
    expect(matcher.positionOf(book, 'a').size).toBe(0n)
    const decisions = matcher.submit(book, order('d', 'buy', '0.001', '110'))
    expect(decisions).toContainEqual(
      expect.objectContaining({
        type: 'cancelled',
        orderId: resting.orderId,
        reason: 'reduce_only_exhausted',
      }),
    )
    expect(fills(decisions)).toHaveLength(0)
    expect(matcher.positionOf(book, 'a').size).toBe(0n)
  })

  it('records the capped part of a reduce-only order and never fills a reduce-only FOK in part', () => {
    const book = matcher.create(btc)
    matcher.submit(book, order('b', 'sell', '0.001', '100'))
    matcher.submit(book, order('a', 'buy', '0.001', '100')) // a is long 0.001
    matcher.submit(book, order('c', 'buy', '0.005', '99'))
    const fok = matcher.submit(
      book,
      order('a', 'sell', '0.005', '99', { reduceOnly: true, timeInForce: 'FOK' }),
    )
    expect(fok).toEqual([expect.objectContaining({ type: 'rejected', reason: 'fok_not_fillable' })])
    const capped = order('a', 'sell', '0.005', '99', { reduceOnly: true })
    const decisions = matcher.submit(book, capped)
    expect(decisions.slice(0, 3)).toEqual([
      { type: 'accepted', orderId: capped.orderId },
      {
        type: 'cancelled',
        orderId: capped.orderId,
        remaining: size('0.004'),
        reason: 'reduce_only_capped',
      },
      expect.objectContaining({ type: 'fill', size: size('0.001') }),
    ])
    expect(matcher.positionOf(book, 'a').size).toBe(0n)
  })

  it('cancels a resting order once; a later cancel or fill of it is impossible', () => {
    const book = matcher.create(btc)
    const resting = order('m', 'sell', '0.001', '100')
    matcher.submit(book, resting)
    expect(matcher.cancel(book, resting.orderId)).toMatchObject({
      type: 'cancelled',
      reason: 'user',
    })
    expect(matcher.cancel(book, resting.orderId)).toMatchObject({
      type: 'cancel_rejected',
      reason: 'not_open',
    })
    expect(fills(matcher.submit(book, order('t', 'buy', '0.001', '100')))).toHaveLength(0)
  })

  it('keeps the book uncrossed, fills bounded, positions net zero and decisions deterministic', () => {
    const intent = fc.record({
      account: fc.constantFrom('a', 'b', 'c'),
      side: fc.constantFrom<matcher.Side>('buy', 'sell'),
      lots: fc.integer({ min: 1, max: 5 }),
      ticks: fc.option(fc.integer({ min: 195, max: 205 }), { nil: null }),
      timeInForce: fc.constantFrom<matcher.TimeInForce>('GTC', 'IOC', 'FOK', 'POST_ONLY'),
      reduceOnly: fc.boolean(),
      cancel: fc.nat(),
    })
    fc.assert(
      fc.property(fc.array(intent, { maxLength: 80 }), (intents) => {
        const run = () => {
          const book = matcher.create(btc)
          const log: matcher.Decision[] = []
          intents.forEach((i, n) => {
            if (i.cancel % 5 === 0 && book.orders.size > 0) {
              const ids = [...book.orders.keys()]
              log.push(matcher.cancel(book, ids[i.cancel % ids.length]!))
            }
            const o: matcher.OrderIntent = {
              orderId: `o${n}`,
              accountId: i.account,
              side: i.side,
              price: i.ticks === null ? null : BigInt(i.ticks) * btc.tick,
              size: BigInt(i.lots) * btc.lot,
              timeInForce: i.ticks === null && i.timeInForce !== 'FOK' ? 'IOC' : i.timeInForce,
              reduceOnly: i.reduceOnly,
            }
            const decisions = matcher.submit(book, o)
            log.push(...decisions)
            const filled = fills(decisions).reduce((s, f) => s + f.size, 0n)
            expect(filled <= o.size).toBe(true)
            const best = matcher.depth(book, 1)
            if (best.bids[0] && best.asks[0])
              expect(best.bids[0].price < best.asks[0].price).toBe(true)
          })
          const afterCancel = log.findIndex(
            (d, k) =>
              d.type === 'fill' &&
              log.slice(0, k).some((e) => e.type === 'cancelled' && e.orderId === d.makerOrderId),
          )
          expect(afterCancel).toBe(-1)
          const net = [...book.positions.values()].reduce((s, p) => s + p.size, 0n)
          expect(net).toBe(0n)
          return log
        }
        expect(run()).toEqual(run())
      }),
      { numRuns: 150 },
    )
  })
})
