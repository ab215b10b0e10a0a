// C3 (I6): conservation on every node: account balances + fees + insurance fund + clearing equal
// deposits − withdrawals exactly; the collateral each account's API read reports sums to the
// balances its entries fold to; the clearing account holds exactly the cost of the open positions
// (realized PnL + unrealized PnL over all accounts is zero).
// C4 (I4): no overdraft: no account's balance below zero on any node, by its entries or by its
// API read; escrow rights (when the documents hold any) never negative on any node.
// C10: the share of withdrawals refused for lack of local rights, and every such refusal a clear,
// retryable error. Rights and their refusals come with escrow; until then C10 is not applicable.

import {
  balancesOf,
  clearingPrefix,
  externalAccount,
  feesAccount,
  insuranceAccount,
  isSystemAccount,
  decimal,
  usd,
  type NodeView,
} from '../final-state'
import { isCompletion } from '../history'
import { contextOf, skippedNote, type CheckInput } from './context'
import { replayTrading } from './model'
import { report, type CheckResult } from './report'

const fmt = (units: bigint) => decimal(units, 6)

export function checkConservation(input: CheckInput): CheckResult {
  const r = report('C3', 'conservation')
  const context = contextOf(input)
  for (const view of context.complete) {
    const balances = balancesOf(view)
    let deposits = 0n
    let withdrawals = 0n
    for (const transfer of view.transfers.values()) {
      if (transfer.from === externalAccount) deposits += usd(transfer.amount)
      if (transfer.to === externalAccount) withdrawals += usd(transfer.amount)
    }
    let accounts = 0n
    let clearing = 0n
    for (const [account, balance] of balances) {
      if (account.startsWith(clearingPrefix)) clearing += balance
      else if (!isSystemAccount(account)) accounts += balance
    }
    const fees = balances.get(feesAccount) ?? 0n
    const insurance = balances.get(insuranceAccount) ?? 0n
    if (accounts + fees + insurance + clearing !== deposits - withdrawals)
      r.error(
        'ledger',
        `${view.node}: balances ${fmt(accounts)} + fees ${fmt(fees)} + insurance ${fmt(insurance)} + ` +
          `clearing ${fmt(clearing)} != deposits ${fmt(deposits)} - withdrawals ${fmt(withdrawals)}`,
      )
    apiBalances(r, input, view, balances)
    openCost(r, context, view, balances)
    if (view === context.complete[0]) {
      r.figure('deposits', fmt(deposits))
      r.figure('withdrawals', fmt(withdrawals))
      r.figure('fees', fmt(fees))
    }
  }
  if (context.views.length === 0) r.notApplicable('no node could be read')
  const skipped = skippedNote(context)
  if (skipped !== undefined) r.note(skipped)
  return r.done()
}

/** The collateral a node's API reports, account by account, equals its entries' balance. */
function apiBalances(
  r: ReturnType<typeof report>,
  input: CheckInput,
  view: NodeView,
  balances: Map<string, bigint>,
) {
  const node = input.final.nodes.find((n) => n.node === view.node)
  for (const [accountId, read] of Object.entries(node?.accounts ?? {})) {
    if (read.collateral === undefined) continue
    const folded = balances.get(accountId) ?? 0n
    if (usd(read.collateral) !== folded)
      r.error(
        'api-collateral',
        `${view.node} ${accountId}: reads ${read.collateral}, entries ${fmt(folded)}`,
      )
  }
}

/** Clearing of each instrument + the remaining cost of its open positions is zero. */
function openCost(
  r: ReturnType<typeof report>,
  context: ReturnType<typeof contextOf>,
  view: NodeView,
  balances: Map<string, bigint>,
) {
  const model = replayTrading(view, context.instruments)
  for (const symbol of view.steps.keys()) {
    const clearing = balances.get(`${clearingPrefix}${symbol}`) ?? 0n
    const cost = [...(model.positions.get(symbol)?.values() ?? [])].reduce((n, p) => n + p.cost, 0n)
    if (clearing + cost !== 0n)
      r.error(
        'clearing',
        `${view.node} ${symbol}: clearing ${fmt(clearing)} + open cost ${fmt(cost)} != 0`,
      )
  }
}

