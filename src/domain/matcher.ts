// The matcher of one instrument: price-time priority over a limit order book, run by the single
// node that sequences the instrument (design.md §1: matching needs a total order, never a CRDT).
// It is pure: given the same book and the same order of inputs it makes the same decisions on any
// node, which is what lets a new home node rebuild the book from replicated entries.
//
// Policies: market orders are IOC or FOK; POST_ONLY rejects an order that would take; FOK fills
// whole or is rejected with no change; a reduce-only order never increases its account's position,
// as taker (capped at submission) or as maker (capped at each fill, cancelled once exhausted);
// self-trade prevention cancels the taker's remainder (expire taker).

import { assert } from './assert'
import * as instruments from './instrument'
import type * as money from './money'
import * as ledger from './ledger'
import * as positions from './position'

export type Side = 'buy' | 'sell'
export type TimeInForce = 'GTC' | 'IOC' | 'FOK' | 'POST_ONLY'

export type OrderIntent = {
  orderId: string
  accountId: string
  side: Side
  /** Limit price in price units; null for a market order. */
  price: money.Units | null
  size: money.Units
  timeInForce: TimeInForce
  reduceOnly: boolean
}

export type RestingOrder = {
  orderId: string
  accountId: string
  side: Side
  price: money.Units
  remaining: money.Units
  reduceOnly: boolean
}

type Level = { price: money.Units; queue: RestingOrder[] }

export type Book = {
  instrument: instruments.Instrument
  /** Best first: bids by descending price, asks by ascending price. */
  bids: Level[]
  asks: Level[]
  orders: Map<string, RestingOrder>
  /** Every account's position in this instrument, kept current by the fills made here. */
  positions: Map<string, positions.Position>
}

export type RejectReason =
  | 'post_only_would_take'
  | 'fok_not_fillable'
  | 'reduce_only_would_increase'
  | 'duplicate_order_id'
  | 'market_requires_ioc_or_fok'

export type CancelReason =
  | 'user'
  | 'unfilled_ioc'
  | 'self_trade'
  | 'reduce_only_capped'
  | 'reduce_only_exhausted'
  | 'no_liquidity'
  | 'liquidated'

export type Fill = {
  type: 'fill'
  takerOrderId: string
  makerOrderId: string
  taker: string
  maker: string
  takerSide: Side
  price: money.Units
  size: money.Units
  takerFee: money.Units
  makerFee: money.Units
  takerRealized: money.Units
  makerRealized: money.Units
  /** Where the taker's fee goes when not to the venue's fees: a liquidation's to the fund. */
  feeTo?: string
}

/** A funding payment of one account at a settlement: positive receives, negative pays. */
export type Funding = { type: 'funding'; accountId: string; amount: money.Units }

export type Decision =
  | { type: 'accepted'; orderId: string }
  | { type: 'rejected'; orderId: string; reason: RejectReason }
  | Fill
  | { type: 'rested'; orderId: string; price: money.Units; remaining: money.Units }
  | { type: 'cancelled'; orderId: string; remaining: money.Units; reason: CancelReason }
  | { type: 'cancel_rejected'; orderId: string; reason: 'not_open' }
  | Funding

export const create = (instrument: instruments.Instrument): Book => ({
  instrument,
  bids: [],
  asks: [],
  orders: new Map(),
  positions: new Map(),
})

/**
 * A book holding `resting` (each side best price first, each level in time priority, as
 * `restingOf` lists them) and the positions `held`: what a market checkpoint restores.
 */
export function restore(
  instrument: instruments.Instrument,
  resting: readonly RestingOrder[],
  held: ReadonlyMap<string, positions.Position>,
): Book {
  const book = create(instrument)
  for (const order of resting) rest(book, { ...order })
  for (const [accountId, position] of held) book.positions.set(accountId, position)
  return book
}

/** The book's resting orders: bids then asks, best price first, each level in time priority. */
export const restingOf = (book: Book): RestingOrder[] =>
  [...book.bids, ...book.asks].flatMap((level) => level.queue)

export const positionOf = (book: Book, accountId: string): positions.Position =>
  book.positions.get(accountId) ?? positions.flat

const opposite = (side: Side): Side => (side === 'buy' ? 'sell' : 'buy')
const signed = (side: Side, size: money.Units) => (side === 'buy' ? size : -size)
const abs = (n: bigint) => (n < 0n ? -n : n)

/** Size `accountId` may trade on `side` without increasing its position (reduce-only cap). */
function reducibleSize(book: Book, accountId: string, side: Side): money.Units {
  const size = positionOf(book, accountId).size
  return (side === 'buy' && size < 0n) || (side === 'sell' && size > 0n) ? abs(size) : 0n
}

const crosses = (taker: OrderIntent, makerPrice: money.Units) =>
  taker.price === null ||
  (taker.side === 'buy' ? makerPrice <= taker.price : makerPrice >= taker.price)

type Plan = {
  fills: { maker: RestingOrder; size: money.Units }[]
  exhaustedMakers: RestingOrder[]
  filled: money.Units
  selfTrade: boolean
}

