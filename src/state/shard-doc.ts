// The Yjs schema of one shard document. Every value is a plain JSON object written once under a
// unique key (design.md §2.1, §8: plain objects encode 3x smaller than nested Y.Maps); nothing is
// ever overwritten, and nothing derived (a balance, a margin) is stored.

import { createHash } from 'node:crypto'
import * as Y from 'yjs'
import type { Breaker } from '../domain/breakers'
import type { Grant, RightsRequest } from '../domain/escrow'
import type { Transfer } from '../domain/ledger'
import type { Rate } from '../domain/rate-limit'

export type Scope = 'read' | 'trade' | 'withdraw'
export const scopes: readonly Scope[] = ['read', 'trade', 'withdraw']

export type AccountRecord = { accountId: string; createdAt: number; node: string }

export type KeyRecord = {
  keyId: string
  accountId: string
  scopes: Scope[]
  label: string
  /** Its own rate limit; the node's default when null (or absent, in keys made before). */
  rateLimit?: Rate | null
  createdAt: number
  node: string
}

export type Revocation = {
  keyId: string
  revokedAt: number
  node: string
  /** The key that replaced it, when it was revoked by a rotation. */
  replacedBy?: string
}

/** An order's entry in its account's shard: the client order id is taken for good. */
export type OrderRecord = {
  orderId: string
  clientOrderId: string
  accountId: string
  instrument: string
  requestDigest: string
  createdAt: number
  node: string
}

export const accounts = (doc: Y.Doc): Y.Map<AccountRecord> => doc.getMap('accounts')
export const keys = (doc: Y.Doc): Y.Map<KeyRecord> => doc.getMap('keys')
export const revocations = (doc: Y.Doc): Y.Map<Revocation> => doc.getMap('revocations')
export const transfers = (doc: Y.Doc): Y.Map<Transfer> => doc.getMap('transfers')
export const orders = (doc: Y.Doc): Y.Map<OrderRecord> => doc.getMap('orders')
export const grants = (doc: Y.Doc): Y.Map<Grant> => doc.getMap('grants')
export const rightsRequests = (doc: Y.Doc): Y.Map<RightsRequest> => doc.getMap('rightsRequests')

/**
 * What the reconciler found and recorded, never repaired silently: a request id taken twice (two
 * copies merged into one), a broken invariant, a replica's storage repaired from its peers. Keyed by what it is about, so a finding recorded
 * by several nodes is one entry.
 */
export type Finding = {
  id: string
  kind: 'merged_copy' | 'violation' | 'repair' | 'forged_entry'
  /** The invariant (I2–I8) it concerns. */
  invariant: string
  accountId: string | null
  message: string
  evidence: unknown
  ts: number
  node: string
}

export const findings = (doc: Y.Doc): Y.Map<Finding> => doc.getMap('findings')

/**
 * The operator's circuit breakers a document carries: a market's doc those of its instrument
 * and the venue's, every shard's those of withdrawals (domain/breakers.ts folds them).
 */
export const breakers = (doc: Y.Doc): Y.Map<Breaker> => doc.getMap('breakers')

/**
 * The order id of an account's client order id: derived, so every retry of the same client order
 * id at any node names the same order, and ids of different accounts never collide.
 */
export const orderIdOf = (accountId: string, clientOrderId: string): string =>
  'o-' +
  createHash('sha256').update(`${accountId}\u0000${clientOrderId}`).digest('hex').slice(0, 24)

/** Writes `value` under `key` unless the key is taken: entries are immutable once written. */
export function writeOnce<T>(map: Y.Map<T>, key: string, value: T): 'written' | 'present' {
  if (map.has(key)) return 'present'
  map.set(key, value)
  return 'written'
}
