// An in-memory index from ledger account to its transfers and rights grants, kept current by
// observing the shard document. It is derived state: rebuilt from the document on load, never
// stored. It also notices when a merge replaced one copy of a transfer with another (the same
// request id taken on both sides of a partition), for the replica to record (I3).
//
// Once an epoch checkpoint is in force, an account's figures are its opening in the checkpoint
// plus the entries the checkpoint does not fold (src/state/checkpoint.ts); entries it folds are
// left out here whether compaction has deleted them yet or not, so folds never count one twice.

import type * as Y from 'yjs'
import * as folding from '../domain/checkpoint'
import * as escrow from '../domain/escrow'
import type { Grant } from '../domain/escrow'
import * as ledger from '../domain/ledger'
import type { Transfer } from '../domain/ledger'
import type * as money from '../domain/money'
import * as checkpoint from './checkpoint'
import { checkpointAcks, checkpoints, grants, transfers } from './shard-doc'

/** Two copies of one transfer id met in a merge; the document keeps one, the same everywhere. */
export type MergedCopy = { id: string; kept: Transfer; dropped: Transfer }

export type AccountIndex = {
  byAccount: Map<string, Map<string, Transfer>>
  grantsByAccount: Map<string, Map<string, Grant>>
  /** Copies merged away since the replica last took them (see `takeMergedCopies`). */
  merged: MergedCopy[]
  doc: Y.Doc
  /** The checkpoint in force, kept current as checkpoints and acknowledgements arrive. */
  inForce: checkpoint.InForce | undefined
}

type Keyed = { id: string }

/** Keeps `byAccount` (entries by each account they name) current with one Y.Map. */
function indexMap<T extends Keyed>(
  map: Y.Map<T>,
  byAccount: Map<string, Map<string, T>>,
  accountsOf: (entry: T) => string[],
  onReplaced: (kept: T, dropped: T) => void,
): void {
  const add = (entry: T) => {
    for (const account of accountsOf(entry)) {
      let entries = byAccount.get(account)
      if (entries === undefined) byAccount.set(account, (entries = new Map()))
      entries.set(entry.id, entry)
    }
  }
  const remove = (entry: T) => {
    for (const account of accountsOf(entry)) byAccount.get(account)?.delete(entry.id)
  }
  for (const entry of map.values()) add(entry)
  map.observe((event) => {
    for (const [key, change] of event.changes.keys) {
      if (change.action !== 'add' && change.oldValue !== undefined) remove(change.oldValue)
      if (change.action !== 'delete') add(map.get(key)!)
      if (change.action === 'update' && change.oldValue !== undefined) {
        onReplaced(map.get(key)!, change.oldValue)
      }
    }
  })
}

/** Builds the index from the document and keeps it current for every later change. */
export function observe(doc: Y.Doc): AccountIndex {
  const index: AccountIndex = {
    byAccount: new Map(),
    grantsByAccount: new Map(),
    merged: [],
    doc,
    inForce: checkpoint.inForce(doc),
  }
  const refresh = () => {
    index.inForce = checkpoint.inForce(doc)
  }
  checkpoints(doc).observe(refresh)
  checkpointAcks(doc).observe(refresh)
  indexMap(
    transfers(doc),
    index.byAccount,
    (transfer) => [transfer.from, transfer.to],
    (kept, dropped) => index.merged.push({ id: kept.id, kept, dropped }),
  )
  // Grant ids are unique per request and granting node: a replaced grant is not a money event.
  indexMap(
    grants(doc),
    index.grantsByAccount,
    (grant) => [grant.accountId],
    () => undefined,
  )
  return index
}

/** The account's transfers the checkpoint in force does not fold. */
export const transfersOf = (index: AccountIndex, account: string): Transfer[] =>
  unfolded(index, 'transfers', transfers(index.doc), index.byAccount.get(account))

/** The account's grants the checkpoint in force does not fold. */
export const grantsOf = (index: AccountIndex, account: string): Grant[] =>
  unfolded(index, 'grants', grants(index.doc), index.grantsByAccount.get(account))

function unfolded<T extends Keyed>(
  index: AccountIndex,
  name: checkpoint.FoldedMap,
  map: Y.Map<T>,
  entries: Map<string, T> | undefined,
): T[] {
  if (entries === undefined) return []
  if (index.inForce === undefined) return [...entries.values()]
  return [...entries.values()].filter(
    (entry) => !checkpoint.folds(index.inForce, map, name, entry.id),
  )
}

/** The account's opening in the checkpoint in force, if it has one. */
export const openingOf = (index: AccountIndex, account: string): folding.Opening | undefined =>
  index.inForce?.openings.get(account)

/** The account's ledger balance: its opening plus every transfer after it. */
export const balanceOf = (index: AccountIndex, account: string): money.Units =>
  (openingOf(index, account)?.balance ?? 0n) +
  ledger.balanceOf(transfersOf(index, account), account)

/** Every node's escrow rights to the account: its opening's plus those of the entries after it. */
export function rightsOf(index: AccountIndex, account: string): Map<string, money.Units> {
  const rights = new Map(openingOf(index, account)?.rights ?? [])
  const after = escrow.rightsByNode(transfersOf(index, account), grantsOf(index, account), account)
  for (const [node, units] of after) rights.set(node, (rights.get(node) ?? 0n) + units)
  return rights
}

/** The merged copies noticed since the last call, for the replica to record once. */
export function takeMergedCopies(index: AccountIndex): MergedCopy[] {
  return index.merged.splice(0, index.merged.length)
}
