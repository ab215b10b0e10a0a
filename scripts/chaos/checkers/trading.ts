// C5 (I5): positions net to zero per instrument, by each node's fills, and by its API reads with
// the insurance fund's position (taken over from liquidations, by the model) beside them.
// C7 (I5): all legs or none: every fill names two accounts that exist, a taker order that is its
// step's and a maker order accepted before it; every order the matcher took has its record (the
// client order id taken) in its account's shard, on every node.
// C8: the acknowledged history replayed into the single-threaded reference model gives each node's
// balances and positions exactly, every fill's fees and PnL, and order states that only move
// forward (I7): no fill after a cancel, never more filled than ordered, answers never regress.
// C9 (I8): liquidation at most once, read from the market documents' settle steps: each epoch of
// an instrument settled once; an account liquidated at most once per epoch and instrument, never
// for a position it had not opened, never again before it traded again; and every node holding
// the same settle steps. Not applicable when no settle step exists (settlement off).

import {
  usd,
  units,
  fillsOf,
  decimal,
  isSettle,
  isSystemAccount,
  type NodeView,
  type Step,
} from '../final-state'
import type { Request } from '../history'
import { contextOf, effectOf, skippedNote, type CheckInput, type Context } from './context'
import { replayTrading, type TradingModel } from './model'
import { report, type CheckResult, type Report } from './report'

export function checkNetZero(input: CheckInput): CheckResult {
  const r = report('C5', 'positions net to zero')
  const context = contextOf(input)
  for (const view of context.views) {
    const model = replayTrading(view, context.instruments)
    for (const [symbol, book] of model.positions) {
      const net = [...book.values()].reduce((n, p) => n + p.size, 0n)
      if (net !== 0n) r.error('fills', `${view.node} ${symbol}: fills net to ${net} lots' units`)
    }
    const node = input.final.nodes.find((n) => n.node === view.node)
    const reads = Object.values(node?.accounts ?? {})
    if (reads.some((read) => read.positions === undefined)) {
      r.note(`${view.node}: some positions unread, API part skipped`)
      continue
    }
    for (const [symbol, instrument] of context.instruments) {
      const system = [...(model.positions.get(symbol) ?? [])]
        .filter(([account]) => isSystemAccount(account))
        .reduce((n, [, p]) => n + p.size, 0n)
      const net = reads.reduce(
        (n, read) => n + units(read.positions?.[symbol] ?? '0', instrument.sizeDecimals),
        system,
      )
      if (net !== 0n)
        r.error(
          'api',
          `${view.node} ${symbol}: positions read net to ${decimal(net, instrument.sizeDecimals)}`,
        )
    }
    if (view === context.views[0]) r.figure('fills', model.fillCount)
  }
  return r.done()
}

export function checkAllLegs(input: CheckInput): CheckResult {
  const r = report('C7', 'all legs or none')
  const context = contextOf(input)
  for (const view of context.complete) {
    const model = replayTrading(view, context.instruments)
    for (const problem of model.problems) {
      if (
        ['fill-taker', 'fill-unknown-order', 'fill-account', 'fill-sides', 'self-trade'].includes(
          problem.type,
        )
      )
        r.error(problem.type, problem.message)
    }
    let pending = 0
    for (const [symbol, steps] of view.steps) {
      for (const { fill } of fillsOf(steps)) {
        for (const account of [fill.taker, fill.maker])
          if (account === undefined || (!isSystemAccount(account) && !view.accounts.has(account)))
            r.error('fill-account-missing', `${view.node} ${fill.fillId}: no account ${account}`)
      }
      for (const step of steps) {
        if (step.input.kind !== 'order' || !step.decisions.some((d) => d.type === 'accepted'))
          continue
        if (view.unreadable.some((doc) => doc.startsWith('shard/'))) continue
        if (!view.orders.has(step.input.orderId))
          r.error(
            'order-record-missing',
            `${view.node} ${symbol}#${step.seq}: ${step.input.orderId} has no shard record`,
          )
      }
      const taken = new Set(
        steps.flatMap((s) => (s.input.kind === 'order' ? [s.input.orderId] : [])),
      )
      for (const record of view.orders.values())
        if (record.instrument === symbol && !taken.has(record.orderId)) pending++
    }
    if (view === context.complete[0]) r.figure('ordersNeverMatched', pending)
  }
  const skipped = skippedNote(context)
  if (skipped !== undefined) r.note(skipped)
  return r.done()
}

