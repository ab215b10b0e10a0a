// Pre-trade risk: an order is accepted only if the account's available balance (equity minus the
// initial margin of its positions and resting orders) covers the order's own initial margin.
// Reduce-only orders can only lower risk, so they always pass.

import type { AccountFigures } from './account'
import type * as instruments from './instrument'
import { orderMargin } from './margin'
import * as money from './money'
import { ok, reject, type Result } from './result'

export type RiskRejection = 'insufficient_margin'

export function preTrade(
  figures: AccountFigures,
  order: {
    instrument: instruments.Instrument
    price: money.Units
    size: money.Units
    reduceOnly: boolean
  },
): Result<{ margin: money.Units }, RiskRejection> {
  if (order.reduceOnly) return ok({ margin: 0n })
  const margin = orderMargin(order.instrument, order.price, order.size)
  const available = figures.collateral + figures.unrealizedPnl - figures.initialMargin
  if (margin > available) {
    return reject(
      'insufficient_margin',
      `order needs ${money.formatUsd(margin)} USD of initial margin; ${money.formatUsd(available > 0n ? available : 0n)} USD is available`,
    )
  }
  return ok({ margin })
}
