// The single-threaded reference model of trading (C8, shared with C3, C5, C7): replays one node's
// matcher steps in sequence order, keeping its own positions (signed size and remaining cost,
// cost removed pro rata on a reduce, truncated toward zero), fees (notional × rate, rounded up)
// and order states, written from the rules in the README rather than imported from src/domain,
// so a wrong fold in the node cannot hide behind the same code in the checker. Every step must be
// one a single sequencer could have taken: contiguous sequence numbers, each order accepted once,
// no fill beyond an order's size, none for a cancelled order, both legs on opposite sides.
// A settle step is replayed from its inputs (the epoch's mark, funding rate and accounts to
// liquidate, which the reconciler decided): each liquidated account loses its resting orders and
// hands its whole position to the insurance fund at the mark, paying 1% of the notional into the
// fund; then every open position pays (rounded up) or receives (rounded down) notional × rate
// against the clearing account. The step's stated figures must be the model's.
// Where a market checkpoint is in force the model starts from it, as the nodes do: its positions,
// its orders' fills and states, each account's realized PnL, fees and funding; and replays the
// chain after it. Its folded records are not replayed (C11 checks the base adds up).

import { liquidationFeeRate } from '../../../src/constants'
import type { Instrument } from '../../../src/domain/instrument'
import type { MarketCheckpoint } from '../../../src/state/market-doc'
import {
  insuranceAccount,
  usd,
  units,
  type Decision,
  type NodeView,
  type SettleStepInput,
  type Step,
} from '../final-state'

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
  /** Account → net funding, received minus paid. */
  funding: Map<string, bigint>
  /** Instrument → net funding its clearing account took in (paid minus received). */
  clearingFunding: Map<string, bigint>
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
    funding: new Map(),
    clearingFunding: new Map(),
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
    const base = view.bases.get(symbol)
    if (base !== undefined) startFrom(model, instrument, base)
    const first = (base?.at.seq ?? 0) + 1
    steps
      .filter((step) => step.folded !== true)
      .forEach((step, i) => {
        if (step.seq !== first + i) {
          model.problems.push({
            type: 'step-gap',
            message: `${view.node} ${symbol}: step ${first + i} is seq ${step.seq}`,
          })
        }
        takeStep(model, instrument, step, `${view.node} ${symbol}#${step.seq}`)
      })
  }
  models.set(view, model)
  return model
}

/** The model's state at a checkpoint in force: what the base says (amounts in integer units). */
function startFrom(model: TradingModel, instrument: Instrument, base: MarketCheckpoint): void {
  const symbol = instrument.symbol
  const book = positionsOf(model, symbol)
  for (const [accountId, { size, cost }] of Object.entries(base.positions))
    book.set(accountId, { size: BigInt(size), cost: BigInt(cost) })
  const resting = new Set(base.resting.map((order) => order.orderId))
  for (const [orderId, order] of Object.entries(base.orders)) {
    if (order.status === 'rejected') continue
    const filled = BigInt(order.filled)
    // A reduce-only order's capped part never works: its size is what filled and what rests.
    const cancelled = order.status === 'cancelled' && order.reason !== 'reduce_only_capped'
    const size = cancelled
      ? units(order.input.size, instrument.sizeDecimals)
      : filled + (resting.has(orderId) ? BigInt(order.remaining) : 0n)
    model.orders.set(orderId, {
      instrument: symbol,
      accountId: order.input.accountId,
      side: order.input.side,
      size,
      filled,
      cancelled,
      cancelledAt: cancelled ? base.at.seq : null,
    })
  }
  const fillIds = new Set<string>()
  for (const [accountId, activity] of Object.entries(base.accounts)) {
    add(model.realized, accountId, BigInt(activity.realized))
    add(model.fees, accountId, BigInt(activity.fees))
    add(model.funding, accountId, BigInt(activity.funding))
    add(model.clearingFunding, symbol, -BigInt(activity.funding))
    for (const { fill } of activity.fills) fillIds.add(fill.fillId)
  }
  model.fillCount += fillIds.size
}

