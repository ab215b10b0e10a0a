// The Yjs schema of one instrument's market document. The instrument's matcher writes one entry
// per step it takes (an order or a cancel it received, with every decision that step made) under
// the step's sequence number, in one transaction: both legs of a fill, their fees and realized PnL
// are one immutable entry, so no replica can ever hold half a fill (I5, C7).

import * as Y from 'yjs'
import type * as instruments from '../domain/instrument'
import type * as fencing from '../domain/fencing'
import * as ledger from '../domain/ledger'
import * as matcher from '../domain/matcher'
import * as money from '../domain/money'

export type OrderType = 'limit' | 'market'

/** An order as received by the matcher (wire form: decimal strings). */
export type OrderInput = {
  kind: 'order'
  orderId: string
  clientOrderId: string
  accountId: string
  side: matcher.Side
  type: OrderType
  price: string | null
  size: string
  timeInForce: matcher.TimeInForce
  reduceOnly: boolean
  receivedAt: number
}

export type CancelInput = { kind: 'cancel'; orderId: string; accountId: string; receivedAt: number }

/**
 * One epoch's settlement of the market, as its matcher takes it: the epoch's recorded mark, the
 * funding rate and the accounts to liquidate, all decided before (domain/reconciler.ts) so that
 * replaying the step reproduces it exactly. The step is the epoch's checkpoint of the market.
 */
export type SettleInput = {
  kind: 'settle'
  epoch: number
  /** The mark in price units, as an integer string. */
  mark: string
  /** Rate units (instruments.rateDecimals), signed, as an integer string. */
  fundingRate: string
  liquidate: string[]
  receivedAt: number
}

export type StepInput = OrderInput | CancelInput | SettleInput

export type WireDecision =
  | { type: 'accepted'; orderId: string }
  | { type: 'rejected'; orderId: string; reason: matcher.RejectReason }
  | { type: 'rested'; orderId: string; price: string; remaining: string }
  | { type: 'cancelled'; orderId: string; remaining: string; reason: matcher.CancelReason }
  | { type: 'cancel_rejected'; orderId: string; reason: 'not_open' }
  | WireFill
  | WireFunding

export type WireFunding = { type: 'funding'; fundingId: string; accountId: string; amount: string }

export type WireFill = {
  type: 'fill'
  fillId: string
  takerOrderId: string
  makerOrderId: string
  taker: string
  maker: string
  takerSide: matcher.Side
  price: string
  size: string
  takerFee: string
  makerFee: string
  takerRealized: string
  makerRealized: string
  feeTo?: string
}

export type Step = {
  seq: number
  ts: number
  node: string
  input: StepInput
  decisions: WireDecision[]
  /** The matcher lease's term it was taken in (domain/fencing.ts); absent: term 0. */
  term?: number
  /** On the first step of a term only: the last step of the chain that term continues. */
  continues?: fencing.StepPoint
}

export const steps = (doc: Y.Doc): Y.Map<Step> => doc.getMap('steps')

export const termOf = (step: Step): number => step.term ?? 0

/** What the fenced fold needs of a step. */
export const headerOf = (step: Step): fencing.StepHeader => ({
  term: termOf(step),
  seq: step.seq,
  continues: step.continues ?? null,
})

/**
 * Where a step is kept: term 0 under its sequence number alone (the history before leases), a
 * later term's under sequence and term, so two terms' steps at one number never overwrite.
 */
export const stepKeyOf = (term: number, seq: number): string =>
  term === 0 ? stepKey(seq) : `${stepKey(seq)}.t${term}`

/**
 * A client's cancel, recorded on the node it reached (any node, whatever the network does) and
 * taken by the matcher once it sees it: on arrival at the home node, or as soon as the order it
 * names reaches the book. One per order: a second request for the same order adds nothing.
 */
export type CancelRequest = CancelInput & { node: string }

export const cancelRequests = (doc: Y.Doc): Y.Map<CancelRequest> => doc.getMap('cancelRequests')

/** An order's view as a checkpoint keeps it (amounts as integer strings of their units). */
export type StoredOrder = {
  input: OrderInput
  status: 'open' | 'partially_filled' | 'filled' | 'cancelled' | 'rejected'
  filled: string
  filledValue: string
  remaining: string
  reason: string | null
  updatedAt: number
}

export type StoredActivity = {
  fills: { fill: WireFill; ts: number; node: string }[]
  fundings: { funding: WireFunding; ts: number; node: string }[]
  realized: string
  fees: string
  funding: string
}

/** A settlement as its report reads it, kept after its step is folded. */
export type StoredSettlement = {
  at: fencing.StepPoint
  input: SettleInput
  fundingPayments: number
}

/** The market's state after one step, as every node's replay of the chain up to it gives it. */
export type MarketSnapshot = {
  /** Resting orders, bids then asks, each side best price first and in time priority. */
  resting: {
    orderId: string
    accountId: string
    side: matcher.Side
    price: string
    remaining: string
    reduceOnly: boolean
  }[]
  /** Every account's position: signed size and signed cost in units. */
  positions: Record<string, { size: string; cost: string }>
  /** Orders resting, or last changed at or after `retainFrom`. */
  orders: Record<string, StoredOrder>
  /** Every account's totals; its fills and fundings at or after `retainFrom` only. */
  accounts: Record<string, StoredActivity>
  /** Epochs settled at or after `retainFrom`. */
  settlements: Record<string, StoredSettlement>
}

/**
 * A checkpoint of the market (state/market-checkpoint.ts) at a settle step of the chain: the state
 * there, written by the matcher with the step. Keyed by the step's key.
 */
