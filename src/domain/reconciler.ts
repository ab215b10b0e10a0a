// The settlement reconciler's decisions, pure: which epoch it is, the epoch's funding rate, which
// accounts to liquidate, and the audits of a market's invariants. The home node of an instrument
// takes each decision into its matcher's sequence as one settle step (market-doc SettleInput), so
// every node replays the same settlement, and an epoch settles at most once (I8).

import { fundingRateMax } from '../constants'
import type { AccountFigures } from './account'
import * as instruments from './instrument'
import type * as matcher from './matcher'
import type * as money from './money'

/** The epoch a time falls in: epochs are consecutive windows of `intervalMs` from the Unix epoch. */
export const epochOf = (now: number, intervalMs: number): number => Math.floor(now / intervalMs)

const rateScale = 10n ** BigInt(instruments.rateDecimals)

/**
 * The epoch's funding rate: the premium of the book's mid over the mark, clamped to
 * ±fundingRateMax. Longs pay shorts when the book trades above the mark. No two-sided book, no
 * funding.
 */
export function fundingRate(book: matcher.Book, mark: money.Units): bigint {
  const bid = book.bids[0]?.price
  const ask = book.asks[0]?.price
  if (bid === undefined || ask === undefined || mark <= 0n) return 0n
  const premium = ((bid + ask) * rateScale) / (2n * mark) - rateScale
  return premium > fundingRateMax
    ? fundingRateMax
    : premium < -fundingRateMax
      ? -fundingRateMax
      : premium
}

/** Accounts whose equity is below their maintenance margin: liquidated at this settlement. */
export function liquidationsDue(
  accounts: readonly { accountId: string; figures: AccountFigures }[],
): string[] {
  return accounts
    .filter(({ figures }) => figures.collateral + figures.unrealizedPnl < figures.maintenanceMargin)
    .map(({ accountId }) => accountId)
    .sort()
}

/** I5 for one book: every position has its other side, so they sum to zero. */
export function positionsNetToZero(book: matcher.Book): money.Units {
  let net = 0n
  for (const position of book.positions.values()) net += position.size
  return net
}
