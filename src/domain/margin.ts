// Cross margin of one account: every position and open order is margined against one collateral
// balance. Margins round up and PnL is exact, so the figures never flatter the account.

import type { AccountFigures } from './account'
import * as instruments from './instrument'
import type * as money from './money'
import * as positions from './position'

export type MarkedPosition = {
  instrument: instruments.Instrument
  position: positions.Position
  /** Mark price in the instrument's price units. */
  mark: money.Units
}

export type RestingOrder = {
  instrument: instruments.Instrument
  /** Unfilled size, unsigned. */
  remaining: money.Units
  /** Limit price in price units. */
  price: money.Units
}

const abs = (n: bigint): bigint => (n < 0n ? -n : n)

/** Initial margin an order of `size` at `price` reserves. */
export const orderMargin = (
  instrument: instruments.Instrument,
  price: money.Units,
  size: money.Units,
) =>
  instruments.applyRateUp(
    instruments.notional(instrument, price, size),
    instrument.initialMarginRate,
  )

/**
 * The account's figures: collateral from the ledger (deposits − withdrawals + realized PnL − fees
 * ± funding), PnL and margins from positions at mark, plus the margin open orders reserve.
 */
export function figures(
  collateral: money.Units,
  marked: readonly MarkedPosition[],
  resting: readonly RestingOrder[],
): AccountFigures {
  let unrealizedPnl = 0n
  let initialMargin = 0n
  let maintenanceMargin = 0n
  for (const { instrument, position, mark } of marked) {
    const markValue = instruments.notional(instrument, mark, position.size)
    unrealizedPnl += positions.unrealized(position, markValue)
    initialMargin += instruments.applyRateUp(abs(markValue), instrument.initialMarginRate)
    maintenanceMargin += instruments.applyRateUp(abs(markValue), instrument.maintenanceMarginRate)
  }
  for (const order of resting)
    initialMargin += orderMargin(order.instrument, order.price, order.remaining)
  return { collateral, unrealizedPnl, initialMargin, maintenanceMargin }
}