export function checkReferenceModel(input: CheckInput): CheckResult {
  const r = report('C8', 'history replayed into a reference model')
  const context = contextOf(input)
  for (const view of context.complete) {
    const model = replayTrading(view, context.instruments)
    for (const problem of model.problems) r.error(problem.type, problem.message)
    compareAccounts(r, context, view, model)
    // A recorded cancel is due once its order rests in the book: none may still rest after it.
    for (const [orderId, request] of view.cancelRequests) {
      const order = model.orders.get(orderId)
      if (order !== undefined && !order.cancelled && order.filled < order.size)
        r.error(
          'cancel-due-not-taken',
          `${view.node} ${request.instrument}: ${orderId} rests, cancel recorded at ${request.node}`,
        )
    }
  }
  for (const request of context.requests.values()) answersMoveForward(r, context, request)
  r.figure('requests', context.requests.size)
  const skipped = skippedNote(context)
  if (skipped !== undefined) r.note(skipped)
  return r.done()
}

/** Collateral and positions each node reads equal the model's from the acknowledged history. */
function compareAccounts(r: Report, context: Context, view: NodeView, model: TradingModel) {
  const collateral = new Map<string, bigint>()
  const add = (account: string, amount: bigint) =>
    collateral.set(account, (collateral.get(account) ?? 0n) + amount)
  for (const request of context.requests.values()) {
    const op = request.op
    if (op.f !== 'deposit' && op.f !== 'withdraw') continue
    // Acknowledged ones count; unknown ones as the node decided them (C2 checks they agree).
    const effect = effectOf(view, op)
    if (request.outcome === 'fail' || (request.outcome === 'info' && !effect)) continue
    add(op.accountId, op.f === 'deposit' ? usd(op.amount) : -usd(op.amount))
  }
  for (const [account, fees] of model.fees) add(account, -fees)
  for (const [account, realized] of model.realized) add(account, realized)
  for (const [account, funding] of model.funding) add(account, funding)
  const node = context.input.final.nodes.find((n) => n.node === view.node)
  for (const [accountId, read] of Object.entries(node?.accounts ?? {})) {
    if (read.collateral !== undefined) {
      const expected = collateral.get(accountId) ?? 0n
      if (usd(read.collateral) !== expected)
        r.error(
          'collateral',
          `${view.node} ${accountId}: reads ${read.collateral}, model ${decimal(expected, 6)}`,
        )
    }
    if (read.positions === undefined) continue
    for (const [symbol, instrument] of context.instruments) {
      const expected = model.positions.get(symbol)?.get(accountId)?.size ?? 0n
      const readSize = units(read.positions[symbol] ?? '0', instrument.sizeDecimals)
      if (readSize !== expected)
        r.error(
          'position',
          `${view.node} ${accountId} ${symbol}: reads ${decimal(readSize, instrument.sizeDecimals)}, ` +
            `model ${decimal(expected, instrument.sizeDecimals)}`,
        )
    }
  }
}

const terminal = new Set(['filled', 'cancelled', 'rejected'])

/** I7 from the client's side: an order's answers never go backwards, and the end agrees. */
function answersMoveForward(r: Report, context: Context, request: Request) {
  const op = request.op
  if (op.f !== 'order' && op.f !== 'cancel') return
  const instrument = context.instruments.get(op.instrument)
  if (instrument === undefined) return
  // Answers that state the order (a 202 cancel_requested states only the request).
  const answers = request.attempts
    .filter(
      (a) =>
        a.outcome === 'ok' &&
        a.reply?.status !== undefined &&
        a.reply.status !== 'cancel_requested' &&
        /^[0-9]/.test(a.reply.filledSize ?? ''),
    )
    .sort((x, y) => x.completedAt - y.completedAt)
  let lastFilled = -1n
  let lastStatus: string | undefined
  for (const answer of answers) {
    const filled = units(answer.reply!.filledSize ?? '0', instrument.sizeDecimals)
    if (filled < lastFilled)
      r.error('answer-regressed', `${request.key}: filled ${filled} after ${lastFilled}`)
    if (lastStatus !== undefined && terminal.has(lastStatus) && answer.reply!.status !== lastStatus)
      r.error('answer-regressed', `${request.key}: ${answer.reply!.status} after ${lastStatus}`)
    lastFilled = filled
    lastStatus = answer.reply!.status
  }
  if (lastStatus === undefined) return
  for (const view of context.views) {
    const model = replayTrading(view, context.instruments)
    const order = model.orders.get(op.orderId)
    if (order === undefined) continue // C2 says whether it had to be there
    if (order.filled < lastFilled)
      r.error(
        'answer-ahead',
        `${view.node} ${request.key}: answered filled ${lastFilled}, holds ${order.filled}`,
      )
    if (lastStatus === 'cancelled' && !order.cancelled)
      r.error('answer-ahead', `${view.node} ${request.key}: answered cancelled, not cancelled`)
    if (lastStatus === 'filled' && order.filled !== order.size)
      r.error(
        'answer-ahead',
        `${view.node} ${request.key}: answered filled, holds ${order.filled}/${order.size}`,
      )
  }
}

