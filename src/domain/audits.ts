// The reconciler's audits, pure: each folds one document's entries (a shard's transfers and
// grants, a market's steps) into the figures an invariant speaks of and returns every violation
// with its evidence. The caller records each as a finding and never repairs anything (design.md
// §4, issue 6). Each fold starts from given figures (empty for a whole history), so a checkpoint
// that folds old entries away can hand its figures in and the audit goes on from there.
//
// What one node can check exactly, and where: a shard holds its accounts' deposits, withdrawals
// and rights grants, so conservation of the cash that entered and left (I6), request ids (I3) and
// rights (I4) are audited per shard; a market holds every fill, fee, realized PnL and funding
// payment of its instrument, so both legs (I5, C7), order monotonicity (I7), net positions (I5)
// and the clearing account against the open positions' cost (I6) are audited per market. No one
// document holds an account's whole balance (cash in its shard, trading results in each market),
// so an overdraft by trading losses is not audited here: the margin checks and liquidations
// answer for it.

import * as ledger from './ledger'
import * as money from './money'
import * as positions from './position'
import type { Opening } from './checkpoint'
import type { Grant } from './escrow'
import { rightsByNode } from './escrow'

/** A broken invariant, with what it is about: (invariant, subject) names it on every node. */
export type Violation = {
  invariant: 'I3' | 'I4' | 'I5' | 'I6' | 'I7'
  /** What it is about (an entry id, an account and node): the same wherever it is found. */
  subject: string
  /** The accounts whose money it touches: their withdrawals wait for the operator. */
  accountIds: string[]
  /** Says what broke, from the entries alone, so every node that finds it says the same. */
  message: string
  evidence: Record<string, unknown>
}

const fmt = money.formatUsd
const userAccounts = (...accounts: string[]) =>
  [...new Set(accounts)].filter((account) => !ledger.isSystemAccount(account)).sort()

// --- shard ------------------------------------------------------------------------------------

/** A shard's figures folded so far: cash in and out, and every account's rights by node. */
export type ShardFigures = {
  deposits: money.Units
  withdrawals: money.Units
  /** Σ of the balances of the shard's accounts. */
  accountBalances: money.Units
  /** account → node → rights (escrow.rightsByNode), from the entries folded before. */
  rights: Map<string, Map<string, money.Units>>
}

export const emptyShardFigures = (): ShardFigures => ({
  deposits: 0n,
  withdrawals: 0n,
  accountBalances: 0n,
  rights: new Map(),
})

/**
 * The figures a checkpoint's openings start an audit from. Every node checked the openings'
 * fold before acknowledging it, so the cash they hold counts as deposited.
 */
export function shardFiguresFromOpenings(openings: ReadonlyMap<string, Opening>): ShardFigures {
  const figures = emptyShardFigures()
  for (const [accountId, opening] of openings) {
    figures.deposits += opening.balance
    figures.accountBalances += opening.balance
    figures.rights.set(accountId, new Map(opening.rights))
  }
  return figures
}

/**
 * Audits a shard's transfers and grants from `start`:
 * - I3: a transfer's id is `<kind>/<its account>/<request id>`, so a request has one entry;
 * - I6: every transfer moves cash between the outside and an account (deposit in, withdrawal
 *   out), so the accounts' balances equal deposits − withdrawals exactly;
 * - I4: no node's rights to an account's cash fold below zero (a node spent rights it never
 *   received), except `gainsNode`'s, which may pay out trading gains above the rights. Rights
 *   are folded always but judged only when `rightsCheck` is given: the caller passes null while
 *   it may lack a grant a spending node had seen (a grant and the withdrawal it paid for are
 *   entries of two nodes, so holding one without the other leaves no struct pending).
 */
