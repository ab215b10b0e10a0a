// Escrow of an account's free collateral across nodes: the bounded counter of AntidoteDB and
// Indigo (design.md §4). Withdrawals under "balance ≥ 0" are not invariant-confluent, so no node
// may spend what it has not been given: each node holds rights to part of the account's cash and
// spends (withdrawals, the initial margin of new orders) only within them.
//
// A node's rights are folded from entries, never stored:
//   + deposits it recorded          − withdrawals it approved
//   + grants other nodes made to it − grants it made to others
// so the rights of all nodes sum to the account's deposits minus withdrawals, and spending within
// one's own rights can never drive that sum below zero, whatever the partition.
//
// The account's commitment (margin in use, unrealized and realized losses, fees: everything its
// cash holds that is not free) is charged in full against every node's rights. Charging it once
// per node is conservative, and it keeps the sum of what all nodes may spend at or below the free
// collateral even when each node decides alone. Free collateral above the rights (realized gains)
// is spendable at one node only, the mesh's settlement node, so no two nodes spend it twice.

import { assert } from './assert'
import * as ledger from './ledger'
import * as money from './money'

/** Rights one node gives another, written only by the giving node, under a unique id. */
export type Grant = {
  id: string
  accountId: string
  from: string
  to: string
  amount: string
  ts: number
}

/** A node asking its peers for rights it lacks; peers answer with grants while it is fresh. */
export type RightsRequest = {
  id: string
  accountId: string
  node: string
  /** What the node lacked for the request it refused. */
  amount: string
  ts: number
}

/**
 * How much a node gives when asked: just what the asker lacks (`shortfall`), all it may spend
 * (`all`), or the shortfall plus a share of the rest weighted by the asker's recent demand against
 * its own (`demand`), which builds a reserve where the account trades.
 */
export type GrantPolicy = 'demand' | 'shortfall' | 'all'
export const grantPolicies: readonly GrantPolicy[] = ['demand', 'shortfall', 'all']

/** Every node's rights to the account's cash, from its transfers and grants. */
export function rightsByNode(
  transfers: Iterable<ledger.Transfer>,
  grants: Iterable<Grant>,
  accountId: string,
): Map<string, money.Units> {
  const rights = new Map<string, money.Units>()
  const add = (node: string, units: money.Units) =>
    rights.set(node, (rights.get(node) ?? 0n) + units)
  for (const transfer of transfers) {
    if (transfer.kind === 'deposit' && transfer.to === accountId) {
      add(transfer.node, ledger.amountUnits(transfer))
    } else if (transfer.kind === 'withdrawal' && transfer.from === accountId) {
      add(transfer.node, -ledger.amountUnits(transfer))
    }
  }
  for (const grant of grants) {
    if (grant.accountId !== accountId) continue
    const units = ledger.amountUnits(grant)
    add(grant.from, -units)
    add(grant.to, units)
  }
  return rights
}

export type Spendable = {
  /** This node's rights. */
  rights: money.Units
  /** The account's cash not free to spend, charged against every node's rights. */
  commitment: money.Units
  /** What this node may spend now: never more than its rights, never below zero. */
  usable: money.Units
}

/**
 * What `node` may spend of the account, given every node's rights and the account's free
 * collateral (equity − initial margin) as `node` sees it. `gainsNode` is the node that may spend
 * gains above the rights now: the settlement node, or null while it is cut off from a majority.
 */
export function spendable(
  rights: ReadonlyMap<string, money.Units>,
  node: string,
  free: money.Units,
  gainsNode: string | null,
): Spendable {
  const total = [...rights.values()].reduce((sum, units) => sum + units, 0n)
  const own = rights.get(node) ?? 0n
  const commitment = money.max(0n, total - money.max(0n, free))
  const gains = node === gainsNode ? money.max(0n, free - total) : 0n
  return { rights: own, commitment, usable: money.max(0n, own - commitment + gains) }
}

/** Recent demand for an account's rights at the asking node and at the granting node. */
export type Demand = { asker: money.Units; granter: money.Units }

/**
 * A node's recent demand for the account's rights, from `since` on: the withdrawals it approved
 * and what its rights requests lacked (the spends it refused).
 */
export function recentDemand(
  transfers: Iterable<ledger.Transfer>,
  requests: Iterable<RightsRequest>,
  accountId: string,
  node: string,
  since: number,
): money.Units {
  let demand = 0n
  for (const transfer of transfers) {
    if (transfer.kind !== 'withdrawal' || transfer.from !== accountId) continue
    if (transfer.node === node && transfer.ts >= since) demand += ledger.amountUnits(transfer)
  }
  for (const request of requests) {
    if (request.accountId !== accountId) continue
    if (request.node === node && request.ts >= since) demand += ledger.amountUnits(request)
  }
  return demand
}

/**
 * What a node holding `usable` grants a peer that lacked `shortfall`, under `policy`; never more
 * than `usable`. Under `demand` the granter keeps back the share of the rest its own recent demand
 * weighs against the asker's, so rights settle where the account spends them.
 */
export function grantAmount(
  policy: GrantPolicy,
  usable: money.Units,
  shortfall: money.Units,
  demand: Demand,
): money.Units {
  assert(demand.asker >= 0n && demand.granter >= 0n, 'demand is never negative')
  if (usable <= 0n) return 0n
  if (policy === 'all') return usable
  const lacked = money.min(usable, money.max(0n, shortfall))
  if (policy === 'shortfall') return lacked
  if (demand.asker === 0n) return lacked
  return lacked + ((usable - lacked) * demand.asker) / (demand.asker + demand.granter)
}

/**
 * Whether a node's rights request still stands in the way of another for the same account: while
 * it is fresh and no peer has answered it with a grant. Once answered the node may ask again at
 * its next refusal, so a reserve that ran out is refilled without waiting for the request to age.
 */
export const requestOpen = (
  request: RightsRequest,
  answered: boolean,
  now: number,
  freshMs: number,
): boolean => !answered && now - request.ts < freshMs

/**
 * When this node lost contact with a majority of the mesh: the first moment it was seen cut off,
 * kept while it stays so, cleared by contact.
 */
export const majorityLostAt = (
  lostAt: number | null,
  inContact: boolean,
  now: number,
): number | null => (inContact ? null : (lostAt ?? now))

/**
 * Whether the settlement node may still pay out gains above the rights. Cut off from a majority
 * for longer than `graceMs`, it cannot know that fills it has not seen (the home matcher may be on
 * the other side) have not turned the gains into losses, so it spends its own rights only.
 */
export const gainsSpendableAfter = (lostAt: number | null, now: number, graceMs: number) =>
  lostAt === null || now - lostAt < graceMs

/** The settlement node: the smallest node id of the mesh, the same on every node. */
export const settlementNodeOf = (nodes: Iterable<string>): string => [...nodes].sort()[0]!
