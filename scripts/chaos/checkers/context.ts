// What every checker reads: the history grouped into requests, one view per readable node, the
// instruments, and whether a request's effect is present on a node. Pure: built from the history
// and the final state alone, once per input.

import * as instruments from '../../../src/domain/instrument'
import { nodeView, type FinalState, type NodeView, type Step, type Transfer } from '../final-state'
import { requestsOf, type HistoryEvent, type Op, type Request } from '../history'

export type CheckInput = { history: readonly HistoryEvent[]; final: FinalState }

export type Context = {
  input: CheckInput
  requests: Map<string, Request>
  /** Nodes that answered; unreachable ones are C1's business. */
  views: NodeView[]
  /**
   * Nodes whose every document could be read. Checks that fold a node's accounts (balances,
   * legs) judge only these: a damaged or unreadable document is C1's business, not a phantom
   * overdraft.
   */
  complete: NodeView[]
  instruments: Map<string, instruments.Instrument>
}

const contexts = new WeakMap<CheckInput, Context>()

export function contextOf(input: CheckInput): Context {
  const cached = contexts.get(input)
  if (cached !== undefined) return cached
  const views = input.final.nodes.filter((node) => node.error === undefined).map(nodeView)
  const context: Context = {
    input,
    requests: requestsOf(input.history),
    views,
    complete: views.filter((view) => view.unreadable.length === 0),
    instruments: new Map(
      input.final.instruments.map((spec) => [spec.symbol, instruments.define(spec)]),
    ),
  }
  contexts.set(input, context)
  return context
}

/** Notes which nodes a check skipped for unreadable documents. */
export function skippedNote(context: Context): string | undefined {
  const skipped = context.views.filter((view) => view.unreadable.length > 0)
  if (skipped.length === 0) return undefined
  return `skipped ${skipped.map((v) => `${v.node} (${v.unreadable.join(', ')} unreadable)`).join('; ')}`
}

/** The ledger entry id a deposit or withdrawal request creates. */
export const transferIdOf = (op: Op): string | undefined =>
  op.f === 'deposit'
    ? `deposit/${op.accountId}/${op.requestId}`
    : op.f === 'withdraw'
      ? `withdrawal/${op.accountId}/${op.requestId}`
      : undefined

export const stepsOf = (view: NodeView, instrument: string): Step[] =>
  view.steps.get(instrument) ?? []

/** Steps in which the matcher accepted `orderId`. */
export const acceptancesOf = (steps: readonly Step[], orderId: string): Step[] =>
  steps.filter(
    (step) =>
      step.input.kind === 'order' &&
      step.input.orderId === orderId &&
      step.decisions.some((d) => d.type === 'accepted' && d.orderId === orderId),
  )

/** Cancellations of `orderId` (any reason), as [step, reason]. */
export const cancellationsOf = (steps: readonly Step[], orderId: string) =>
  steps.flatMap((step) =>
    step.decisions
      .filter((d) => d.type === 'cancelled' && d.orderId === orderId)
      .map((d) => ({ step, reason: d.reason })),
  )

/**
 * Whether the market checkpoint in force closed `orderId` (filled, cancelled, rejected): the
 * compaction it allows deleted any cancel request recorded for it (market-checkpoint.ts).
 */
export function closedInBase(view: NodeView, instrument: string, orderId: string): boolean {
  const status = view.bases.get(instrument)?.orders[orderId]?.status
  return status !== undefined && status !== 'open' && status !== 'partially_filled'
}

/**
 * Whether the request took effect on this node: its ledger entry exists, its order was accepted
 * by the matcher, its cancel was taken. Undefined when the document that would say is unreadable.
 */
export function effectOf(view: NodeView, op: Op): Transfer | Step | boolean | undefined {
  const transferId = transferIdOf(op)
  if (transferId !== undefined) {
    if (view.unreadable.some((doc) => doc.startsWith('shard/'))) return undefined
    return view.transfers.get(transferId) ?? view.folded.get(transferId) ?? false
  }
  if (op.f !== 'order' && op.f !== 'cancel') return undefined
  if (view.unreadable.includes(`market/${op.instrument}`)) return undefined
  const steps = stepsOf(view, op.instrument)
  if (op.f === 'order') return acceptancesOf(steps, op.orderId)[0] ?? false
  const cancel = cancellationsOf(steps, op.orderId).find((c) => c.reason === 'user')
  return cancel?.step ?? false
}

/** Requests of one kind. */
export const requestsOfKind = <F extends Op['f']>(context: Context, f: F) =>
  [...context.requests.values()].filter(
    (request): request is Request & { op: Extract<Op, { f: F }> } => request.op.f === f,
  )
