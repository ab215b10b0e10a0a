// The fold an epoch checkpoint carries (design.md §2.3): each ledger account's balance and each
// node's escrow rights to it, as of a cut of the shard's history. Folding a checkpoint's opening
// with the entries after it gives exactly what folding every entry would, so the entries the
// checkpoint folds can be compacted away.
//
// Request ids a checkpoint must still recognise (I3) after its entries are gone:
// - a withdrawal id, while a retry of it could still be taken. A retry carries the client's
//   signature over a timestamp within the receive window of the node's clock; node clocks differ
//   by at most `clockSkewMsMax` either way; so a withdrawal first taken at `ts` can be retried only
//   before `ts + 2 × (window + skew)`. The checkpoint keeps every withdrawal taken after
//   `cutTime − recognizeMs(window)`, which covers that with a margin.
// - a deposit id, as a withdrawal's but from its `signedAt`: the admin API takes a deposit request
//   only within the receive window of its signedAt (the operator's time of the request, signed
//   with the deposit), so a request as sent can be taken only until `signedAt + window` by the
//   clock of the node it reaches. A retry stamped afresh (the SDK stamps every attempt of a call)
//   is bounded as a withdrawal's signed afresh: by how long the caller retries. A deposit recorded
//   before deposits carried a signedAt is kept always: nothing bounds when a retry of it may come.
// - a grant id, as a withdrawal's: a grant answers a rights request while it is fresh, far
//   shorter than the window.

import { clockSkewMsMax, usdDecimals } from '../constants'
import * as escrow from './escrow'
import * as ledger from './ledger'
import * as merkle from './merkle'
import * as money from './money'

/** One ledger account as of a cut. */
export type Opening = { balance: money.Units; rights: Map<string, money.Units> }

/** The stored form of an opening: decimal strings (design.md §2.2). */
export type StoredOpening = { balance: string; rights: Record<string, string> }

/** Margin on top of the retry bound, for the time between a write and its fold. */
export const recognizeMarginMs = 60_000

export const recognizeMs = (signatureWindowMs: number): number =>
  2 * (signatureWindowMs + clockSkewMsMax) + recognizeMarginMs

/** Whether a checkpoint whose cut was taken at `cutTime` keeps recognising entry `entry`. */
export function recognizes(
  entry: { kind?: ledger.TransferKind; ts: number; signedAt?: number },
  cutTime: number,
  signatureWindowMs: number,
): boolean {
  const madeAt = entry.kind === 'deposit' ? entry.signedAt : entry.ts
  return madeAt === undefined || madeAt >= cutTime - recognizeMs(signatureWindowMs)
}

const emptyOpening = (): Opening => ({ balance: 0n, rights: new Map() })

/**
 * `openings` with `transfers` and `grants` folded in (a new map; `openings` is not changed).
 * Every ledger account a transfer touches gets an opening (the external account too, so the
 * shard's balances still sum to zero); rights are kept for client accounts only.
 */
export function foldInto(
  openings: ReadonlyMap<string, Opening>,
  transfers: Iterable<ledger.Transfer>,
  grants: Iterable<escrow.Grant>,
): Map<string, Opening> {
  const transfersByAccount = groupBy(transfers, (transfer) => [transfer.from, transfer.to])
  const grantsByAccount = groupBy(grants, (grant) => [grant.accountId])
  const folded = new Map([...openings].map(([id, o]) => [id, { ...o, rights: new Map(o.rights) }]))
  for (const account of new Set([...transfersByAccount.keys(), ...grantsByAccount.keys()])) {
    const own = transfersByAccount.get(account) ?? []
    const opening = folded.get(account) ?? emptyOpening()
    opening.balance += ledger.balanceOf(own, account)
    if (!ledger.isSystemAccount(account)) {
      const rights = escrow.rightsByNode(own, grantsByAccount.get(account) ?? [], account)
      for (const [node, units] of rights) {
        opening.rights.set(node, (opening.rights.get(node) ?? 0n) + units)
      }
    }
    folded.set(account, opening)
  }
  return folded
}

function groupBy<T>(entries: Iterable<T>, keysOf: (entry: T) => string[]): Map<string, T[]> {
  const groups = new Map<string, T[]>()
  for (const entry of entries) {
    for (const key of keysOf(entry)) {
      const group = groups.get(key)
      if (group === undefined) groups.set(key, [entry])
      else group.push(entry)
    }
  }
  return groups
}

export const store = (opening: Opening): StoredOpening => ({
  balance: money.formatUsd(opening.balance),
  rights: Object.fromEntries(
    [...opening.rights]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([node, units]) => [node, money.formatUsd(units)]),
  ),
})

/** A folded amount: any sign, zero included, and sums of many transfers. */
const foldedAmount: money.ParseOptions = {
  decimals: usdDecimals,
  max: 10n ** 30n,
  allowZero: true,
  allowNegative: true,
}

export function load(stored: StoredOpening): Opening {
  const units = (amount: string) => {
    const parsed = money.parse(amount, foldedAmount)
    if (!parsed.ok) throw new Error(`a checkpoint holds an invalid amount ${amount}`)
    return parsed.value
  }
  return {
    balance: units(stored.balance),
    rights: new Map(Object.entries(stored.rights).map(([node, amount]) => [node, units(amount)])),
  }
}

/** The Merkle leaves of the shard's client accounts (`accountIds`: every account of the cut). */
export const leavesOf = (
  openings: ReadonlyMap<string, Opening>,
  accountIds: Iterable<string>,
): merkle.Leaf[] =>
  [...accountIds].map((accountId) => ({
    accountId,
    balance: money.formatUsd(openings.get(accountId)?.balance ?? 0n),
  }))
