// The single-threaded reference model of trading (C8, shared with C3, C5, C7): replays one node's
// matcher steps in sequence order, keeping its own positions (signed size and remaining cost,
// cost removed pro rata on a reduce, truncated toward zero), fees (notional × rate, rounded up)
// and order states, written from the rules in the README rather than imported from src/domain,
// so a wrong fold in the node cannot hide behind the same code in the checker. Every step must be
// one a single sequencer could have taken: contiguous sequence numbers, each order accepted once,
// no fill beyond an order's size, none for a cancelled order, both legs on opposite sides.

import type { Instrument } from '../../../src/domain/instrument'
import { usd, units, type Decision, type NodeView, type Step } from '../final-state'

export type Position = { size: bigint; cost: bigint }

export type ModelOrder = {
  instrument: string
  accountId: string
  side: 'buy' | 'sell'
  size: bigint
  filled: bigint
  /** Terminal: cancelled by the user, self-trade, IOC remainder... */
  cancelled: boolean
  /** Sequence number of the step that cancelled it. */
  cancelledAt: number | null
}

export type Problem = { type: string; message: string }

export type TradingModel = {
  /** Instrument → account → position. */
  positions: Map<string, Map<string, Position>>
  realized: Map<string, bigint>
  fees: Map<string, bigint>
  orders: Map<string, ModelOrder>
  fillCount: number
  problems: Problem[]
}

const rateScale = 1_000_000n
const abs = (n: bigint) => (n < 0n ? -n : n)
const sign = (n: bigint) => (n > 0n ? 1n : n < 0n ? -1n : 0n)
const feeOf = (value: bigint, rate: bigint) => (abs(value) * rate + rateScale - 1n) / rateScale

/** A fill of signed `quantity` worth signed `value` on a position; returns the PnL it realizes. */
export function applyFill(position: Position, quantity: bigint, value: bigint): bigint {
  if (position.size === 0n || sign(position.size) === sign(quantity)) {
    position.size += quantity
    position.cost += value
    return 0n
  }
  const closing = abs(quantity) < abs(position.size) ? abs(quantity) : abs(position.size)
  const removedCost = (position.cost * closing) / abs(position.size)
  const closingValue = (value * closing) / abs(quantity)
  position.size += sign(quantity) * closing
  position.cost -= removedCost
  const opening = abs(quantity) - closing
  if (opening > 0n) {
    position.size += sign(quantity) * opening
    position.cost += value - closingValue
  }
  return -closingValue - removedCost
}

const models = new WeakMap<NodeView, TradingModel>()

/** The model of one node's steps (computed once per view). */
export function replayTrading(view: NodeView, instruments: Map<string, Instrument>): TradingModel {
  const cached = models.get(view)
  if (cached !== undefined) return cached
  const model: TradingModel = {
    positions: new Map(),
    realized: new Map(),
    fees: new Map(),
    orders: new Map(),
    fillCount: 0,
    problems: [],
  }
  for (const [symbol, steps] of view.steps) {
    const instrument = instruments.get(symbol)
    if (instrument === undefined) {
      model.problems.push({ type: 'unknown-instrument', message: `${view.node}: ${symbol}` })
      continue
    }
    steps.forEach((step, i) => {
      if (step.seq !== i + 1) {
        model.problems.push({
          type: 'step-gap',
          message: `${view.node} ${symbol}: step ${i + 1} is seq ${step.seq}`,
        })
      }
      takeStep(model, instrument, step, `${view.node} ${symbol}#${step.seq}`)
    })
  }
  models.set(view, model)
  return model
}

