// An account's figures across its shard (deposits, withdrawals) and every market it trades
// (positions, realized PnL, fees, resting orders), ready for the pure margin rules.

import type { AccountFigures } from '../domain/account'
import type { Instrument } from '../domain/instrument'
import * as margin from '../domain/margin'
import type * as money from '../domain/money'
import * as positions from '../domain/position'
import * as breakers from '../domain/breakers'
import type { BreakerMode } from '../domain/breakers'
import { ok, reject, type Result } from '../domain/result'
import * as risk from '../domain/risk'
import type { RiskRejection } from '../domain/risk'
import { intentOf, type OrderInput } from './market-doc'
import { balanceOf, type AccountIndex } from './account-index'

export type Mark = { price: money.Units; ts: number; stale: boolean }

/** What one market holds about one account. */
export type AccountMarketState = {
  symbol: string
  position: positions.Position
  realized: money.Units
  fees: money.Units
  /** Net funding received (negative: paid). */
  funding: money.Units
  resting: { remaining: money.Units; price: money.Units }[]
  mark: Mark | null
  /** The circuit breaker mode in force on this market (instrument and venue breakers). */
  mode: BreakerMode
  /** The message of a violation the market's audit recorded against the account, if any. */
  violation: string | null
}

/**
 * Marks a position at the market's mark; with no mark yet, at its own average entry, so an
 * unmarked position shows no PnL rather than an invented one.
 */
export function markOf(instrument: Instrument, state: AccountMarketState): money.Units {
  if (state.mark !== null) return state.mark.price
  return positions.averageEntry(state.position, instrument.notionalScale) ?? 0n
}

export function accountFigures(
  index: AccountIndex,
  accountId: string,
  markets: readonly AccountMarketState[],
  catalog: ReadonlyMap<string, Instrument>,
): AccountFigures {
  let collateral = balanceOf(index, accountId)
  const marked: margin.MarkedPosition[] = []
  const resting: margin.RestingOrder[] = []
  for (const state of markets) {
    const instrument = catalog.get(state.symbol)
    if (instrument === undefined) throw new Error(`market ${state.symbol} is not listed`)
    collateral += state.realized - state.fees + state.funding
    if (state.position.size !== 0n) {
      marked.push({ instrument, position: state.position, mark: markOf(instrument, state) })
    }
    for (const order of state.resting) resting.push({ instrument, ...order })
  }
  return margin.figures(collateral, marked, resting)
}

/**
 * The pre-trade risk check of an order in wire form, against the account's figures and the mark
 * its market reported. Returns the limit the matcher gets (a market order's band edge).
 */
export function orderRisk(
  input: OrderInput,
  instrument: Instrument,
  markets: readonly AccountMarketState[],
  figures: AccountFigures,
): Result<{ limit: money.Units; margin: money.Units }, RiskRejection | 'market_restricted'> {
  const mode = markets.find((state) => state.symbol === instrument.symbol)?.mode ?? 'normal'
  if (!breakers.admitsOrder(mode, input.reduceOnly)) return restricted(instrument.symbol, mode)
  const intent = intentOf(instrument, input)
  const mark = markets.find((state) => state.symbol === instrument.symbol)?.mark ?? null
  const openOrders = markets.reduce((count, state) => count + state.resting.length, 0)
  const checked = risk.preTrade(figures, { ...intent, instrument }, mark, openOrders)
  return checked.ok ? ok({ limit: checked.value.limit, margin: checked.value.margin }) : checked
}

/** The refusal of an order a circuit breaker does not admit. */
export const restricted = (symbol: string, mode: breakers.BreakerMode) =>
  reject(
    'market_restricted' as const,
    `${symbol} is ${mode.replace('_', '-')} by the operator: ` +
      (mode === 'reduce_only' ? 'only reduce-only orders are taken' : 'no new orders are taken'),
  )

/** The first instrument where the account holds a position whose mark is missing or stale. */
export const staleMarkUnder = (markets: readonly AccountMarketState[]): string | undefined =>
  markets.find((state) => state.position.size !== 0n && (state.mark === null || state.mark.stale))
    ?.symbol