export function auditShard(
  transfers: Iterable<ledger.Transfer>,
  grants: Iterable<Grant>,
  rightsCheck: { gainsNode: string } | null,
  start: ShardFigures = emptyShardFigures(),
): { violations: Violation[]; figures: ShardFigures } {
  const violations: Violation[] = []
  const figures = { ...start, rights: new Map(start.rights) }
  const listed = [...transfers]
  for (const transfer of listed) {
    const units = ledger.amountUnits(transfer)
    if (transfer.from === ledger.externalAccount) figures.deposits += units
    if (transfer.to === ledger.externalAccount) figures.withdrawals += units
    if (!ledger.isSystemAccount(transfer.to)) figures.accountBalances += units
    if (!ledger.isSystemAccount(transfer.from)) figures.accountBalances -= units
    violations.push(...transferViolations(transfer))
  }
  const totals = {
    accountBalances: fmt(figures.accountBalances),
    deposits: fmt(figures.deposits),
    withdrawals: fmt(figures.withdrawals),
  }
  for (const violation of violations)
    if (violation.invariant === 'I6') violation.evidence.totals = totals
  // Each account's entries, grouped once: the fold stays linear in the shard's entries.
  const byAccount = new Map<string, { transfers: ledger.Transfer[]; grants: Grant[] }>()
  const entriesOf = (accountId: string) => {
    let entries = byAccount.get(accountId)
    if (entries === undefined) byAccount.set(accountId, (entries = { transfers: [], grants: [] }))
    return entries
  }
  for (const transfer of listed) {
    for (const account of userAccounts(transfer.from, transfer.to)) {
      entriesOf(account).transfers.push(transfer)
    }
  }
  for (const grant of grants) entriesOf(grant.accountId).grants.push(grant)
  for (const accountId of [...byAccount.keys()].sort()) {
    const entries = byAccount.get(accountId)!
    const folded = new Map(figures.rights.get(accountId))
    for (const [node, units] of rightsByNode(entries.transfers, entries.grants, accountId)) {
      folded.set(node, (folded.get(node) ?? 0n) + units)
    }
    figures.rights.set(accountId, folded)
    if (rightsCheck !== null) {
      violations.push(...rightsViolations(accountId, folded, rightsCheck.gainsNode, entries))
    }
  }
  return { violations, figures }
}

function transferViolations(transfer: ledger.Transfer): Violation[] {
  const found: Violation[] = []
  const account = transfer.kind === 'deposit' ? transfer.to : transfer.from
  const prefix = `${transfer.kind}/${account}/`
  if (!transfer.id.startsWith(prefix) || transfer.id.length === prefix.length) {
    found.push({
      invariant: 'I3',
      subject: transfer.id,
      accountIds: userAccounts(transfer.from, transfer.to),
      message: `${transfer.id} is not under its request's id (${prefix}<request id>): the same request could take effect under another id`,
      evidence: { transfer },
    })
  }
  const shaped =
    transfer.kind === 'deposit'
      ? transfer.from === ledger.externalAccount && !ledger.isSystemAccount(transfer.to)
      : transfer.to === ledger.externalAccount && !ledger.isSystemAccount(transfer.from)
  if (!shaped) {
    found.push({
      invariant: 'I6',
      subject: transfer.id,
      accountIds: userAccounts(transfer.from, transfer.to),
      message: `${transfer.id} is a ${transfer.kind} from ${transfer.from} to ${transfer.to}: cash that is not counted in deposits − withdrawals`,
      evidence: { transfer },
    })
  }
  return found
}

function rightsViolations(
  accountId: string,
  rights: ReadonlyMap<string, money.Units>,
  gainsNode: string,
  { transfers, grants }: { transfers: readonly ledger.Transfer[]; grants: readonly Grant[] },
): Violation[] {
  const found: Violation[] = []
  for (const [node, units] of [...rights].sort(([x], [y]) => (x < y ? -1 : 1))) {
    if (units >= 0n || node === gainsNode) continue
    const spent = transfers.filter(
      (t) => t.kind === 'withdrawal' && t.from === accountId && t.node === node,
    )
    const given = grants.filter((g) => g.accountId === accountId && g.from === node)
    found.push({
      invariant: 'I4',
      subject: `${accountId}/${node}`,
      accountIds: [accountId],
      message: `node ${node} spent rights to ${accountId}'s cash it never received: its rights fold below zero`,
      evidence: {
        rights: fmt(units),
        byNode: Object.fromEntries([...rights].map(([n, u]) => [n, fmt(u)])),
        withdrawals: spent.map((t) => ({ id: t.id, amount: t.amount })),
        grants: given.map((g) => ({ id: g.id, to: g.to, amount: g.amount })),
      },
    })
  }
  return found
}

// --- market -----------------------------------------------------------------------------------

/** An order as the matcher received it, in units. */
export type AuditedOrder = {
  orderId: string
  accountId: string
  side: 'buy' | 'sell'
  size: money.Units
}

/** A fill as stored, read leniently: a field that is missing or does not parse is null. */
export type AuditedFill = {
  type: 'fill'
  fillId: string
  takerOrderId: string | null
  makerOrderId: string | null
  taker: string | null
  maker: string | null
  takerSide: 'buy' | 'sell' | null
  price: money.Units | null
  size: money.Units | null
  takerRealized: money.Units | null
  makerRealized: money.Units | null
}

export type AuditedDecision =
  | { type: 'accepted' | 'rejected' | 'rested' | 'cancelled' | 'cancel_rejected'; orderId: string }
  | AuditedFill
  | { type: 'funding' }

/** One matcher step: the order it took (null for a cancel or a settlement) and its decisions. */
export type AuditedStep = {
  seq: number
  kind: 'order' | 'cancel' | 'settle'
  order: AuditedOrder | null
  decisions: AuditedDecision[]
}

