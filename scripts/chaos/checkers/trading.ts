// C5 (I5): positions net to zero per instrument, by each node's API reads and by its fills.
// C7 (I5): all legs or none: every fill names two accounts that exist, a taker order that is its
// step's and a maker order accepted before it; every order the matcher took has its record (the
// client order id taken) in its account's shard, on every node.
// C8: the acknowledged history replayed into the single-threaded reference model gives each node's
// balances and positions exactly, every fill's fees and PnL, and order states that only move
// forward (I7): no fill after a cancel, never more filled than ordered, answers never regress.
// C9 (I8): each liquidation at most once per account and settlement, the same on every node.
// Liquidations come with the settlement reconciler; until then C9 is not applicable.

import { usd, units, fillsOf, decimal, type NodeView } from '../final-state'
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
      const net = reads.reduce(
        (n, read) => n + units(read.positions?.[symbol] ?? '0', instrument.sizeDecimals),
        0n,
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
          if (account === undefined || !view.accounts.has(account))
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
        steps.filter((s) => s.input.kind === 'order').map((s) => s.input.orderId),
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

/** Liquidations found in the documents: map `liquidations`, or ledger entries of that kind. */
export function liquidationsOf(
  view: NodeView,
): { id: string; accountId: string; settlement: string }[] {
  const found: { id: string; accountId: string; settlement: string }[] = []
  for (const [key, value] of view.extra.get('liquidations') ?? []) {
    const v = value as Record<string, unknown>
    found.push({
      id: String(v.id ?? key),
      accountId: String(v.accountId ?? v.account ?? '?'),
      settlement: String(v.settlementId ?? v.settlement ?? v.epoch ?? '?'),
    })
  }
  for (const transfer of view.transfers.values()) {
    if (transfer.kind !== 'liquidation') continue
    const [, accountId = '?', settlement = '?'] = transfer.id.split('/')
    found.push({ id: transfer.id, accountId, settlement })
  }
  return found
}

export function checkLiquidations(input: CheckInput): CheckResult {
  const r = report('C9', 'liquidation at most once')
  const context = contextOf(input)
  const present = context.views.some(
    (view) =>
      view.extra.has('liquidations') ||
      view.extra.has('settlements') ||
      liquidationsOf(view).length > 0,
  )
  if (!present) {
    r.notApplicable('no settlement reconciler yet: no liquidations or settlements in the documents')
    return r.done()
  }
  let reference: string | undefined
  for (const view of context.views) {
    const liquidations = liquidationsOf(view)
    const seen = new Map<string, string>()
    for (const l of liquidations) {
      const key = `${l.accountId}@${l.settlement}`
      const earlier = seen.get(key)
      if (earlier !== undefined) r.error('twice', `${view.node} ${key}: ${earlier} and ${l.id}`)
      seen.set(key, l.id)
    }
    const ids = liquidations
      .map((l) => l.id)
      .sort()
      .join(',')
    if (reference === undefined) reference = ids
    else if (ids !== reference)
      r.error('differs', `${view.node} holds other liquidations than ${context.views[0]!.node}`)
    if (view === context.views[0]) r.figure('liquidations', liquidations.length)
  }
  return r.done()
}
