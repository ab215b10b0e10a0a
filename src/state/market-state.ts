// The in-memory state of a market, derived from its document: the book (by replaying every step
// of the fenced chain through the pure matcher, which must reproduce the stored decisions
// exactly), each order's status, and each account's fills, realized PnL and fees. Rebuilt on
// load, never stored. Steps of an older matcher term that a newer term did not continue are
// fenced (domain/fencing.ts): never applied, and an order only they took ends rejected, `fenced`.
// Once a market checkpoint is in force (market-checkpoint.ts) the state starts from it and the
// chain from the step after it; at each settle step that carries a checkpoint, the replay checks
// the checkpoint against its own snapshot there, and says so in `checks`.

import type * as Y from 'yjs'
import { liquidationFeeRate } from '../constants'
import { assert } from '../domain/assert'
import * as fencing from '../domain/fencing'
import * as instruments from '../domain/instrument'
import * as matcher from '../domain/matcher'
import * as money from '../domain/money'
import * as market from './market-doc'
import * as marketCheckpoint from './market-checkpoint'
import * as snapshots from './market-snapshot'

export type OrderStatus = market.StoredOrder['status']

export type OrderView = {
  input: market.OrderInput
  status: OrderStatus
  filled: money.Units
  /** Σ price × size of the fills, in USD units (average price = filledValue / filled). */
  filledValue: money.Units
  /** Size still working in the book. */
  remaining: money.Units
  reason: string | null
  updatedAt: number
}

export type AccountActivity = {
  fills: { fill: market.WireFill; ts: number; node: string }[]
  fundings: { funding: market.WireFunding; ts: number; node: string }[]
  realized: money.Units
  fees: money.Units
  /** Net funding: received minus paid. */
  funding: money.Units
}

/** What every node of the mesh must agree on to check one another's checkpoints. */
export type MarketOptions = {
  /** How long closed orders, fills and settlements are kept in a checkpoint after they happen. */
  retentionMs: number
  /** The nodes whose acknowledgements put a checkpoint in force. */
  members: readonly string[]
}

/** This replay's verdict on a checkpoint it passed: the parts that differ (none: it matches). */
export type CheckpointCheck = { checkpoint: string; epoch: number; differences: string[] }

export type MarketState = {
  instrument: instruments.Instrument
  options: MarketOptions
  book: matcher.Book
  orders: Map<string, OrderView>
  accounts: Map<string, AccountActivity>
  nextSeq: number
  /** Set when a stored step's decisions differ from what the matcher decides on replay. */
  divergence: string | null
  /** Epochs this market has settled, each once (those the base keeps, and since). */
  settledEpochs: Map<number, market.StoredSettlement>
  /** The chain's head term: the term the next step is taken in (or a higher one). */
  term: number
  /** The last step applied (term 0, seq 0 before any). */
  last: fencing.StepPoint
  /** The document's steps this state accounts for: applied, fenced and folded as last found. */
  fencedSteps: number
  foldedSteps: number
  /** Whether the chain is whole here (fencing.chainOf): a gap or a missing term start stops it. */
  complete: boolean
  /** The checkpoint in force this state starts from; null: the whole history. */
  base: market.MarketCheckpoint | null
  /** Checks of checkpoints replayed past since the replica last took them. */
  checks: CheckpointCheck[]
}

export const create = (
  instrument: instruments.Instrument,
  options: MarketOptions,
): MarketState => ({
  instrument,
  options,
  book: matcher.create(instrument),
  orders: new Map(),
  accounts: new Map(),
  nextSeq: 1,
  divergence: null,
  settledEpochs: new Map(),
  term: 0,
  last: { term: 0, seq: 0 },
  fencedSteps: 0,
  foldedSteps: 0,
  complete: true,
  base: null,
  checks: [],
})

/** Rebuilds the state from the checkpoint in force (if any) and the chain after it. */
export function replay(
  instrument: instruments.Instrument,
  doc: Y.Doc,
  options: MarketOptions,
): MarketState {
  const state = create(instrument, options)
  catchUp(state, doc)
  return state
}

/** A fresh state at `base` (the start of history when null). */
function startAt(state: MarketState, base: market.MarketCheckpoint | null): void {
  Object.assign(state, create(state.instrument, state.options))
  if (base !== null) snapshots.restore(state, base)
}

