// The final state of a chaos run, as read from every node after heal and quiescence, and the views
// the checkers take of it. Everything here is plain data (JSON-safe, no bigint): it is written to
// final.json beside the history, so a run can be checked again from its results folder.
//
// Document contents are read as a y-websocket follower reads them (SyncStep2 of the whole state),
// so they are the replicas' own entries: transfers, escrow grants, order records, matcher steps
// (orders, cancels, and settlements with their liquidations and funding). A shard's history that
// an epoch checkpoint in force folded (src/state/checkpoint.ts) is its openings and the request
// ids it still recognises: an acknowledged write folded into it is not lost. A market's history
// that a market checkpoint in force folded (src/state/market-checkpoint.ts) is its base: the
// orders, fills, fundings and settlements it lists become folded records of the same form as the
// steps, so every checker reads one list whatever was compacted.

import { usdDecimals } from '../../src/constants'
import type { Grant } from '../../src/domain/escrow'
import { chainOf, type StepPoint } from '../../src/domain/fencing'
import type { InstrumentSpec } from '../../src/domain/instrument'
import * as folding from '../../src/domain/checkpoint'
import * as money from '../../src/domain/money'
import type { MarketCheckpoint, MarketCheckpointAck } from '../../src/state/market-doc'
import { ackKey, type Checkpoint, type CheckpointAck } from '../../src/state/shard-doc'

export type DocFinal = {
  stateVectorDigest: string | null
  contentDigest: string | null
  pending: boolean
  damaged: boolean
  damage?: unknown
  /** Every top-level map of the document: key → value. Absent when it could not be read. */
  content?: Record<string, Record<string, unknown>>
  contentError?: string
}

/** One account as the node's API answers it (GET /v1/account, GET /v1/positions). */
export type AccountRead = {
  collateral?: string
  /** Instrument → signed size, for every open position. */
  positions?: Record<string, string>
  error?: string
}

export type NodeFinal = {
  node: string
  /** Why the node could not be read at all. */
  error?: string
  /** Document name (`shard/0`, `market/BTC-PERP`) → what the node holds. */
  docs: Record<string, DocFinal>
  accounts: Record<string, AccountRead>
}

export type Convergence = {
  converged: boolean
  /** From the final heal to identical digests everywhere; null when it never happened. */
  ms: number | null
  timeoutMs: number
  /** What still differed at the deadline ('' once converged). */
  detail: string
}

export type FinalState = {
  nodes: NodeFinal[]
  instruments: InstrumentSpec[]
  /** Every account the workload created. */
  accounts: string[]
  convergence: Convergence
}

// --- views -----------------------------------------------------------------------------------

export type Transfer = {
  id: string
  kind: string
  from: string
  to: string
  amount: string
  ts: number
  node: string
  requestDigest?: string
}

export type OrderRecord = {
  orderId: string
  clientOrderId: string
  accountId: string
  instrument: string
  createdAt?: number
  node?: string
}

/** A matcher decision as stored (src/state/market-doc.ts WireDecision), every field optional. */
export type Decision = {
  type: string
  orderId?: string
  reason?: string
  remaining?: string
  fillId?: string
  takerOrderId?: string
  makerOrderId?: string
  taker?: string
  maker?: string
  takerSide?: 'buy' | 'sell'
  price?: string
  size?: string
  takerFee?: string
  makerFee?: string
  takerRealized?: string
  makerRealized?: string
  /** Where the taker's fee went when not to the fees account: a liquidation's to the fund. */
  feeTo?: string
  fundingId?: string
  /** Of a funding decision: signed, positive received, negative paid. */
  accountId?: string
  amount?: string
}

export type OrderStepInput = {
  kind: 'order' | 'cancel'
  orderId: string
  accountId: string
  side?: 'buy' | 'sell'
  size?: string
  price?: string | null
}

/** One epoch's settlement (src/state/market-doc.ts SettleInput). */
export type SettleStepInput = {
  kind: 'settle'
  epoch: number
  /** The mark in price units, an integer string. */
  mark: string
  /** Rate units, signed, an integer string. */
  fundingRate: string
  liquidate: string[]
}

export type StepInput = OrderStepInput | SettleStepInput

