// The wire forms of trading state: orders, positions and fills as a trading client reads them.

import type { NodeConfig } from '../config'
import * as instruments from '../domain/instrument'
import * as margin from '../domain/margin'
import * as money from '../domain/money'
import * as positions from '../domain/position'
import { markOf, type AccountMarketState } from '../state/account-figures'
import type { WireFill } from '../state/market-doc'
import type { OrderView } from '../state/market-state'

const instrumentOf = (config: NodeConfig, symbol: string) => {
  const instrument = config.instruments.get(symbol)
  if (instrument === undefined) throw new Error(`instrument ${symbol} is not listed`)
  return instrument
}

/** Average of a value over a size, in price units, truncated to the tick's decimals. */
const averagePrice = (instrument: instruments.Instrument, value: money.Units, size: money.Units) =>
  size === 0n
    ? null
    : instruments.formatPrice(instrument, value / (size * instrument.notionalScale))

export function orderWire(config: NodeConfig, symbol: string, view: OrderView) {
  const instrument = instrumentOf(config, symbol)
  const { input } = view
  return {
    orderId: input.orderId,
    clientOrderId: input.clientOrderId,
    instrument: symbol,
    side: input.side,
    type: input.type,
    price: input.price,
    size: input.size,
    timeInForce: input.timeInForce,
    reduceOnly: input.reduceOnly,
    status: view.status,
    filledSize: instruments.formatSize(instrument, view.filled),
    remainingSize: instruments.formatSize(instrument, view.remaining),
    averageFillPrice: averagePrice(instrument, view.filledValue, view.filled),
    reason: view.reason,
    createdAt: input.receivedAt,
    updatedAt: view.updatedAt,
  }
}

export function positionWire(config: NodeConfig, state: AccountMarketState) {
  const instrument = instrumentOf(config, state.symbol)
  const mark = markOf(instrument, state)
  const markValue = instruments.notional(instrument, mark, state.position.size)
  const marked = state.position.size === 0n ? [] : [{ instrument, position: state.position, mark }]
  const figures = margin.figures(0n, marked, [])
  const entry = positions.averageEntry(state.position, instrument.notionalScale)
  return {
    instrument: state.symbol,
    size: instruments.formatSize(instrument, state.position.size),
    entryPrice: entry === undefined ? null : instruments.formatPrice(instrument, entry),
    markPrice: state.mark === null ? null : instruments.formatPrice(instrument, state.mark.price),
    markStale: state.mark === null || state.mark.stale,
    notional: money.formatUsd(markValue),
    unrealizedPnl: money.formatUsd(positions.unrealized(state.position, markValue)),
    realizedPnl: money.formatUsd(state.realized),
    fees: money.formatUsd(state.fees),
    initialMargin: money.formatUsd(figures.initialMargin),
    maintenanceMargin: money.formatUsd(figures.maintenanceMargin),
  }
}

export function fillWire(symbol: string, fill: WireFill, ts: number, accountId: string) {
  const taker = fill.taker === accountId
  return {
    fillId: fill.fillId,
    orderId: taker ? fill.takerOrderId : fill.makerOrderId,
    instrument: symbol,
    side: taker ? fill.takerSide : fill.takerSide === 'buy' ? ('sell' as const) : ('buy' as const),
    price: fill.price,
    size: fill.size,
    liquidity: taker ? ('taker' as const) : ('maker' as const),
    fee: taker ? fill.takerFee : fill.makerFee,
    realizedPnl: taker ? fill.takerRealized : fill.makerRealized,
    ts,
  }
}