/** What matching `taker` for up to `size` would do, without changing the book. */
function plan(book: Book, taker: OrderIntent, size: money.Units): Plan {
  const result: Plan = { fills: [], exhaustedMakers: [], filled: 0n, selfTrade: false }
  const makerUse = new Map<string, money.Units>()
  for (const level of taker.side === 'buy' ? book.asks : book.bids) {
    if (result.filled === size || !crosses(taker, level.price)) break
    for (const maker of level.queue) {
      if (result.filled === size) break
      if (maker.accountId === taker.accountId) {
        result.selfTrade = true
        return result
      }
      let available = maker.remaining
      if (maker.reduceOnly) {
        const cap =
          reducibleSize(book, maker.accountId, maker.side) - (makerUse.get(maker.accountId) ?? 0n)
        if (cap <= 0n) {
          result.exhaustedMakers.push(maker)
          continue
        }
        available = available < cap ? available : cap
      }
      const take = available < size - result.filled ? available : size - result.filled
      makerUse.set(maker.accountId, (makerUse.get(maker.accountId) ?? 0n) + take)
      result.fills.push({ maker, size: take })
      result.filled += take
    }
  }
  return result
}

/** Submits an order: validates it, matches what crosses, rests or cancels the rest. */
export function submit(book: Book, taker: OrderIntent): Decision[] {
  assert(taker.size > 0n, 'an order has a size')
  const reject = (reason: RejectReason): Decision[] => [
    { type: 'rejected', orderId: taker.orderId, reason },
  ]
  if (book.orders.has(taker.orderId)) return reject('duplicate_order_id')
  if (taker.price === null && taker.timeInForce !== 'IOC' && taker.timeInForce !== 'FOK') {
    return reject('market_requires_ioc_or_fok')
  }
  let size = taker.size
  if (taker.reduceOnly) {
    const reducible = reducibleSize(book, taker.accountId, taker.side)
    if (reducible === 0n) return reject('reduce_only_would_increase')
    if (taker.timeInForce === 'FOK' && reducible < size) return reject('fok_not_fillable')
    size = size < reducible ? size : reducible
  }
  const planned = plan(book, taker, size)
  if (taker.timeInForce === 'POST_ONLY' && (planned.fills.length > 0 || planned.selfTrade)) {
    return reject('post_only_would_take')
  }
  if (taker.timeInForce === 'FOK' && planned.filled < size) return reject('fok_not_fillable')
  // After this point, the order is accepted and every decision below is applied to the book.
  const decisions: Decision[] = [{ type: 'accepted', orderId: taker.orderId }]
  if (size < taker.size) {
    // The part a reduce-only order could only fill by increasing the position never works.
    decisions.push({
      type: 'cancelled',
      orderId: taker.orderId,
      remaining: taker.size - size,
      reason: 'reduce_only_capped',
    })
  }
  for (const maker of planned.exhaustedMakers) {
    decisions.push(removeResting(book, maker, 'reduce_only_exhausted'))
  }
  for (const { maker, size: fillSize } of planned.fills)
    decisions.push(fill(book, taker, maker, fillSize))
  const remaining = size - planned.filled
  if (remaining === 0n) return decisions
  const reason: CancelReason | undefined = planned.selfTrade
    ? 'self_trade'
    : taker.price === null
      ? 'no_liquidity'
      : taker.timeInForce === 'IOC' || taker.timeInForce === 'FOK'
        ? 'unfilled_ioc'
        : undefined
  if (reason !== undefined) {
    decisions.push({ type: 'cancelled', orderId: taker.orderId, remaining, reason })
    return decisions
  }
  assert(taker.price !== null, 'only limit orders rest')
  rest(book, { ...taker, price: taker.price, remaining })
  decisions.push({ type: 'rested', orderId: taker.orderId, price: taker.price, remaining })
  return decisions
}

/** Cancels a resting order; an order that is not resting (filled, cancelled, unknown) is refused. */
export function cancel(book: Book, orderId: string): Decision {
  const order = book.orders.get(orderId)
  if (order === undefined) return { type: 'cancel_rejected', orderId, reason: 'not_open' }
  return removeResting(book, order, 'user')
}

/** What one settlement of a book applies, decided before it is taken (see domain/reconciler). */
export type Settlement = {
  epoch: number
  /** The epoch's mark, in price units. */
  mark: money.Units
  /** Funding rate of the epoch (rate units, signed): longs pay shorts when positive. */
  fundingRate: bigint
  /** Accounts below maintenance margin, closed at the mark against the insurance fund. */
  liquidate: readonly string[]
  liquidationFeeRate: bigint
}

const rateScale = 10n ** BigInt(instruments.rateDecimals)

/**
 * Settles the book at the epoch's mark: first each account to liquidate loses its resting orders
 * and has its position taken over by the insurance fund at the mark, paying the liquidation fee
 * to the fund; then every open position pays or receives funding. Payers round up, receivers
 * down, so the clearing account never pays out more than it took in.
 */