function takeStep(model: TradingModel, instrument: Instrument, step: Step, where: string): void {
  const problem = (type: string, message: string) =>
    model.problems.push({ type, message: `${where}: ${message}` })
  const { input } = step
  if (input.kind === 'settle') {
    takeSettle(model, instrument, step, input, problem)
    return
  }
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
      takeCancel(model, instrument, step, decision, problem)
    } else if (decision.type === 'fill') {
      takeFill(model, instrument, step, decision, problem)
    }
  }
}

type ProblemOf = (type: string, message: string) => void

function takeCancel(
  model: TradingModel,
  instrument: Instrument,
  step: Step,
  decision: Decision,
  problem: ProblemOf,
): ModelOrder | undefined {
  const order = model.orders.get(decision.orderId ?? '')
  if (order === undefined) {
    problem('cancel-unknown', `cancelled ${decision.orderId}, never accepted`)
    return undefined
  }
  if (order.cancelled) problem('double-cancel', `${decision.orderId} cancelled twice`)
  // A reduce-only order's capped part never works; the rest of the order does.
  if (decision.reason === 'reduce_only_capped')
    order.size -= units(decision.remaining ?? '0', instrument.sizeDecimals)
  else {
    order.cancelled = true
    order.cancelledAt = step.seq
  }
  return order
}

function takeSettle(
  model: TradingModel,
  instrument: Instrument,
  step: Step,
  input: SettleStepInput,
  problem: ProblemOf,
): void {
  const mark = BigInt(input.mark)
  const liquidated = new Set(input.liquidate)
  const stated: Decision[] = []
  for (const decision of step.decisions) {
    if (decision.type === 'cancelled') {
      const order = takeCancel(model, instrument, step, decision, problem)
      if (decision.reason !== 'liquidated' || !liquidated.has(order?.accountId ?? ''))
        problem('settle-cancel', `${decision.orderId} cancelled (${decision.reason}) at settlement`)
    } else if (decision.type === 'fill') {
      takeLiquidation(model, instrument, mark, liquidated, decision, problem)
    } else if (decision.type === 'funding') {
      stated.push(decision)
    } else problem('settle-decision', `a ${decision.type} decision in a settle step`)
  }
  const book = positionsOf(model, instrument.symbol)
  for (const accountId of liquidated) {
    if ((book.get(accountId)?.size ?? 0n) !== 0n)
      problem('liquidation-missing', `${accountId} liquidated but still holds a position`)
    for (const [orderId, order] of model.orders)
      if (order.accountId === accountId && order.instrument === instrument.symbol)
        if (!order.cancelled && order.filled < order.size)
          problem('liquidation-orders', `${accountId} liquidated, ${orderId} still rests`)
  }
  const expected = fundingDue(instrument, book, mark, BigInt(input.fundingRate))
  const text = (list: { accountId?: string; amount: bigint }[]) =>
    list.map((f) => `${f.accountId} ${f.amount}`).join(', ')
  const statedText = text(stated.map((f) => ({ ...f, amount: usd(f.amount ?? '0') })))
  if (statedText !== text(expected))
    problem('funding-figures', `funding [${statedText}], model [${text(expected)}] (e-6)`)
  for (const { accountId, amount } of expected) {
    add(model.funding, accountId, amount)
    add(model.clearingFunding, instrument.symbol, -amount)
  }
}

/** Each open position's funding at `rate`, in account order: payers round up, receivers down. */
function fundingDue(
  instrument: Instrument,
  book: Map<string, Position>,
  mark: bigint,
  rate: bigint,
): { accountId: string; amount: bigint }[] {
  if (rate === 0n) return []
  return [...book]
    .filter(([, position]) => position.size !== 0n)
    .sort(([x], [y]) => (x < y ? -1 : 1))
    .map(([accountId, position]) => {
      const owed = mark * abs(position.size) * instrument.notionalScale * abs(rate)
      const pays = position.size > 0n === rate > 0n
      const amount = pays ? -((owed + rateScale - 1n) / rateScale) : owed / rateScale
      return { accountId, amount }
    })
    .filter(({ amount }) => amount !== 0n)
}

