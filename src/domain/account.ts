// The account summary a trader checks against their own books. Until trading lands an account
// holds only collateral, so the margin fields are zero; the shape is final.

import * as money from './money'

export type AccountSummary = {
  collateral: string
  equity: string
  unrealizedPnl: string
  initialMargin: string
  maintenanceMargin: string
  availableBalance: string
  withdrawable: string
  /** maintenanceMargin / equity; "0" with no positions. */
  marginRatio: string
}

export type AccountFigures = {
  collateral: money.Units
  unrealizedPnl: money.Units
  initialMargin: money.Units
  maintenanceMargin: money.Units
}

/** Collateral only: what an account without positions or orders holds. */
export const collateralOnly = (collateral: money.Units): AccountFigures => ({
  collateral,
  unrealizedPnl: 0n,
  initialMargin: 0n,
  maintenanceMargin: 0n,
})

/** Units an account may withdraw: what keeps equity at or above initial margin, never more than collateral. */
export function withdrawableUnits(figures: AccountFigures): money.Units {
  const equity = figures.collateral + figures.unrealizedPnl
  const available = equity - figures.initialMargin
  return money.max(0n, money.min(available, figures.collateral))
}

const ratioDecimals = 6

export function summarize(figures: AccountFigures): AccountSummary {
  const equity = figures.collateral + figures.unrealizedPnl
  const scale = 10n ** BigInt(ratioDecimals)
  const marginRatio =
    equity > 0n
      ? (figures.maintenanceMargin * scale) / equity
      : figures.maintenanceMargin > 0n
        ? -1n
        : 0n
  return {
    collateral: money.formatUsd(figures.collateral),
    equity: money.formatUsd(equity),
    unrealizedPnl: money.formatUsd(figures.unrealizedPnl),
    initialMargin: money.formatUsd(figures.initialMargin),
    maintenanceMargin: money.formatUsd(figures.maintenanceMargin),
    availableBalance: money.formatUsd(equity - figures.initialMargin),
    withdrawable: money.formatUsd(withdrawableUnits(figures)),
    marginRatio: marginRatio < 0n ? 'infinite' : money.format(marginRatio, ratioDecimals),
  }
}