export type OrderFold = AuditedOrder & {
  filled: money.Units
  state: 'working' | 'filled' | 'cancelled' | 'rejected'
}

/** A market's figures folded so far. */
export type MarketFigures = {
  orders: Map<string, OrderFold>
  positions: Map<string, positions.Position>
  /** Σ of the positions' sizes: zero while every fill has both legs. */
  netSize: money.Units
  /** Σ of the positions' remaining cost, and Σ of the realized PnL the fills carry. */
  openCost: money.Units
  realized: money.Units
}

export const emptyMarketFigures = (): MarketFigures => ({
  orders: new Map(),
  positions: new Map(),
  netSize: 0n,
  openCost: 0n,
  realized: 0n,
})

/**
 * Audits a market's steps, in sequence order, from `start`:
 * - I3: the matcher takes an order id once;
 * - I5, C7: every fill has both legs: two accounts, the orders they fill (the step's own order as
 *   taker, a resting order of the maker's on the other side; a liquidation against the fund), a
 *   positive price and size, and both legs' realized PnL;
 * - I7: an order's filled size never exceeds its size, no decision follows a cancel, a fill, or
 *   a rejection that ended it;
 * - I5: positions net to zero; I6: the clearing account holds exactly the open positions' cost
 *   (Σ realized PnL == Σ remaining cost), so realized plus unrealized PnL sums to zero.
 * `notionalScale` is the instrument's (price units × size units → USD units).
 */
export function auditMarket(
  steps: Iterable<AuditedStep>,
  notionalScale: bigint,
  start: MarketFigures = emptyMarketFigures(),
): { violations: Violation[]; figures: MarketFigures } {
  const figures: MarketFigures = {
    ...start,
    orders: new Map([...start.orders].map(([id, order]) => [id, { ...order }])),
    positions: new Map(start.positions),
  }
  const violations: Violation[] = []
  const broken = new Set<string>()
  const report = (violation: Violation) => {
    const key = `${violation.invariant}/${violation.subject}`
    if (broken.has(key)) return
    broken.add(key)
    violations.push(violation)
  }
  for (const step of steps) {
    if (step.order !== null) takeOrder(figures, step, step.order, report)
    const touched: string[] = []
    const balancedBefore = {
      net: figures.netSize === 0n,
      cost: figures.openCost === figures.realized,
    }
    for (const decision of step.decisions) {
      if (decision.type === 'funding') continue
      if (decision.type === 'fill') {
        touched.push(...userAccounts(...[decision.taker, decision.maker].filter(isText)))
        applyFill(figures, step, decision, notionalScale, report)
      } else orderDecision(figures, step, decision, report)
    }
    balanceChecks(figures, balancedBefore, step, touched, report)
  }
  return { violations, figures }
}

const isText = (value: string | null): value is string => value !== null && value.length > 0

type Report = (violation: Violation) => void

function takeOrder(figures: MarketFigures, step: AuditedStep, order: AuditedOrder, report: Report) {
  const before = figures.orders.get(order.orderId)
  if (before !== undefined) {
    report({
      invariant: 'I3',
      subject: order.orderId,
      accountIds: userAccounts(order.accountId, before.accountId),
      message: `order ${order.orderId} was taken by the matcher again at step ${step.seq}`,
      evidence: { seq: step.seq, order: printOrder(order), before: printOrder(before) },
    })
    return
  }
  figures.orders.set(order.orderId, { ...order, filled: 0n, state: 'working' })
}

const printOrder = (order: AuditedOrder) => ({
  orderId: order.orderId,
  accountId: order.accountId,
  side: order.side,
  size: order.size.toString(),
})

function orderDecision(
  figures: MarketFigures,
  step: AuditedStep,
  decision: Exclude<AuditedDecision, AuditedFill | { type: 'funding' }>,
  report: Report,
) {
  const order = figures.orders.get(decision.orderId)
  if (order === undefined || decision.type === 'cancel_rejected') return
  // The step that takes an order accepts it; a later step that does is the order taken again.
  const again = decision.type === 'accepted' && step.order?.orderId !== decision.orderId
  if (order.state !== 'working' || again) {
    report(monotonicity(order, step, `${decision.type} after it was ${order.state}`))
    return
  }
  if (decision.type === 'cancelled') order.state = 'cancelled'
  if (decision.type === 'rejected') order.state = 'rejected'
}

const monotonicity = (order: OrderFold, step: AuditedStep, what: string): Violation => ({
  invariant: 'I7',
  subject: order.orderId,
  accountIds: userAccounts(order.accountId),
  message: `order ${order.orderId}: ${what}, at step ${step.seq}`,
  evidence: { seq: step.seq, order: printOrder(order), filled: order.filled.toString() },
})