/** Escrow rights found in the documents: map `rights` (or `escrow`) of {accountId, node, amount}. */
export function rightsOf(
  view: NodeView,
): { key: string; accountId: string; holder: string; amount: bigint }[] {
  const entries = [...(view.extra.get('rights') ?? []), ...(view.extra.get('escrow') ?? [])]
  return entries.flatMap(([key, value]) => {
    const v = value as Record<string, unknown>
    const amount = v.amount ?? v.rights
    if (typeof amount !== 'string') return []
    return [
      {
        key,
        accountId: String(v.accountId ?? v.account ?? '?'),
        holder: String(v.node ?? v.holder ?? '?'),
        amount: usd(amount),
      },
    ]
  })
}

export function checkOverdraft(input: CheckInput): CheckResult {
  const r = report('C4', 'no overdraft, rights never negative')
  const context = contextOf(input)
  let rightsSeen = 0
  for (const view of context.complete) {
    for (const [account, balance] of balancesOf(view)) {
      if (!isSystemAccount(account) && balance < 0n)
        r.error('overdraft', `${view.node} ${account}: balance ${fmt(balance)}`)
    }
    const node = input.final.nodes.find((n) => n.node === view.node)
    for (const [accountId, read] of Object.entries(node?.accounts ?? {})) {
      if (read.collateral !== undefined && usd(read.collateral) < 0n)
        r.error('overdraft-read', `${view.node} ${accountId}: collateral ${read.collateral}`)
    }
    const rights = rightsOf(view)
    rightsSeen += rights.length
    const sums = new Map<string, bigint>()
    for (const right of rights) {
      if (right.amount < 0n)
        r.error(
          'negative-rights',
          `${view.node} ${right.key}: ${right.holder} holds ${fmt(right.amount)}`,
        )
      sums.set(right.accountId, (sums.get(right.accountId) ?? 0n) + right.amount)
    }
    for (const [accountId, sum] of sums)
      if (sum < 0n) r.error('negative-rights', `${view.node} ${accountId}: rights sum ${fmt(sum)}`)
  }
  r.figure('rightsEntries', rightsSeen)
  if (rightsSeen === 0) r.note('rights part not applicable: no escrow rights in the documents')
  const skipped = skippedNote(context)
  if (skipped !== undefined) r.note(skipped)
  return r.done()
}

/** Error codes that say a node refused for lack of its local share of an account's rights. */
export const isRightsRefusal = (code: string | undefined) =>
  code !== undefined && /right|escrow/i.test(code)

export function checkRightsRefusals(input: CheckInput): CheckResult {
  const r = report('C10', 'share of requests refused for lack of local rights')
  const context = contextOf(input)
  const completions = input.history.filter(isCompletion).filter((e) => e.op.f === 'withdraw')
  const refusals = completions.filter((e) => isRightsRefusal(e.code))
  const hasRights = context.views.some((view) => rightsOf(view).length > 0)
  if (!hasRights && refusals.length === 0) {
    r.notApplicable('no escrow rights in the documents and no rights refusal in the history')
    return r.done()
  }
  for (const refusal of refusals) {
    const where = `${refusal.op.requestId} at ${refusal.node} (${refusal.status} ${refusal.code})`
    if (refusal.type !== 'fail') r.error('not-definite', `${where}: outcome ${refusal.type}`)
    if (refusal.retryable !== true) r.error('not-retryable', `${where}: not marked retryable`)
  }
  r.figure('withdrawAttempts', completions.length)
  r.figure('rightsRefusals', refusals.length)
  r.figure(
    'share',
    completions.length === 0 ? 0 : Number((refusals.length / completions.length).toFixed(4)),
  )
  return r.done()
}