export type Step = {
  seq: number
  ts: number
  node: string
  input: StepInput
  decisions: Decision[]
  /** The matcher lease's term (src/domain/fencing.ts); absent: term 0. */
  term?: number
  continues?: StepPoint
  /**
   * Set on a record of the market checkpoint in force, whose step was compacted (see foldedSteps):
   * what the base states, which no checker replays as a step of the chain.
   */
  folded?: true
}

export type NodeView = {
  node: string
  /** Documents whose content could not be read: checks that need them skip this node. */
  unreadable: string[]
  transfers: Map<string, Transfer>
  /** Ledger accounts' balances and rights as of the shard checkpoints in force. */
  openings: Map<string, folding.Opening>
  /** Folded transfers those checkpoints still recognise (their request ids replay). */
  folded: Map<string, Transfer>
  /** Escrow rights one node gave another. */
  grants: Map<string, Grant>
  orders: Map<string, OrderRecord>
  accounts: Set<string>
  /**
   * Instrument → its matcher's steps: the records of the checkpoint in force (folded), then the
   * chain after it in sequence order.
   */
  steps: Map<string, Step[]>
  /** Instrument → the market checkpoint in force, the chain's base (none: the whole history). */
  bases: Map<string, MarketCheckpoint>
  /** `${instrument}/${checkpoint id}` → every market checkpoint the node holds, in force or not. */
  marketCheckpoints: Map<string, MarketCheckpoint>
  /** Order id → the cancel recorded for it where it arrived (taken when the matcher sees it). */
  cancelRequests: Map<string, { instrument: string; accountId: string; node?: string }>
}

/** Folds every document of one node into one view. */
export function nodeView(node: NodeFinal): NodeView {
  const view: NodeView = {
    node: node.node,
    unreadable: [],
    transfers: new Map(),
    openings: new Map(),
    folded: new Map(),
    grants: new Map(),
    orders: new Map(),
    accounts: new Set(),
    steps: new Map(),
    bases: new Map(),
    marketCheckpoints: new Map(),
    cancelRequests: new Map(),
  }
  for (const [name, doc] of Object.entries(node.docs)) {
    if (doc.content === undefined) {
      view.unreadable.push(name)
      continue
    }
    const maps = doc.content
    const checkpoint = inForce(maps)
    // Every shard's checkpoint has an opening of the system accounts (@external): they add up.
    for (const [account, stored] of Object.entries(checkpoint?.openings ?? {}))
      view.openings.set(account, addOpenings(view.openings.get(account), folding.load(stored)))
    for (const [key, value] of Object.entries(checkpoint?.recognized ?? {}))
      view.folded.set(key, value as Transfer)
    for (const [key, value] of Object.entries(maps.transfers ?? {}))
      view.transfers.set(key, value as Transfer)
    for (const [key, value] of Object.entries(maps.grants ?? {}))
      view.grants.set(key, value as Grant)
    for (const [key, value] of Object.entries(maps.orders ?? {}))
      view.orders.set(key, value as OrderRecord)
    for (const key of Object.keys(maps.accounts ?? {})) view.accounts.add(key)
    if (name.startsWith('market/')) {
      const instrument = name.slice('market/'.length)
      const base = marketInForce(maps)
      if (base !== undefined) view.bases.set(instrument, base)
      for (const [id, checkpoint] of Object.entries(maps.marketCheckpoints ?? {}))
        view.marketCheckpoints.set(`${instrument}/${id}`, checkpoint as MarketCheckpoint)
      const chain = chainSteps(Object.values(maps.steps ?? {}) as Step[], base?.at)
      view.steps.set(instrument, [...(base === undefined ? [] : foldedSteps(base)), ...chain])
      for (const [orderId, value] of Object.entries(maps.cancelRequests ?? {})) {
        const request = value as { accountId: string; node?: string }
        view.cancelRequests.set(orderId, { instrument, ...request })
      }
    }
  }
  return view
}

function addOpenings(held: folding.Opening | undefined, more: folding.Opening): folding.Opening {
  if (held === undefined) return more
  const rights = new Map(held.rights)
  for (const [node, units] of more.rights) rights.set(node, (rights.get(node) ?? 0n) + units)
  return { balance: held.balance + more.balance, rights }
}