/** Why a fill lacks a leg or its legs do not match, or undefined when it is whole. */
function legsBroken(
  figures: MarketFigures,
  step: AuditedStep,
  fill: AuditedFill,
): string | undefined {
  const { taker, maker, takerSide, price, size } = fill
  if (!isText(taker) || !isText(maker)) return 'it does not name both accounts'
  if (taker === maker) return 'both legs are one account'
  if (takerSide === null || price === null || size === null)
    return 'its side, price or size does not parse'
  if (price <= 0n || size <= 0n) return 'its price and size are not positive'
  if (fill.takerRealized === null || fill.makerRealized === null)
    return "a leg's realized PnL does not parse"
  if (step.kind === 'settle') {
    return maker === ledger.insuranceAccount
      ? undefined
      : 'a liquidation is not against the insurance fund'
  }
  const order = step.order
  if (order === null) return 'a cancel filled an order'
  if (
    fill.takerOrderId !== order.orderId ||
    taker !== order.accountId ||
    takerSide !== order.side
  ) {
    return "its taker leg is not the step's order"
  }
  const resting = fill.makerOrderId === null ? undefined : figures.orders.get(fill.makerOrderId)
  if (resting === undefined) return 'its maker leg names no order the matcher took'
  if (resting.accountId !== maker || resting.side === takerSide) {
    return "its maker leg is not the maker's order on the other side"
  }
  return undefined
}

function applyFill(
  figures: MarketFigures,
  step: AuditedStep,
  fill: AuditedFill,
  notionalScale: bigint,
  report: Report,
) {
  const why = legsBroken(figures, step, fill)
  if (why !== undefined) {
    report({
      invariant: 'I5',
      subject: fill.fillId,
      accountIds: userAccounts(...[fill.taker, fill.maker].filter(isText)),
      message: `fill ${fill.fillId} at step ${step.seq} is not two matching legs: ${why}`,
      evidence: { seq: step.seq, fill: printFill(fill) },
    })
  }
  const { price, size, takerSide } = fill
  if (price === null || size === null || takerSide === null || price <= 0n || size <= 0n) return
  for (const orderId of step.kind === 'settle' ? [] : [fill.takerOrderId, fill.makerOrderId]) {
    const order = orderId === null ? undefined : figures.orders.get(orderId)
    if (order === undefined) continue
    if (order.state !== 'working') {
      report(monotonicity(order, step, `filled after it was ${order.state}`))
      continue
    }
    order.filled += size
    if (order.filled > order.size) {
      report(monotonicity(order, step, `filled ${order.filled} of its size ${order.size}`))
    }
    if (order.filled >= order.size) order.state = 'filled'
  }
  const legs = [
    { account: fill.taker, buys: takerSide === 'buy', realized: fill.takerRealized },
    { account: fill.maker, buys: takerSide !== 'buy', realized: fill.makerRealized },
  ]
  for (const leg of legs) {
    if (!isText(leg.account)) continue
    const quantity = leg.buys ? size : -size
    const before = figures.positions.get(leg.account) ?? positions.flat
    const moved = positions.applyFill(before, quantity, quantity * price * notionalScale)
    figures.positions.set(leg.account, moved.position)
    figures.netSize += quantity
    figures.openCost += moved.position.cost - before.cost
    figures.realized += leg.realized ?? 0n
  }
}

const printFill = (fill: AuditedFill) =>
  Object.fromEntries(
    Object.entries(fill).map(([field, value]) => [
      field,
      typeof value === 'bigint' ? value.toString() : value,
    ]),
  )

/**
 * The step after which positions stop netting to zero (I5) or the clearing account stops holding
 * their cost (I6): reported once, at the step that broke it.
 */
function balanceChecks(
  figures: MarketFigures,
  before: { net: boolean; cost: boolean },
  step: AuditedStep,
  touched: string[],
  report: Report,
) {
  if (before.net && figures.netSize !== 0n) {
    report({
      invariant: 'I5',
      subject: `positions/${step.seq}`,
      accountIds: [...new Set(touched)].sort(),
      message: `positions stop netting to zero at step ${step.seq}`,
      evidence: { seq: step.seq, net: figures.netSize.toString() },
    })
  }
  if (before.cost && figures.openCost !== figures.realized) {
    report({
      invariant: 'I6',
      subject: `clearing/${step.seq}`,
      accountIds: [...new Set(touched)].sort(),
      message: `the clearing account stops holding the open positions' cost at step ${step.seq}`,
      evidence: { seq: step.seq, openCost: fmt(figures.openCost), realized: fmt(figures.realized) },
    })
  }
}
