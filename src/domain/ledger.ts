// The ledger: every movement of money is an immutable transfer under a unique id, written once.
// Balances are never stored; they are folded from transfers (design.md §2.1), so two replicas
// holding the same transfers always agree on every balance.

import { usdDecimals } from '../constants'
import { assert } from './assert'
import * as money from './money'

/** Where deposited money comes from and withdrawn money goes: outside the venue. */
export const externalAccount = '@external'
/** Trading fees collected by the venue. */
export const feesAccount = '@fees'
/** The insurance fund that absorbs liquidation losses. */
export const insuranceAccount = '@insurance'

/** System accounts start with "@"; account ids cannot (see idPattern). */
export const isSystemAccount = (account: string): boolean => account.startsWith('@')

export type TransferKind = 'deposit' | 'withdrawal' | 'fee' | 'realized_pnl' | 'funding'

/** One movement of USD from one ledger account to another, as stored in a shard document. */
export type Transfer = {
  /** Unique id, also the document key: `<kind>/<accountId>/<requestId>`. */
  id: string
  kind: TransferKind
  from: string
  to: string
  /** Positive decimal string in USD. */
  amount: string
  /** Milliseconds since the epoch on the recording node's clock. */
  ts: number
  /** The node that recorded it. */
  node: string
  /** Digest of the request that created it: a retry with another payload is a conflict. */
  requestDigest: string
  /** A deposit's: when the operator made the request, signed with it; absent on deposits recorded
   * before deposits carried one. */
  signedAt?: number
  /** A deposit's: the operator's signature (src/state/operator-signature.ts). */
  signature?: string
}

export const transferId = (kind: TransferKind, accountId: string, requestId: string): string =>
  `${kind}/${accountId}/${requestId}`

/** The units of a stored amount (a transfer's, a grant's): stored amounts were checked when written. */
export const amountUnits = (entry: { id: string; amount: string }): money.Units => {
  const parsed = money.parse(entry.amount, money.usdTransfer)
  assert(parsed.ok, `stored entry ${entry.id} has an invalid amount`)
  return parsed.value
}

/** Folds transfers into the balance of every ledger account they touch. */
export function balances(transfers: Iterable<Transfer>): Map<string, money.Units> {
  const result = new Map<string, money.Units>()
  for (const transfer of transfers) {
    assert(transfer.from !== transfer.to, `transfer ${transfer.id} moves money to itself`)
    const units = amountUnits(transfer)
    result.set(transfer.from, (result.get(transfer.from) ?? 0n) - units)
    result.set(transfer.to, (result.get(transfer.to) ?? 0n) + units)
  }
  return result
}

/** The balance of one account: what it received minus what it sent. */
export function balanceOf(transfers: Iterable<Transfer>, account: string): money.Units {
  let balance = 0n
  for (const transfer of transfers) {
    if (transfer.to === account) balance += amountUnits(transfer)
    if (transfer.from === account) balance -= amountUnits(transfer)
  }
  return balance
}

/** The change a transfer makes to `account`'s balance (negative when it pays). */
export function signedAmount(transfer: Transfer, account: string): money.Units {
  if (transfer.to === account) return amountUnits(transfer)
  assert(transfer.from === account, `transfer ${transfer.id} does not touch ${account}`)
  return -amountUnits(transfer)
}

/** Prefix of each instrument's clearing account, the counterparty of realized PnL. */
export const clearingPrefix = '@clearing/'

export type Conservation = {
  holds: boolean
  deposits: string
  withdrawals: string
  accountBalances: string
  fees: string
  insuranceFund: string
  /** −Σ realized PnL: equals Σ unrealized PnL of the open positions, which net to zero. */
  clearing: string
}

/**
 * Checks invariant I6 from transfers alone:
 * balances + fees + insurance fund + clearing == deposits − withdrawals, exactly, where clearing is
 * the PnL still held by open positions (zero once every position is closed).
 */
export function conservation(transfers: Iterable<Transfer>): Conservation {
  // Read twice below: a one-shot iterable (a generator, Y.Map.values()) must be held first.
  const list = [...transfers]
  let deposits = 0n
  let withdrawals = 0n
  let accountBalances = 0n
  let fees = 0n
  let insuranceFund = 0n
  let clearing = 0n
  for (const transfer of list) {
    const units = amountUnits(transfer)
    if (transfer.from === externalAccount) deposits += units
    if (transfer.to === externalAccount) withdrawals += units
  }
  for (const [account, balance] of balances(list)) {
    if (account === feesAccount) fees += balance
    else if (account === insuranceAccount) insuranceFund += balance
    else if (account.startsWith(clearingPrefix)) clearing += balance
    else if (!isSystemAccount(account)) accountBalances += balance
  }
  const fmt = (units: money.Units) => money.format(units, usdDecimals)
  return {
    holds: accountBalances + fees + insuranceFund + clearing === deposits - withdrawals,
    deposits: fmt(deposits),
    withdrawals: fmt(withdrawals),
    accountBalances: fmt(accountBalances),
    fees: fmt(fees),
    insuranceFund: fmt(insuranceFund),
    clearing: fmt(clearing),
  }
}

/** Ledger order shared by every node: time, then id (ids are unique, so the order is total). */
export const compareTransfers = (a: LedgerCursor, b: LedgerCursor): number =>
  a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** One transfer as its account sees it; or the balance an epoch checkpoint folded history into. */
export type LedgerEntry = {
  id: string
  kind: TransferKind | 'opening_balance'
  /** Signed change of the account's balance. */
  amount: string
  ts: number
  node: string
}

export type LedgerCursor = { ts: number; id: string }

/**
 * The account's entries after `after`, oldest first, at most `limit`, and whether more follow.
 * `opening` stands for the history an epoch checkpoint folded, placed at its cut's time.
 */
export function page(
  transfers: Iterable<Transfer>,
  account: string,
  after: LedgerCursor | null,
  limit: number,
  opening: LedgerEntry | null = null,
): { entries: LedgerEntry[]; more: boolean } {
  const entries: LedgerEntry[] = [...transfers]
    .filter((t) => t.from === account || t.to === account)
    .map((t) => ({
      id: t.id,
      kind: t.kind,
      amount: signedAmount(t, account) < 0n ? `-${t.amount}` : t.amount,
      ts: t.ts,
      node: t.node,
    }))
  if (opening !== null) entries.push(opening)
  const ordered = entries
    .filter((entry) => after === null || compareTransfers(entry, after) > 0)
    .sort(compareTransfers)
  return { entries: ordered.slice(0, limit), more: ordered.length > limit }
}