/** The latest checkpoint of a shard document every member acknowledged, if any. */
function inForce(maps: Record<string, Record<string, unknown>>): Checkpoint | undefined {
  const acks = (maps.checkpointAcks ?? {}) as Record<string, CheckpointAck>
  return (Object.values(maps.checkpoints ?? {}) as Checkpoint[])
    .sort((x, y) => y.epoch - x.epoch)
    .find((c) => c.members.every((node) => acks[ackKey(c.epoch, node)]?.root === c.root))
}

/**
 * The latest market checkpoint every member it names acknowledged (the rule of
 * src/state/market-checkpoint.ts inForce, on the plain maps), if any.
 */
function marketInForce(
  maps: Record<string, Record<string, unknown>>,
): MarketCheckpoint | undefined {
  const acks = (maps.marketCheckpointAcks ?? {}) as Record<string, MarketCheckpointAck>
  return (Object.entries(maps.marketCheckpoints ?? {}) as [string, MarketCheckpoint][])
    .sort(([, x], [, y]) => y.at.seq - x.at.seq)
    .find(([key, c]) => c.members.every((node) => acks[`${key}/${node}`]?.checkpoint === key))?.[1]
}

/**
 * The steps a node's book is folded from, in order: the fenced chain across matcher terms, after
 * the base when a checkpoint is in force. A fenced step (an older term's, past where a newer term
 * continued) took effect nowhere, so the checkers judge only the chain, as every node's fold does.
 */
function chainSteps(steps: Step[], base: StepPoint | undefined): Step[] {
  const byPoint = new Map(steps.map((step) => [`${step.term ?? 0}/${step.seq}`, step]))
  const chain = chainOf(
    steps.map((step) => ({
      term: step.term ?? 0,
      seq: step.seq,
      continues: step.continues ?? null,
    })),
    base,
  )
  return chain.applied.map(({ term, seq }) => byPoint.get(`${term}/${seq}`)!)
}

/** The step a fill or funding id names: `${symbol}/${step key}/...` (market-doc.ts stepKeyOf). */
function pointOfId(id: string): StepPoint {
  const [seq, term] = id.split('/')[1]!.split('.t')
  return { seq: Number(seq), term: term === undefined ? 0 : Number(term) }
}

/**
 * The records of a market checkpoint, as steps the checkers read like any other: one per step
 * whose fills, fundings or settlement the base lists (at its point, in chain order, the step's
 * order accepted with its fills), then one per order it lists that no such step took (accepted,
 * where is not kept). An order the base says is cancelled carries its cancellation last. Only
 * what the retention window kept is listed: in a chaos run, shorter than it, that is everything.
 */
export function foldedSteps(base: MarketCheckpoint): Step[] {
  const fills = new Map<string, { fill: Decision; ts: number; node: string }>()
  const fundings = new Map<string, { funding: Decision; ts: number; node: string }>()
  for (const activity of Object.values(base.accounts)) {
    for (const entry of activity.fills) fills.set(entry.fill.fillId, entry)
    for (const entry of activity.fundings) fundings.set(entry.funding.fundingId, entry)
  }
  const steps = new Map<string, Step>()
  const stepAt = (point: StepPoint, ts: number, node: string, input: StepInput): Step => {
    const key = `${point.term}/${point.seq}`
    let step = steps.get(key)
    if (step === undefined) {
      step = { seq: point.seq, ts, node, input, decisions: [], folded: true }
      if (point.term > 0) step.term = point.term
      steps.set(key, step)
    }
    return step
  }
  for (const settlement of Object.values(base.settlements))
    stepAt(settlement.at, settlement.input.receivedAt, base.node, settlement.input)
  const orderInput = (orderId: string, accountId: string): OrderStepInput => {
    const input = base.orders[orderId]?.input
    return input === undefined
      ? { kind: 'order', orderId, accountId }
      : { ...input, kind: 'order', orderId }
  }
  const byId = ([x]: [string, unknown], [y]: [string, unknown]) => (x < y ? -1 : 1)
  for (const [id, { fill, ts, node }] of [...fills].sort(byId)) {
    const step = stepAt(pointOfId(id), ts, node, orderInput(fill.takerOrderId!, fill.taker!))
    if (step.decisions.length === 0 && step.input.kind === 'order')
      step.decisions.push({ type: 'accepted', orderId: step.input.orderId })
    step.decisions.push(fill)
  }
  for (const [id, { funding }] of [...fundings].sort(byId)) {
    const point = pointOfId(id)
    const step = steps.get(`${point.term}/${point.seq}`)
    // Funding is paid by settle steps only, which the base lists as long as their funding.
    if (step?.input.kind !== 'settle')
      throw new Error(`market checkpoint ${base.id}: funding ${id} without its settlement`)
    step.decisions.push(funding)
  }
  const ordered = [...steps.values()].sort((x, y) => (x.term ?? 0) - (y.term ?? 0) || x.seq - y.seq)
  const taken = new Map(
    ordered.flatMap((step) => (step.input.kind === 'order' ? [[step.input.orderId, step]] : [])),
  )
  for (const [orderId, order] of Object.entries(base.orders).sort(byId)) {
    if (order.status === 'rejected') continue
    let step = taken.get(orderId)
    if (step === undefined) {
      step = {
        seq: base.at.seq,
        ts: order.input.receivedAt,
        node: base.node,
        input: orderInput(orderId, order.input.accountId),
        decisions: [{ type: 'accepted', orderId }],
        folded: true,
      }
      ordered.push(step)
    }
    if (order.status === 'cancelled')
      step.decisions.push({ type: 'cancelled', orderId, reason: order.reason ?? undefined })
  }
  return ordered
}