export function settle(book: Book, settlement: Settlement): Decision[] {
  const decisions: Decision[] = []
  const { mark, epoch } = settlement
  for (const accountId of [...new Set(settlement.liquidate)].sort()) {
    assert(accountId !== ledger.insuranceAccount, 'the insurance fund is never liquidated')
    for (const order of [...book.orders.values()]) {
      if (order.accountId === accountId) decisions.push(removeResting(book, order, 'liquidated'))
    }
    const position = positionOf(book, accountId)
    if (position.size === 0n) continue
    const side: Side = position.size > 0n ? 'sell' : 'buy'
    const size = abs(position.size)
    const value = instruments.notional(book.instrument, mark, size)
    const accountMove = positions.applyFill(position, signed(side, size), signed(side, value))
    const fundMove = positions.applyFill(
      positionOf(book, ledger.insuranceAccount),
      signed(opposite(side), size),
      signed(opposite(side), value),
    )
    book.positions.set(accountId, accountMove.position)
    book.positions.set(ledger.insuranceAccount, fundMove.position)
    decisions.push({
      type: 'fill',
      takerOrderId: `liquidation/${epoch}/${accountId}`,
      makerOrderId: `insurance/${epoch}/${accountId}`,
      taker: accountId,
      maker: ledger.insuranceAccount,
      takerSide: side,
      price: mark,
      size,
      takerFee: instruments.applyRateUp(value, settlement.liquidationFeeRate),
      makerFee: 0n,
      takerRealized: accountMove.realized,
      makerRealized: fundMove.realized,
      feeTo: ledger.insuranceAccount,
    })
  }
  if (settlement.fundingRate === 0n) return decisions
  const holders = [...book.positions]
    .filter(([, p]) => p.size !== 0n)
    .sort(([x], [y]) => (x < y ? -1 : 1))
  for (const [accountId, position] of holders) {
    const value = instruments.notional(book.instrument, mark, abs(position.size))
    const owed = value * abs(settlement.fundingRate)
    const pays = position.size > 0n === settlement.fundingRate > 0n
    const amount = pays ? -((owed + rateScale - 1n) / rateScale) : owed / rateScale
    if (amount !== 0n) decisions.push({ type: 'funding', accountId, amount })
  }
  return decisions
}

function fill(book: Book, taker: OrderIntent, maker: RestingOrder, size: money.Units): Fill {
  const { instrument } = book
  const value = instruments.notional(instrument, maker.price, size)
  const takerMove = positions.applyFill(
    positionOf(book, taker.accountId),
    signed(taker.side, size),
    signed(taker.side, value),
  )
  const makerMove = positions.applyFill(
    positionOf(book, maker.accountId),
    signed(maker.side, size),
    signed(maker.side, value),
  )
  book.positions.set(taker.accountId, takerMove.position)
  book.positions.set(maker.accountId, makerMove.position)
  maker.remaining -= size
  if (maker.remaining === 0n) removeFromLevel(book, maker)
  return {
    type: 'fill',
    takerOrderId: taker.orderId,
    makerOrderId: maker.orderId,
    taker: taker.accountId,
    maker: maker.accountId,
    takerSide: taker.side,
    price: maker.price,
    size,
    takerFee: instruments.applyRateUp(value, instrument.takerFeeRate),
    makerFee: instruments.applyRateUp(value, instrument.makerFeeRate),
    takerRealized: takerMove.realized,
    makerRealized: makerMove.realized,
  }
}

function rest(book: Book, order: RestingOrder): void {
  const levels = order.side === 'buy' ? book.bids : book.asks
  const better = (a: money.Units, b: money.Units) => (order.side === 'buy' ? a > b : a < b)
  let index = levels.findIndex((level) => !better(level.price, order.price))
  if (index === -1) index = levels.length
  const level = levels[index]
  if (level !== undefined && level.price === order.price) level.queue.push(order)
  else levels.splice(index, 0, { price: order.price, queue: [order] })
  book.orders.set(order.orderId, order)
}

function removeResting(book: Book, order: RestingOrder, reason: CancelReason): Decision {
  const remaining = order.remaining
  removeFromLevel(book, order)
  return { type: 'cancelled', orderId: order.orderId, remaining, reason }
}

function removeFromLevel(book: Book, order: RestingOrder): void {
  const levels = order.side === 'buy' ? book.bids : book.asks
  const index = levels.findIndex((level) => level.price === order.price)
  const level = levels[index]
  assert(level !== undefined, 'a resting order sits on a level')
  level.queue.splice(level.queue.indexOf(order), 1)
  if (level.queue.length === 0) levels.splice(index, 1)
  book.orders.delete(order.orderId)
}

/** Aggregated depth: the best `levels` price levels of each side with their total size. */
export function depth(book: Book, levels: number) {
  const aggregate = (side: Level[]) =>
    side.slice(0, levels).map((level) => ({
      price: level.price,
      size: level.queue.reduce((total, order) => total + order.remaining, 0n),
      orders: level.queue.length,
    }))
  return { bids: aggregate(book.bids), asks: aggregate(book.asks) }
}