export function checkLiquidations(input: CheckInput): CheckResult {
  const r = report('C9', 'liquidation at most once')
  const context = contextOf(input)
  /** Instrument → epoch → its settle steps as the first node holding them has them. */
  const reference = new Map<string, Map<number, { node: string; text: string }>>()
  let settlements = 0
  let liquidations = 0
  for (const view of context.views) {
    for (const [symbol, steps] of view.steps) {
      if (view.unreadable.includes(`market/${symbol}`)) continue
      const found = liquidationsIn(r, `${view.node} ${symbol}`, steps)
      let epochs = reference.get(symbol)
      if (epochs === undefined) reference.set(symbol, (epochs = new Map()))
      const mine = new Map<number, string>()
      for (const step of steps.filter(isSettle))
        mine.set(step.input.epoch, `${mine.get(step.input.epoch) ?? ''}${JSON.stringify(step)}`)
      for (const [epoch, text] of mine) {
        const held = epochs.get(epoch)
        if (held === undefined) epochs.set(epoch, { node: view.node, text })
        else if (held.text !== text)
          r.error('differs', `${symbol} epoch ${epoch}: ${view.node} and ${held.node}`)
      }
      if (view === context.views[0]) {
        settlements += found.settlements
        liquidations += found.liquidations
      }
    }
  }
  // An epoch one node settled and another lacks: they hold different settle steps.
  for (const view of context.views) {
    for (const [symbol, epochs] of reference) {
      if (view.unreadable.includes(`market/${symbol}`)) continue
      const held = new Set(
        (view.steps.get(symbol) ?? []).filter(isSettle).map((s) => s.input.epoch),
      )
      for (const [epoch, { node }] of epochs)
        if (!held.has(epoch))
          r.error('differs', `${symbol} epoch ${epoch}: settled on ${node}, not on ${view.node}`)
    }
  }
  r.figure('settlements', settlements)
  r.figure('liquidations', liquidations)
  if ([...reference.values()].every((epochs) => epochs.size === 0))
    r.notApplicable('no settle step in the documents: settlement was off')
  return r.done()
}

/**
 * One instrument's liquidations on one node, in sequence order: each epoch settled once, each
 * account liquidated once per epoch, only when listed, and not again until it traded again.
 */
function liquidationsIn(r: Report, where: string, steps: readonly Step[]) {
  const settledAt = new Map<number, number>()
  /** Account → the epoch it was last liquidated in, until it trades again. */
  const flat = new Map<string, number>()
  let liquidations = 0
  for (const step of steps) {
    if (!isSettle(step)) {
      for (const { fill } of fillsOf([step]))
        for (const account of [fill.taker, fill.maker]) flat.delete(account ?? '')
      continue
    }
    const { epoch, liquidate } = step.input
    const earlier = settledAt.get(epoch)
    if (earlier !== undefined)
      r.error('epoch-twice', `${where}: epoch ${epoch} settled at #${earlier} and #${step.seq}`)
    settledAt.set(epoch, step.seq)
    const here = new Set<string>()
    for (const { fill } of fillsOf([step])) {
      const account = fill.taker ?? '?'
      liquidations++
      if (here.has(account))
        r.error('twice-in-epoch', `${where}: ${account} liquidated twice in epoch ${epoch}`)
      if (!liquidate.includes(account))
        r.error('not-listed', `${where}#${step.seq}: ${account} liquidated, not listed`)
      const before = flat.get(account)
      if (before !== undefined)
        r.error(
          'liquidated-again',
          `${where}: ${account} liquidated in epoch ${before} and again in ${epoch}, no trade between`,
        )
      here.add(account)
      flat.set(account, epoch)
    }
  }
  return { liquidations, settlements: settledAt.size }
}