export type MarketCheckpoint = MarketSnapshot & {
  id: string
  epoch: number
  at: fencing.StepPoint
  /** The step's time less the retention window: older closed orders and fills are not kept. */
  retainFrom: number
  /** The nodes whose acknowledgements put it in force: the whole mesh. */
  members: string[]
  node: string
}

/** A node's word that its own replay of the chain up to the step gives the checkpoint. */
export type MarketCheckpointAck = { id: string; checkpoint: string; node: string }

export const marketCheckpoints = (doc: Y.Doc): Y.Map<MarketCheckpoint> =>
  doc.getMap('marketCheckpoints')
export const marketCheckpointAcks = (doc: Y.Doc): Y.Map<MarketCheckpointAck> =>
  doc.getMap('marketCheckpointAcks')
export const marketAckKey = (checkpoint: string, node: string): string => `${checkpoint}/${node}`

/** The step a key of `stepKeyOf` names. */
export function pointOfStepKey(key: string): fencing.StepPoint {
  const [seq, term] = key.split('.t')
  return { seq: Number(seq), term: term === undefined ? 0 : Number(term) }
}

/** Step keys sort in sequence order as strings. */
export const stepKey = (seq: number): string => String(seq).padStart(12, '0')

/** The domain form of an order input. */
export function intentOf(
  instrument: instruments.Instrument,
  input: OrderInput,
): matcher.OrderIntent {
  const parse = (text: string, decimals: number) => {
    const parsed = money.parse(text, {
      decimals,
      max: 10n ** 30n,
      allowZero: false,
      allowNegative: false,
    })
    if (!parsed.ok) throw new Error(`stored order ${input.orderId}: ${parsed.message}`)
    return parsed.value
  }
  return {
    orderId: input.orderId,
    accountId: input.accountId,
    side: input.side,
    price: input.price === null ? null : parse(input.price, instrument.priceDecimals),
    size: parse(input.size, instrument.sizeDecimals),
    timeInForce: input.timeInForce,
    reduceOnly: input.reduceOnly,
  }
}

/** The wire form of the matcher's decisions for step `seq`; fills get ids derived from it. */
export function wireDecisions(
  instrument: instruments.Instrument,
  point: fencing.StepPoint,
  decisions: matcher.Decision[],
): WireDecision[] {
  const key = stepKeyOf(point.term, point.seq)
  const price = (units: money.Units) => money.format(units, instrument.priceDecimals)
  const size = (units: money.Units) => money.format(units, instrument.sizeDecimals)
  let fills = 0
  return decisions.map((d): WireDecision => {
    switch (d.type) {
      case 'accepted':
      case 'rejected':
      case 'cancel_rejected':
        return d
      case 'rested':
        return {
          type: d.type,
          orderId: d.orderId,
          price: price(d.price),
          remaining: size(d.remaining),
        }
      case 'cancelled':
        return { type: d.type, orderId: d.orderId, remaining: size(d.remaining), reason: d.reason }
      case 'fill':
        return {
          ...d,
          fillId: `${instrument.symbol}/${key}/${String(fills++).padStart(4, '0')}`,
          price: price(d.price),
          size: size(d.size),
          takerFee: money.formatUsd(d.takerFee),
          makerFee: money.formatUsd(d.makerFee),
          takerRealized: money.formatUsd(d.takerRealized),
          makerRealized: money.formatUsd(d.makerRealized),
        }
      case 'funding':
        return {
          type: d.type,
          fundingId: `${instrument.symbol}/${key}/funding/${d.accountId}`,
          accountId: d.accountId,
          amount: money.formatUsd(d.amount),
        }
    }
  })
}

/** The clearing account of an instrument: the counterparty of every realized PnL. */
export const clearingAccount = (symbol: string): string => `${ledger.clearingPrefix}${symbol}`

/**
 * The ledger transfers a fill implies: each side's fee to the fee account, each side's realized
 * PnL against the instrument's clearing account. Derived, never stored, so they cannot disagree
 * with the fill.
 */
export function fillTransfers(
  symbol: string,
  fill: WireFill,
  ts: number,
  node: string,
): ledger.Transfer[] {
  const transfers: ledger.Transfer[] = []
  const add = (id: string, kind: ledger.TransferKind, from: string, to: string, amount: string) => {
    if (amount === '0') return
    const negative = amount.startsWith('-')
    transfers.push({
      id: `${fill.fillId}/${id}`,
      kind,
      from: negative ? to : from,
      to: negative ? from : to,
      amount: negative ? amount.slice(1) : amount,
      ts,
      node,
      requestDigest: fill.fillId,
    })
  }
  add('taker-fee', 'fee', fill.taker, fill.feeTo ?? ledger.feesAccount, fill.takerFee)
  add('maker-fee', 'fee', fill.maker, ledger.feesAccount, fill.makerFee)
  add('taker-pnl', 'realized_pnl', clearingAccount(symbol), fill.taker, fill.takerRealized)
  add('maker-pnl', 'realized_pnl', clearingAccount(symbol), fill.maker, fill.makerRealized)
  return transfers
}

/** The ledger transfer a funding payment implies, against the instrument's clearing account. */
export function fundingTransfer(
  symbol: string,
  funding: WireFunding,
  ts: number,
  node: string,
): ledger.Transfer {
  const pays = funding.amount.startsWith('-')
  return {
    id: funding.fundingId,
    kind: 'funding',
    from: pays ? funding.accountId : clearingAccount(symbol),
    to: pays ? clearingAccount(symbol) : funding.accountId,
    amount: pays ? funding.amount.slice(1) : funding.amount,
    ts,
    node,
    requestDigest: funding.fundingId,
  }
}
