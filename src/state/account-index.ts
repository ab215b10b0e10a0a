// An in-memory index from ledger account to its transfers, kept current by observing the shard
// document. It is derived state: rebuilt from the document on load, never stored.

import type * as Y from 'yjs'
import type { Transfer } from '../domain/ledger'
import { transfers } from './shard-doc'

export type AccountIndex = {
  byAccount: Map<string, Map<string, Transfer>>
}

const add = (index: AccountIndex, transfer: Transfer) => {
  for (const account of [transfer.from, transfer.to]) {
    let entries = index.byAccount.get(account)
    if (entries === undefined) index.byAccount.set(account, (entries = new Map()))
    entries.set(transfer.id, transfer)
  }
}

const remove = (index: AccountIndex, transfer: Transfer) => {
  for (const account of [transfer.from, transfer.to])
    index.byAccount.get(account)?.delete(transfer.id)
}

/** Builds the index from the document and keeps it current for every later change. */
export function observe(doc: Y.Doc): AccountIndex {
  const index: AccountIndex = { byAccount: new Map() }
  const map = transfers(doc)
  for (const transfer of map.values()) add(index, transfer)
  map.observe((event) => {
    for (const [key, change] of event.changes.keys) {
      if (change.action !== 'add' && change.oldValue !== undefined) remove(index, change.oldValue)
      if (change.action !== 'delete') add(index, map.get(key)!)
    }
  })
  return index
}

export const transfersOf = (index: AccountIndex, account: string): Iterable<Transfer> =>
  index.byAccount.get(account)?.values() ?? []