/**
 * Takes every step of the chain the document holds beyond the state. While the document holds
 * nothing but the chain (one term, or the fenced steps already found), that is the next step of
 * the head term, as with a single matcher; otherwise (a new term started, a late step of an old
 * one, a gap) the chain is found again, and the state is rebuilt along it if it no longer
 * extends what was applied. A checkpoint put in force since the last call restarts the state
 * from it first: what it folds is dropped from memory as it is from the document.
 */
export function catchUp(state: MarketState, doc: Y.Doc): void {
  const inForce = marketCheckpoint.inForce(doc, state.options.members)
  if (inForce !== undefined && inForce.at.seq > (state.base?.at.seq ?? 0)) startAt(state, inForce)
  const stored = market.steps(doc)
  const baseSeq = state.base?.at.seq ?? 0
  if (state.complete) {
    for (
      let step = stored.get(market.stepKeyOf(state.term, state.nextSeq));
      step !== undefined;
      step = stored.get(market.stepKeyOf(state.term, state.nextSeq))
    ) {
      apply(state, step, doc)
    }
    const accounted = state.nextSeq - 1 - baseSeq + state.fencedSteps + state.foldedSteps
    if (stored.size === accounted) return
  }
  const chain = fencing.chainOf(
    [...stored.values()].map(market.headerOf),
    state.base?.at ?? fencing.origin,
  )
  const taken = state.nextSeq - 1 - baseSeq
  const applied = chain.applied.slice(0, taken)
  const extends_ =
    applied.length === taken &&
    (applied.length === 0 || sameStep(applied[applied.length - 1]!, state.last))
  if (!extends_) startAt(state, state.base)
  // From what is applied now: all of it after a rebuild.
  for (const header of chain.applied.slice(state.nextSeq - 1 - baseSeq)) {
    apply(state, stored.get(market.stepKeyOf(header.term, header.seq))!, doc)
  }
  state.term = Math.max(state.term, chain.headTerm)
  state.complete = chain.complete
  state.fencedSteps = chain.fenced.length
  state.foldedSteps = chain.folded
  for (const header of chain.fenced) {
    fence(state, stored.get(market.stepKeyOf(header.term, header.seq))!)
  }
}

const sameStep = (a: fencing.StepPoint, b: fencing.StepPoint) =>
  a.term === b.term && a.seq === b.seq

/**
 * Replays one stored step of the chain; its decisions must be the ones stored. A settle step that
 * carries a checkpoint is checked against this replay's own checkpoint there.
 */
function apply(state: MarketState, step: market.Step, doc: Y.Doc): void {
  const decided = take(state, step.input, { ts: step.ts, node: step.node }, market.termOf(step))
  if (JSON.stringify(decided.decisions) !== JSON.stringify(step.decisions)) {
    state.divergence ??= `step ${step.seq}: replayed decisions differ from the stored ones`
  }
  if (step.input.kind !== 'settle') return
  const key = market.stepKeyOf(market.termOf(step), step.seq)
  const written = market.marketCheckpoints(doc).get(key)
  if (written === undefined) return
  const own = checkpointHere(state, step.input.epoch, step.ts, written.node)
  state.checks.push({
    checkpoint: key,
    epoch: step.input.epoch,
    differences:
      state.divergence !== null ? ['divergence'] : marketCheckpoint.differences(own, written),
  })
}

/**
 * The checkpoint of the market as it is now, just after a settle step taken at `ts`: what the
 * matcher writes with the step and every node's replay checks it against.
 */
export function checkpointHere(
  state: MarketState,
  epoch: number,
  ts: number,
  node: string,
): market.MarketCheckpoint {
  const settled = state.settledEpochs.get(epoch)
  assert(
    settled !== undefined && sameStep(settled.at, state.last),
    'a checkpoint is at a settle step',
  )
  const retainFrom = ts - state.options.retentionMs
  return {
    id: market.stepKeyOf(state.last.term, state.last.seq),
    epoch,
    at: state.last,
    retainFrom,
    members: [...state.options.members],
    node,
    ...snapshots.snapshotOf(state, retainFrom),
  }
}

/** A fenced step's order that no step of the chain took: not executed, and says why. */
function fence(state: MarketState, step: market.Step): void {
  if (step.input.kind !== 'order' || state.orders.has(step.input.orderId)) return
  state.orders.set(step.input.orderId, {
    input: step.input,
    status: 'rejected',
    filled: 0n,
    filledValue: 0n,
    remaining: 0n,
    reason: 'fenced',
    updatedAt: step.ts,
  })
}

/**
 * Runs the matcher on one input and records its decisions in the derived state: the step of
 * `term` at the next sequence number. The first step of a term names the step it continues.
 */
