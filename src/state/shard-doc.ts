// The Yjs schema of one shard document. Every value is a plain JSON object written once under a
// unique key (design.md §2.1, §8: plain objects encode 3x smaller than nested Y.Maps); nothing is
// ever overwritten, and nothing derived (a balance, a margin) is stored.

import * as Y from 'yjs'
import type { Transfer } from '../domain/ledger'

export type Scope = 'read' | 'trade' | 'withdraw'
export const scopes: readonly Scope[] = ['read', 'trade', 'withdraw']

export type AccountRecord = { accountId: string; createdAt: number; node: string }

export type KeyRecord = {
  keyId: string
  accountId: string
  scopes: Scope[]
  label: string
  createdAt: number
  node: string
}

export type Revocation = { keyId: string; revokedAt: number; node: string }

export const accounts = (doc: Y.Doc): Y.Map<AccountRecord> => doc.getMap('accounts')
export const keys = (doc: Y.Doc): Y.Map<KeyRecord> => doc.getMap('keys')
export const revocations = (doc: Y.Doc): Y.Map<Revocation> => doc.getMap('revocations')
export const transfers = (doc: Y.Doc): Y.Map<Transfer> => doc.getMap('transfers')

/** Writes `value` under `key` unless the key is taken: entries are immutable once written. */
export function writeOnce<T>(map: Y.Map<T>, key: string, value: T): 'written' | 'present' {
  if (map.has(key)) return 'present'
  map.set(key, value)
  return 'written'
}

/** True when the document holds updates whose dependencies have not arrived (design.md §2.4). */
export const hasPending = (doc: Y.Doc): boolean =>
  doc.store.pendingStructs !== null || doc.store.pendingDs !== null
