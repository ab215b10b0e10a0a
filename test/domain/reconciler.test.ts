// Settlement decisions alone: the epoch's funding rate from the book, who is liquidated, and what
// settling a book does (liquidations against the insurance fund, funding that never pays out more
// than it takes in, positions still netting to zero).

import { describe, expect, it } from 'vitest'
import * as matcher from '../../src/domain/matcher'
import * as reconciler from '../../src/domain/reconciler'
import { btc, price, size } from '../support/instruments'

const usd = (whole: number) => BigInt(whole) * 1_000_000n

let counter = 0
const limit = (accountId: string, side: matcher.Side, qty: string, at: string) => ({
  orderId: `o${++counter}`,
  accountId,
  side,
  price: price(at),
  size: size(qty),
  timeInForce: 'GTC' as const,
  reduceOnly: false,
})

/** A book where alice is long 0.003 and bob short 0.003, plus carol's two-sided quote. */
function tradedBook() {
  const book = matcher.create(btc)
  matcher.submit(book, limit('bob', 'sell', '0.003', '60000'))
  matcher.submit(book, limit('alice', 'buy', '0.003', '60000'))
  matcher.submit(book, limit('carol', 'buy', '0.001', '59990'))
  matcher.submit(book, limit('carol', 'sell', '0.001', '60010'))
  return book
}

describe('reconciler decisions', () => {
  it('numbers epochs by interval', () => {
    expect(reconciler.epochOf(0, 60_000)).toBe(0)
    expect(reconciler.epochOf(119_999, 60_000)).toBe(1)
  })

  it('prices funding as the mid premium over the mark, capped, and none without two sides', () => {
    const book = tradedBook()
    // mid 60000 over mark 59970: +0.05% exactly.
    expect(reconciler.fundingRate(book, price('59970'))).toBe(500n)
    // mid under the mark by 0.009999%: the rate rounds down, to −0.01%.
    expect(reconciler.fundingRate(book, price('60006'))).toBe(-100n)
    // 1% over: capped.
    expect(reconciler.fundingRate(book, price('59400'))).toBe(500n)
    expect(reconciler.fundingRate(matcher.create(btc), price('60000'))).toBe(0n)
  })

  it('liquidates exactly the accounts with equity under maintenance margin', () => {
    const figures = (collateral: number, unrealized: number, maintenance: number) => ({
      collateral: usd(collateral),
      unrealizedPnl: usd(unrealized),
      initialMargin: 0n,
      maintenanceMargin: usd(maintenance),
    })
    expect(
      reconciler.liquidationsDue([
        { accountId: 'under', figures: figures(100, -60, 41) },
        { accountId: 'at', figures: figures(100, -60, 40) },
        { accountId: 'fine', figures: figures(100, 0, 10) },
      ]),
    ).toEqual(['under'])
  })
})

describe('settling a book', () => {
  it('hands liquidated positions to the insurance fund at the mark and cancels their orders', () => {
    const book = tradedBook()
    matcher.submit(book, limit('alice', 'buy', '0.001', '59000'))
    const decisions = matcher.settle(book, {
      epoch: 3,
      mark: price('55000'),
      fundingRate: 0n,
      liquidate: ['alice'],
      liquidationFeeRate: 10_000n,
    })
    expect(decisions.map((d) => d.type)).toEqual(['cancelled', 'fill'])
    const fill = decisions[1] as matcher.Fill
    expect(fill).toMatchObject({
      taker: 'alice',
      maker: '@insurance',
      takerSide: 'sell',
      price: price('55000'),
      size: size('0.003'),
      takerFee: 1_650_000n, // 1% of 165
      makerFee: 0n,
      takerRealized: -15_000_000n, // 0.003 × (55000 − 60000)
      makerRealized: 0n,
      feeTo: '@insurance',
    })
    expect(matcher.positionOf(book, 'alice').size).toBe(0n)
    expect(matcher.positionOf(book, '@insurance').size).toBe(size('0.003'))
    expect(reconciler.positionsNetToZero(book)).toBe(0n)
  })

  it('charges funding to payers rounded up and credits receivers rounded down', () => {
    const book = tradedBook()
    const decisions = matcher.settle(book, {
      epoch: 4,
      mark: price('60001'),
      fundingRate: 333n, // 0.0333%: 0.003 × 60001 × 0.000333 = 0.059940999 USD
      liquidate: [],
      liquidationFeeRate: 10_000n,
    })
    expect(decisions).toEqual([
      { type: 'funding', accountId: 'alice', amount: -59_941n },
      { type: 'funding', accountId: 'bob', amount: 59_940n },
    ])
  })
})