export function take(
  state: MarketState,
  input: market.StepInput,
  at: { ts: number; node: string },
  term: number,
): market.Step {
  const seq = state.nextSeq++
  const continues = term > state.last.term ? state.last : undefined
  state.term = Math.max(state.term, term)
  state.last = { term, seq }
  const decided =
    input.kind === 'order'
      ? matcher.submit(state.book, market.intentOf(state.instrument, input))
      : input.kind === 'cancel'
        ? [matcher.cancel(state.book, input.orderId)]
        : matcher.settle(state.book, settlementOf(input))
  const decisions = market.wireDecisions(state.instrument, { term, seq }, decided)
  if (input.kind === 'settle') {
    const fundingPayments = decisions.filter((d) => d.type === 'funding').length
    state.settledEpochs.set(input.epoch, { at: { term, seq }, input, fundingPayments })
  }
  const step: market.Step = {
    seq,
    ts: at.ts,
    node: at.node,
    input,
    decisions,
    ...(term > 0 && { term }),
    ...(continues !== undefined && { continues }),
  }
  if (input.kind === 'order') {
    state.orders.set(input.orderId, {
      input,
      status: 'open',
      filled: 0n,
      filledValue: 0n,
      remaining: 0n,
      reason: null,
      updatedAt: at.ts,
    })
  }
  for (const decision of decided) record(state, decision, at)
  for (const decision of decisions) {
    if (decision.type === 'fill') recordFill(state, decision, at)
    if (decision.type === 'funding') {
      const activity = activityOf(state, decision.accountId)
      activity.fundings.push({ funding: decision, ts: at.ts, node: at.node })
      activity.funding += usd(decision.amount, decision.fundingId)
    }
  }
  return step
}

function settlementOf(input: market.SettleInput): matcher.Settlement {
  return {
    epoch: input.epoch,
    mark: BigInt(input.mark),
    fundingRate: BigInt(input.fundingRate),
    liquidate: input.liquidate,
    liquidationFeeRate,
  }
}

function activityOf(state: MarketState, accountId: string): AccountActivity {
  let activity = state.accounts.get(accountId)
  if (activity === undefined) {
    activity = { fills: [], fundings: [], realized: 0n, fees: 0n, funding: 0n }
    state.accounts.set(accountId, activity)
  }
  return activity
}

/** A stored signed USD amount; one that does not parse means the document is broken. */
function usd(text: string, id: string): money.Units {
  const parsed = money.parse(text, { ...money.usdTransfer, allowZero: true, allowNegative: true })
  if (!parsed.ok) throw new Error(`${id}: ${parsed.message}`)
  return parsed.value
}

function record(state: MarketState, decision: matcher.Decision, at: { ts: number }): void {
  // 'accepted' opens the view (done by take); 'cancel_rejected' and funding touch no order.
  if (
    decision.type === 'accepted' ||
    decision.type === 'cancel_rejected' ||
    decision.type === 'funding'
  )
    return
  const touched =
    decision.type === 'fill' ? [decision.takerOrderId, decision.makerOrderId] : [decision.orderId]
  for (const orderId of touched) {
    const view = state.orders.get(orderId)
    if (view === undefined) continue
    view.updatedAt = at.ts
    if (decision.type === 'rejected') {
      view.status = 'rejected'
      view.reason = decision.reason
      continue
    }
    if (decision.type === 'cancelled') view.reason = decision.reason
    if (decision.type === 'fill') {
      view.filled += decision.size
      view.filledValue += instruments.notional(state.instrument, decision.price, decision.size)
    }
    const resting = state.book.orders.get(orderId)
    view.remaining = resting?.remaining ?? 0n
    if (resting !== undefined) view.status = view.filled > 0n ? 'partially_filled' : 'open'
    else if (view.filled === sizeOf(state, view)) view.status = 'filled'
    else view.status = 'cancelled'
  }
}

const sizeOf = (state: MarketState, view: OrderView) =>
  market.intentOf(state.instrument, view.input).size

function recordFill(
  state: MarketState,
  fill: market.WireFill,
  at: { ts: number; node: string },
): void {
  const sides = [
    { account: fill.taker, realized: fill.takerRealized, fee: fill.takerFee },
    { account: fill.maker, realized: fill.makerRealized, fee: fill.makerFee },
  ]
  for (const side of sides) {
    const activity = activityOf(state, side.account)
    activity.fills.push({ fill, ts: at.ts, node: at.node })
    activity.realized += usd(side.realized, fill.fillId)
    activity.fees += usd(side.fee, fill.fillId)
  }
}