/** A liquidation: the account's whole position to the insurance fund at the mark, 1% fee to it. */
function takeLiquidation(
  model: TradingModel,
  instrument: Instrument,
  mark: bigint,
  liquidated: Set<string>,
  fill: Decision,
  problem: ProblemOf,
): void {
  const accountId = fill.taker ?? ''
  if (!liquidated.has(accountId) || fill.maker !== insuranceAccount) {
    problem('liquidation-fill', `${fill.fillId}: ${accountId} to ${fill.maker}, not a liquidation`)
    return
  }
  const held = positionsOf(model, instrument.symbol).get(accountId)?.size ?? 0n
  const size = units(fill.size ?? '0', instrument.sizeDecimals)
  const side = held > 0n ? 'sell' : 'buy'
  if (size !== abs(held) || fill.takerSide !== side)
    problem('liquidation-size', `${fill.fillId}: ${fill.takerSide} ${fill.size}, holds ${held}`)
  if (units(fill.price ?? '0', instrument.priceDecimals) !== mark)
    problem('liquidation-price', `${fill.fillId}: at ${fill.price}, mark ${mark}`)
  if (fill.feeTo !== insuranceAccount)
    problem('liquidation-fee-to', `${fill.fillId}: fee to ${fill.feeTo}, not the fund`)
  const value = mark * size * instrument.notionalScale
  const fundSide = side === 'sell' ? 'buy' : 'sell'
  fillFigures(model, fill, problem, {
    taker: accountId,
    maker: insuranceAccount,
    takerFee: feeOf(value, liquidationFeeRate),
    makerFee: 0n,
    takerRealized: move(model, instrument.symbol, accountId, fill.takerSide ?? side, size, value),
    makerRealized: move(model, instrument.symbol, insuranceAccount, fundSide, size, value),
  })
}

function takeFill(
  model: TradingModel,
  instrument: Instrument,
  step: Step,
  fill: Decision,
  problem: ProblemOf,
): void {
  model.fillCount++
  const taker = model.orders.get(fill.takerOrderId ?? '')
  const maker = model.orders.get(fill.makerOrderId ?? '')
  if (step.input.kind === 'settle' || fill.takerOrderId !== step.input.orderId)
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
  fillFigures(model, fill, problem, {
    taker: taker.accountId,
    maker: maker.accountId,
    takerFee: feeOf(value, instrument.takerFeeRate),
    makerFee: feeOf(value, instrument.makerFeeRate),
    takerRealized: move(model, instrument.symbol, taker.accountId, taker.side, size, value),
    makerRealized: move(model, instrument.symbol, maker.accountId, maker.side, size, value),
  })
}

type FillFigures = {
  taker: string
  maker: string
  takerFee: bigint
  makerFee: bigint
  takerRealized: bigint
  makerRealized: bigint
}

/** The fill's stated fees and PnL must be the model's; the model's are booked. */
function fillFigures(
  model: TradingModel,
  fill: Decision,
  problem: ProblemOf,
  { taker, maker, ...expected }: FillFigures,
): void {
  for (const [field, amount] of Object.entries(expected) as [keyof typeof expected, bigint][]) {
    const stated = usd(fill[field] ?? '0')
    if (stated !== amount)
      problem('fill-figures', `${fill.fillId}: ${field} ${fill[field]}, model ${amount}e-6`)
  }
  add(model.fees, taker, expected.takerFee)
  add(model.fees, maker, expected.makerFee)
  add(model.realized, taker, expected.takerRealized)
  add(model.realized, maker, expected.makerRealized)
}

function move(
  model: TradingModel,
  symbol: string,
  accountId: string,
  side: 'buy' | 'sell',
  size: bigint,
  value: bigint,
): bigint {
  const book = positionsOf(model, symbol)
  let position = book.get(accountId)
  if (position === undefined) book.set(accountId, (position = { size: 0n, cost: 0n }))
  const direction = side === 'buy' ? 1n : -1n
  return applyFill(position, direction * size, direction * value)
}

function positionsOf(model: TradingModel, symbol: string): Map<string, Position> {
  let book = model.positions.get(symbol)
  if (book === undefined) model.positions.set(symbol, (book = new Map()))
  return book
}

const add = (map: Map<string, bigint>, key: string, amount: bigint) =>
  map.set(key, (map.get(key) ?? 0n) + amount)
