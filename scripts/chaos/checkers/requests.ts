// C2 (I2): every acknowledged write is present on every node; a request refused everywhere it was
// tried took effect nowhere; an unknown one is present on all nodes or on none.
// C6 (I3): every request id took effect once: one ledger entry with the payload that was sent,
// one acceptance per order, one cancellation per order, no entry nobody asked for, no two
// acknowledgements of one request id that disagree.

import { usd, type NodeView } from '../final-state'
import type { Op, Request } from '../history'
import {
  acceptancesOf,
  cancellationsOf,
  closedInBase,
  contextOf,
  effectOf,
  stepsOf,
  type CheckInput,
  type Context,
} from './context'
import { replayTrading } from './model'
import { report, type CheckResult } from './report'

/** Order states a matcher decided: an acknowledged order in one of them was accepted. */
const decided = new Set(['open', 'partially_filled', 'filled', 'cancelled'])

/** What an acknowledgement promises is present on every node. */
function promised(request: Request, view: NodeView): boolean | undefined {
  const op = request.op
  if (op.f === 'order') {
    const statuses = request.attempts.filter((a) => a.outcome === 'ok').map((a) => a.reply?.status)
    if (statuses.some((s) => s !== undefined && decided.has(s))) {
      const effect = effectOf(view, op)
      return effect === undefined ? undefined : effect !== false
    }
    // Taken but not yet decided (a forwarded order): at least its record holds the order id.
    return view.orders.has(op.orderId)
  }
  if (op.f === 'cancel') {
    if (view.unreadable.includes(`market/${op.instrument}`)) return undefined
    const taken = cancellationsOf(stepsOf(view, op.instrument), op.orderId).length > 0
    // 202 cancel_requested: recorded where it arrived, taken once the matcher sees it (and
    // deleted once a checkpoint in force closed the order).
    return (
      taken || view.cancelRequests.has(op.orderId) || closedInBase(view, op.instrument, op.orderId)
    )
  }
  const effect = effectOf(view, op)
  return effect === undefined ? undefined : effect !== false
}

/** Whether the order still rests in the book after every step (accepted, not done, not cancelled). */
export function restingAtEnd(context: Context, view: NodeView, orderId: string): boolean {
  const order = replayTrading(view, context.instruments).orders.get(orderId)
  return order !== undefined && !order.cancelled && order.filled < order.size
}

export function checkLostWrites(input: CheckInput): CheckResult {
  const r = report('C2', 'no lost acknowledged write')
  const context = contextOf(input)
  const counts = { ok: 0, fail: 0, info: 0, infoPresent: 0, infoAbsent: 0 }
  for (const request of context.requests.values()) {
    counts[request.outcome]++
    const label = `${request.key} (${request.attempts.map((a) => `${a.node}:${a.status ?? a.outcome}`).join(' ')})`
    const present = context.views.map((view) => ({
      node: view.node,
      effect: effectOf(view, request.op),
    }))
    if (request.outcome === 'ok') {
      for (const view of context.views) {
        if (promised(request, view) === false)
          r.error(`lost-${request.op.f}`, `${label} acknowledged, missing on ${view.node}`)
        else if (request.op.f === 'cancel' && restingAtEnd(context, view, request.op.orderId))
          r.error(
            'cancel-never-taken',
            `${label} acknowledged, order still resting on ${view.node}`,
          )
      }
    } else if (request.outcome === 'fail') {
      for (const { node, effect } of present) {
        if (effect !== undefined && effect !== false)
          r.error(`refused-but-present`, `${label} refused everywhere, present on ${node}`)
      }
    } else {
      const known = present.filter((p) => p.effect !== undefined)
      const holders = known.filter((p) => p.effect !== false).map((p) => p.node)
      if (holders.length > 0 && holders.length < known.length)
        r.error('unknown-partial', `${label} present only on ${holders.join(',')}`)
      if (holders.length > 0) counts.infoPresent++
      else counts.infoAbsent++
    }
  }
  for (const [name, value] of Object.entries(counts)) r.figure(name, value)
  return r.done()
}

