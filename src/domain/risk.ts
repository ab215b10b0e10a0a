// Pre-trade risk. An order must carry a price within the band around the mark (a market order is
// priced at the band's edge), and, unless it only reduces a position, the account's available
// balance must cover what it can cost at once: initial margin at the worse of its price and the
// mark, the loss it realizes against the mark if it fills off-market, and the taker fee.

import { openOrdersPerAccountMax, priceBandRate } from '../constants'
import type { AccountFigures } from './account'
import * as instruments from './instrument'
import type { Side } from './matcher'
import * as money from './money'
import { ok, reject, type Result } from './result'

export type RiskRejection =
  | 'insufficient_margin'
  | 'price_outside_band'
  | 'too_many_open_orders'
  | 'mark_unavailable'
  | 'mark_stale'

export type OrderTerms = {
  instrument: instruments.Instrument
  side: Side
  /** Limit price in price units; null for a market order. */
  price: money.Units | null
  size: money.Units
  reduceOnly: boolean
}

export type MarkView = { price: money.Units; stale: boolean }

const rateScale = 10n ** BigInt(instruments.rateDecimals)

/** The prices an order may carry: the mark ± the band, on the tick grid. */
export function band(instrument: instruments.Instrument, mark: money.Units) {
  const delta = (mark * priceBandRate) / rateScale
  const low = mark - delta
  const high = mark + delta
  const tick = instrument.tick
  return { low: ((low + tick - 1n) / tick) * tick, high: (high / tick) * tick }
}

export function preTrade(
  figures: AccountFigures,
  order: OrderTerms,
  mark: MarkView | null,
  openOrders: number,
): Result<{ limit: money.Units; margin: money.Units }, RiskRejection> {
  const { instrument } = order
  if (mark === null) return reject('mark_unavailable', `no mark price for ${instrument.symbol} yet`)
  if (mark.stale && !order.reduceOnly) {
    return reject(
      'mark_stale',
      `the mark of ${instrument.symbol} is stale: only reduce-only orders are taken`,
    )
  }
  const { low, high } = band(instrument, mark.price)
  const limit = order.price ?? (order.side === 'buy' ? high : low)
  if (limit < low || limit > high) {
    const text = (units: money.Units) => instruments.formatPrice(instrument, units)
    return reject(
      'price_outside_band',
      `price must be within ${text(low)}..${text(high)} (mark ± band)`,
    )
  }
  if (order.reduceOnly) return ok({ limit, margin: 0n })
  if (openOrders >= openOrdersPerAccountMax) {
    return reject(
      'too_many_open_orders',
      `an account may hold ${openOrdersPerAccountMax} resting orders`,
    )
  }
  const margin = required(instrument, order.side, limit, mark.price, order.size)
  const available = figures.collateral + figures.unrealizedPnl - figures.initialMargin
  if (margin > available) {
    const usd = (units: money.Units) => money.formatUsd(units > 0n ? units : 0n)
    return reject(
      'insufficient_margin',
      `order needs ${usd(margin)} USD (initial margin, loss against the mark and taker fee); ${usd(available)} USD is available`,
    )
  }
  return ok({ limit, margin })
}

function required(
  instrument: instruments.Instrument,
  side: Side,
  limit: money.Units,
  mark: money.Units,
  size: money.Units,
): money.Units {
  const worse = limit > mark ? limit : mark
  const initial = instruments.applyRateUp(
    instruments.notional(instrument, worse, size),
    instrument.initialMarginRate,
  )
  const adverse = side === 'buy' ? limit - mark : mark - limit
  const loss = adverse > 0n ? instruments.notional(instrument, adverse, size) : 0n
  const fee = instruments.applyRateUp(
    instruments.notional(instrument, limit, size),
    instrument.takerFeeRate,
  )
  return initial + loss + fee
}