export const fillsOf = (steps: readonly Step[]) =>
  steps.flatMap((step) =>
    step.decisions.filter((d) => d.type === 'fill').map((fill) => ({ step, fill })),
  )

export const isSettle = (step: Step): step is Step & { input: SettleStepInput } =>
  step.input.kind === 'settle'

/** Prefix of each instrument's clearing account (the counterparty of realized PnL). */
export const clearingPrefix = '@clearing/'
export const externalAccount = '@external'
export const feesAccount = '@fees'
export const insuranceAccount = '@insurance'
export const isSystemAccount = (account: string) => account.startsWith('@')

export type Movement = { from: string; to: string; amount: bigint }

/**
 * The movements a fill or a funding decision implies on the ledger: each side's fee to the fee
 * account (a liquidation's to the insurance fund), each side's realized PnL and each funding
 * payment against the instrument's clearing account (negative amounts flow the other way).
 */
export function decisionMovements(symbol: string, decision: Decision): Movement[] {
  const movements: Movement[] = []
  const add = (from: string, to: string, text: string | undefined) => {
    const amount = usd(text ?? '0')
    if (amount > 0n) movements.push({ from, to, amount })
    if (amount < 0n) movements.push({ from: to, to: from, amount: -amount })
  }
  const clearing = `${clearingPrefix}${symbol}`
  if (decision.type === 'funding') add(clearing, decision.accountId!, decision.amount)
  if (decision.type !== 'fill') return movements
  add(decision.taker!, decision.feeTo ?? feesAccount, decision.takerFee)
  add(decision.maker!, feesAccount, decision.makerFee)
  add(clearing, decision.taker!, decision.takerRealized)
  add(clearing, decision.maker!, decision.makerRealized)
  return movements
}

/** Every ledger account's balance on one node: transfers plus what the matcher's steps imply. */
export function balancesOf(view: NodeView): Map<string, bigint> {
  const balances = new Map<string, bigint>()
  const move = (from: string, to: string, amount: bigint) => {
    balances.set(from, (balances.get(from) ?? 0n) - amount)
    balances.set(to, (balances.get(to) ?? 0n) + amount)
  }
  for (const [account, opening] of view.openings) balances.set(account, opening.balance)
  for (const transfer of view.transfers.values())
    move(transfer.from, transfer.to, usd(transfer.amount))
  for (const [symbol, steps] of view.steps) {
    for (const step of steps)
      for (const decision of step.decisions)
        for (const m of decisionMovements(symbol, decision)) move(m.from, m.to, m.amount)
  }
  return balances
}

/** Exact fixed-point units of a canonical decimal string ("-12.5" at 6 decimals: -12500000n). */
export function units(text: string, decimals: number): bigint {
  const parsed = money.parse(text, {
    decimals,
    max: 10n ** 36n,
    allowZero: true,
    allowNegative: true,
  })
  if (!parsed.ok) throw new Error(`${text}: ${parsed.message}`)
  return parsed.value
}

export const usd = (text: string): bigint => units(text, usdDecimals)

/** Formats fixed-point units back to a canonical decimal string. */
export const decimal = (value: bigint, decimals: number): string => money.format(value, decimals)