const amountOf = (op: Op) => (op.f === 'deposit' || op.f === 'withdraw' ? op.amount : undefined)

export function checkExactlyOnce(input: CheckInput): CheckResult {
  const r = report('C6', 'each request id took effect once')
  const context = contextOf(input)
  const byTransfer = new Map<string, Request>()
  for (const request of context.requests.values()) {
    const op = request.op
    if (op.f === 'deposit') byTransfer.set(`deposit/${op.accountId}/${op.requestId}`, request)
    if (op.f === 'withdraw') byTransfer.set(`withdrawal/${op.accountId}/${op.requestId}`, request)
    const amounts = new Set(
      request.attempts
        .filter((a) => a.reply?.amount !== undefined)
        .map((a) => usd(a.reply!.amount!)),
    )
    const sent = amountOf(op)
    if (sent !== undefined && [...amounts].some((amount) => amount !== usd(sent)))
      r.error(
        'reply-diverges',
        `${request.key}: answered amounts ${[...amounts].join(',')}e-6, sent ${sent}`,
      )
    const orderIds = new Set(
      request.attempts.map((a) => a.reply?.orderId).filter((id) => id !== undefined),
    )
    if (orderIds.size > 1)
      r.error('reply-diverges', `${request.key}: answered order ids ${[...orderIds]}`)
  }
  for (const view of context.views) {
    for (const [key, transfer] of [...view.transfers, ...view.folded]) {
      if (transfer.id !== key)
        r.error('key-mismatch', `${view.node}: entry ${key} names ${transfer.id}`)
      if (transfer.kind !== 'deposit' && transfer.kind !== 'withdrawal') continue
      const request = byTransfer.get(key)
      if (request === undefined) r.error('unrequested', `${view.node}: ${key} was never requested`)
      else if (usd(transfer.amount) !== usd(amountOf(request.op) ?? '0'))
        r.error(
          'payload-diverges',
          `${view.node}: ${key} holds ${transfer.amount}, sent ${amountOf(request.op)}`,
        )
    }
    for (const [symbol, steps] of view.steps) {
      const accepted = new Map<string, number>()
      const cancelled = new Map<string, number>()
      const fillIds = new Set<string>()
      for (const step of steps) {
        for (const d of step.decisions) {
          if (d.type === 'accepted') accepted.set(d.orderId!, (accepted.get(d.orderId!) ?? 0) + 1)
          if (d.type === 'cancelled' && d.reason !== 'reduce_only_capped')
            cancelled.set(d.orderId!, (cancelled.get(d.orderId!) ?? 0) + 1)
          if (d.type === 'fill') {
            if (fillIds.has(d.fillId!)) r.error('fill-twice', `${view.node} ${symbol}: ${d.fillId}`)
            fillIds.add(d.fillId!)
          }
        }
      }
      for (const [orderId, n] of accepted)
        if (n > 1) r.error('order-twice', `${view.node} ${symbol}: ${orderId} accepted ${n} times`)
      for (const [orderId, n] of cancelled)
        if (n > 1)
          r.error('cancel-twice', `${view.node} ${symbol}: ${orderId} cancelled ${n} times`)
    }
    for (const request of context.requests.values()) {
      if (request.op.f !== 'order') continue
      const n = acceptancesOf(stepsOf(view, request.op.instrument), request.op.orderId).length
      if (n > 1) r.error('order-twice', `${view.node}: ${request.key} accepted ${n} times`)
    }
  }
  const retried = [...context.requests.values()].filter(
    (request) => new Set(request.attempts.map((a) => a.node)).size > 1,
  )
  r.figure('requests', context.requests.size)
  r.figure('retriedElsewhere', retried.length)
  r.figure('retriedElsewhereOk', retried.filter((q) => q.outcome === 'ok').length)
  return r.done()
}
