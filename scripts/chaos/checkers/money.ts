// C3 (I6): conservation on every node: account balances + fees + insurance fund + clearing equal
// deposits − withdrawals exactly; the collateral each account's API read reports sums to the
// balances its entries fold to; the clearing account holds exactly the cost of the open positions
// (realized PnL + unrealized PnL over all accounts is zero).
// C4 (I4): no overdraft: no account's balance below zero on any node, by its entries or by its
// API read; and on every node, every account's escrow rights, folded from the shard documents'
// transfers and grants by the definition in src/domain/escrow.ts: never below zero at any node
// that spends only its rights (every node but the settlement node, which may also pay out gains),
// and never below zero in sum except by gains the account holds.
// C10: the share of withdrawals refused for lack of local rights, and every such refusal a clear,
// retryable error.

import { rightsByNode, settlementNodeOf } from '../../../src/domain/escrow'
import type * as ledger from '../../../src/domain/ledger'
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
    // What a checkpoint folded: the external account's opening is withdrawals − deposits.
    let deposits = -(view.openings.get(externalAccount)?.balance ?? 0n)
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

/**
 * Clearing of each instrument + the remaining cost of its open positions is the net funding it
 * took in (zero without funding).
 */
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
    const funding = model.clearingFunding.get(symbol) ?? 0n
    if (clearing + cost !== funding)
      r.error(
        'clearing',
        `${view.node} ${symbol}: clearing ${fmt(clearing)} + open cost ${fmt(cost)} != ` +
          `funding taken in ${fmt(funding)}`,
      )
  }
}

/** Every account's rights at every node that holds any, folded from the node's entries. */
export function rightsOf(
  view: NodeView,
): { accountId: string; holder: string; amount: bigint; sum: bigint }[] {
  const transfers = [...view.transfers.values()] as ledger.Transfer[]
  const accounts = new Set(view.accounts)
  for (const transfer of transfers)
    for (const account of [transfer.from, transfer.to])
      if (!isSystemAccount(account)) accounts.add(account)
  for (const account of view.openings.keys()) if (!isSystemAccount(account)) accounts.add(account)
  return [...accounts].sort().flatMap((accountId) => {
    const rights = rightsByNode(transfers, view.grants.values(), accountId)
    for (const [node, units] of view.openings.get(accountId)?.rights ?? [])
      rights.set(node, (rights.get(node) ?? 0n) + units)
    const sum = [...rights.values()].reduce((n, amount) => n + amount, 0n)
    return [...rights].map(([holder, amount]) => ({ accountId, holder, amount, sum }))
  })
}

export function checkOverdraft(input: CheckInput): CheckResult {
  const r = report('C4', 'no overdraft, rights never negative')
  const context = contextOf(input)
  const settlementNode = settlementNodeOf(input.final.nodes.map((node) => node.node))
  let rightsSeen = 0
  let gainsPaid = 0
  for (const view of context.complete) {
    const balances = balancesOf(view)
    for (const [account, balance] of balances) {
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
    for (const right of rights) {
      const where = `${view.node} ${right.accountId}`
      if (right.holder === settlementNode) {
        if (right.amount < 0n && view === context.complete[0]) gainsPaid++
      } else if (right.amount < 0n)
        r.error('negative-rights', `${where}: ${right.holder} holds ${fmt(right.amount)}`)
    }
    // The rights sum to deposits − withdrawals: below zero only by gains paid out of trading.
    for (const [accountId, sum] of new Map(rights.map((right) => [right.accountId, right.sum]))) {
      const gains = (balances.get(accountId) ?? 0n) - sum
      if (sum < 0n && sum + (gains > 0n ? gains : 0n) < 0n)
        r.error(
          'negative-rights-sum',
          `${view.node} ${accountId}: rights sum to ${fmt(sum)}, gains ${fmt(gains)}`,
        )
    }
  }
  r.figure('rightsChecked', rightsSeen)
  r.figure('gainsPaidBelowRights', gainsPaid)
  if (rightsSeen === 0) r.note('no account holds rights at any node')
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
  if (completions.length === 0) {
    r.notApplicable('no withdrawal in the history')
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
