// The entries the reconciler's audits fold (domain/audits.ts), read out of the documents as they
// are stored: a market's steps leniently (a peer chose their content: a field that does not parse
// is null, for the audit to report), along the matcher's chain up to the first gap, so only a causally
// complete prefix of the matcher's history is judged (design.md §2.4).

import type * as Y from 'yjs'
import * as audits from '../domain/audits'
import type * as instruments from '../domain/instrument'
import * as fencing from '../domain/fencing'
import * as money from '../domain/money'
import * as market from './market-doc'

const text = (value: unknown): string | null =>
  typeof value === 'string' && value.length > 0 ? value : null

const side = (value: unknown): 'buy' | 'sell' | null =>
  value === 'buy' || value === 'sell' ? value : null

const units = (value: unknown, decimals: number): money.Units | null => {
  const parsed = money.parse(value, {
    decimals,
    max: 10n ** 30n,
    allowZero: true,
    allowNegative: true,
  })
  return parsed.ok ? parsed.value : null
}

/**
 * The market's steps after `base` (the checkpoint in force; null: from the first) along the
 * fenced chain across matcher terms (domain/fencing.ts) up to the first one not held, as the
 * audits read them: a fenced step took effect nowhere, so it is not judged as if it had.
 */
export function auditedSteps(
  instrument: instruments.Instrument,
  doc: Y.Doc,
  base: market.MarketCheckpoint | null = null,
): audits.AuditedStep[] {
  const stored = market.steps(doc)
  const chain = fencing.chainOf(
    [...stored.values()].map(market.headerOf),
    base?.at ?? fencing.origin,
  )
  return chain.applied.map((header) =>
    auditedStep(instrument, stored.get(market.stepKeyOf(header.term, header.seq))!),
  )
}

const foldState: Record<market.StoredOrder['status'], audits.OrderFold['state']> = {
  open: 'working',
  partially_filled: 'working',
  filled: 'filled',
  cancelled: 'cancelled',
  rejected: 'rejected',
}

/**
 * The figures a market checkpoint in force starts an audit from: every node replayed the chain
 * to the same state before acknowledging it. The orders it no longer keeps (closed before its
 * retention window) are not judged again.
 */
export function marketFiguresOf(
  instrument: instruments.Instrument,
  base: market.MarketCheckpoint,
): audits.MarketFigures {
  const figures = audits.emptyMarketFigures()
  for (const [orderId, order] of Object.entries(base.orders)) {
    figures.orders.set(orderId, {
      orderId,
      accountId: order.input.accountId,
      side: order.input.side,
      size: market.intentOf(instrument, order.input).size,
      filled: BigInt(order.filled),
      state: foldState[order.status],
    })
  }
  for (const [accountId, stored] of Object.entries(base.positions)) {
    const position = { size: BigInt(stored.size), cost: BigInt(stored.cost) }
    figures.positions.set(accountId, position)
    figures.netSize += position.size
    figures.openCost += position.cost
  }
  for (const activity of Object.values(base.accounts)) figures.realized += BigInt(activity.realized)
  return figures
}

function auditedStep(instrument: instruments.Instrument, step: market.Step): audits.AuditedStep {
  // A peer chose this entry: read nothing of it that is not there.
  const input = (step.input ?? { kind: 'cancel' }) as market.StepInput
  const size = input.kind === 'order' ? units(input.size, instrument.sizeDecimals) : null
  const orderSide = input.kind === 'order' ? side(input.side) : null
  const order =
    input.kind === 'order' && size !== null && orderSide !== null
      ? { orderId: input.orderId, accountId: input.accountId, side: orderSide, size }
      : null
  return {
    seq: step.seq,
    kind: input.kind === 'order' || input.kind === 'settle' ? input.kind : 'cancel',
    order,
    decisions: (Array.isArray(step.decisions) ? step.decisions : []).map((d) =>
      auditedDecision(instrument, d),
    ),
  }
}

function auditedDecision(
  instrument: instruments.Instrument,
  decision: market.WireDecision,
): audits.AuditedDecision {
  if (decision.type === 'funding') return { type: 'funding' }
  if (decision.type !== 'fill') return { type: decision.type, orderId: decision.orderId }
  const usd = (value: unknown) => units(value, money.usdTransfer.decimals)
  return {
    type: 'fill',
    fillId: String(decision.fillId),
    takerOrderId: text(decision.takerOrderId),
    makerOrderId: text(decision.makerOrderId),
    taker: text(decision.taker),
    maker: text(decision.maker),
    takerSide: side(decision.takerSide),
    price: units(decision.price, instrument.priceDecimals),
    size: units(decision.size, instrument.sizeDecimals),
    takerRealized: usd(decision.takerRealized),
    makerRealized: usd(decision.makerRealized),
  }
}