function takeStep(model: TradingModel, instrument: Instrument, step: Step, where: string): void {
  const { input } = step
  const problem = (type: string, message: string) =>
    model.problems.push({ type, message: `${where}: ${message}` })
  for (const decision of step.decisions) {
    if (decision.type === 'accepted') {
      if (input.kind !== 'order' || decision.orderId !== input.orderId) {
        problem('accept-mismatch', `accepted ${decision.orderId} in a step for ${input.orderId}`)
        continue
      }
      if (model.orders.has(input.orderId)) {
        problem('double-accept', `order ${input.orderId} accepted again`)
        continue
      }
      model.orders.set(input.orderId, {
        instrument: instrument.symbol,
        accountId: input.accountId,
        side: input.side ?? 'buy',
        size: units(input.size ?? '0', instrument.sizeDecimals),
        filled: 0n,
        cancelled: false,
        cancelledAt: null,
      })
    } else if (decision.type === 'cancelled') {
      const order = model.orders.get(decision.orderId ?? '')
      if (order === undefined) {
        problem('cancel-unknown', `cancelled ${decision.orderId}, never accepted`)
        continue
      }
      if (order.cancelled) problem('double-cancel', `${decision.orderId} cancelled twice`)
      // A reduce-only order's capped part never works; the rest of the order does.
      if (decision.reason === 'reduce_only_capped')
        order.size -= units(decision.remaining ?? '0', instrument.sizeDecimals)
      else {
        order.cancelled = true
        order.cancelledAt = step.seq
      }
    } else if (decision.type === 'fill') {
      takeFill(model, instrument, step, decision, problem)
    }
  }
}

function takeFill(
  model: TradingModel,
  instrument: Instrument,
  step: Step,
  fill: Decision,
  problem: (type: string, message: string) => void,
): void {
  model.fillCount++
  const taker = model.orders.get(fill.takerOrderId ?? '')
  const maker = model.orders.get(fill.makerOrderId ?? '')
  if (fill.takerOrderId !== step.input.orderId)
    problem('fill-taker', `${fill.fillId}: taker ${fill.takerOrderId} is not the step's order`)
  if (taker === undefined || maker === undefined) {
    problem('fill-unknown-order', `${fill.fillId}: an order of the fill was never accepted`)
    return
  }
  if (taker.accountId !== fill.taker || maker.accountId !== fill.maker)
    problem('fill-account', `${fill.fillId}: accounts differ from the orders'`)
  if (taker.side === maker.side || fill.takerSide !== taker.side)
    problem('fill-sides', `${fill.fillId}: both legs on one side`)
  if (fill.taker === fill.maker)
    problem('self-trade', `${fill.fillId}: ${fill.taker} traded itself`)
  const size = units(fill.size ?? '0', instrument.sizeDecimals)
  const price = units(fill.price ?? '0', instrument.priceDecimals)
  if (size <= 0n || price <= 0n) problem('fill-size', `${fill.fillId}: size ${fill.size}`)
  for (const [name, order] of [
    ['taker', taker],
    ['maker', maker],
  ] as const) {
    if (order.cancelled)
      problem('fill-after-cancel', `${fill.fillId}: ${name} cancelled at step ${order.cancelledAt}`)
    order.filled += size
    if (order.filled > order.size)
      problem('overfill', `${fill.fillId}: ${name} filled ${order.filled} of ${order.size}`)
  }
  const value = price * size * instrument.notionalScale
  const expected = {
    takerFee: feeOf(value, instrument.takerFeeRate),
    makerFee: feeOf(value, instrument.makerFeeRate),
    takerRealized: move(model, instrument.symbol, taker.accountId, taker.side, size, value),
    makerRealized: move(model, instrument.symbol, maker.accountId, maker.side, size, value),
  }
  for (const [field, amount] of Object.entries(expected) as [keyof typeof expected, bigint][]) {
    const stated = usd(fill[field] ?? '0')
    if (stated !== amount)
      problem('fill-figures', `${fill.fillId}: ${field} ${fill[field]}, model ${amount}e-6`)
  }
  add(model.fees, taker.accountId, expected.takerFee)
  add(model.fees, maker.accountId, expected.makerFee)
  add(model.realized, taker.accountId, expected.takerRealized)
  add(model.realized, maker.accountId, expected.makerRealized)
}

function move(
  model: TradingModel,
  symbol: string,
  accountId: string,
  side: 'buy' | 'sell',
  size: bigint,
  value: bigint,
): bigint {
  let book = model.positions.get(symbol)
  if (book === undefined) model.positions.set(symbol, (book = new Map()))
  let position = book.get(accountId)
  if (position === undefined) book.set(accountId, (position = { size: 0n, cost: 0n }))
  const direction = side === 'buy' ? 1n : -1n
  return applyFill(position, direction * size, direction * value)
}

const add = (map: Map<string, bigint>, key: string, amount: bigint) =>
  map.set(key, (map.get(key) ?? 0n) + amount)
