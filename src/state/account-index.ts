// An in-memory index from ledger account to its transfers and rights grants, kept current by
// observing the shard document. It is derived state: rebuilt from the document on load, never
// stored. It also notices when a merge replaced one copy of a transfer with another (the same
// request id taken on both sides of a partition), for the replica to record (I3).

import type * as Y from 'yjs'
import type { Grant } from '../domain/escrow'
import type { Transfer } from '../domain/ledger'
import { grants, transfers } from './shard-doc'

/** Two copies of one transfer id met in a merge; the document keeps one, the same everywhere. */
export type MergedCopy = { id: string; kept: Transfer; dropped: Transfer }

export type AccountIndex = {
  byAccount: Map<string, Map<string, Transfer>>
  grantsByAccount: Map<string, Map<string, Grant>>
  /** Copies merged away since the replica last took them (see `takeMergedCopies`). */
  merged: MergedCopy[]
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
  const index: AccountIndex = { byAccount: new Map(), grantsByAccount: new Map(), merged: [] }
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

export const transfersOf = (index: AccountIndex, account: string): Iterable<Transfer> =>
  index.byAccount.get(account)?.values() ?? []

export const grantsOf = (index: AccountIndex, account: string): Iterable<Grant> =>
  index.grantsByAccount.get(account)?.values() ?? []

/** The merged copies noticed since the last call, for the replica to record once. */
export function takeMergedCopies(index: AccountIndex): MergedCopy[] {
  return index.merged.splice(0, index.merged.length)
}
