// The Yjs schema of one shard document. Every value is a plain JSON object written once under a
// unique key (design.md §2.1, §8: plain objects encode 3x smaller than nested Y.Maps); nothing is
// ever overwritten, and nothing derived (a balance, a margin) is stored.

import { createHash } from 'node:crypto'
import * as Y from 'yjs'
import type { Breaker } from '../domain/breakers'
import type { StoredOpening } from '../domain/checkpoint'
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
  kind: 'merged_copy' | 'violation' | 'repair' | 'forged_entry' | 'checkpoint_mismatch'
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
 * An epoch checkpoint (src/state/checkpoint.ts): the fold of every transfer and grant inside its
 * cut, on top of its base (the checkpoint in force when it was cut), keyed by `checkpointKey`.
 */
export type Checkpoint = {
  id: string
  epoch: number
  shard: number
  /** The epoch of the checkpoint it builds on; null for the shard's first. */
  base: number | null
  /** The cut: a state vector (Yjs client id → clock), with no pending structs behind it. */
  cut: Record<string, number>
  /** The writer's clock when it took the cut. */
  cutTime: number
  writer: string
  /** Every node that must acknowledge it before the entries it folds are compacted. */
  members: string[]
  /** Every ledger account's balance and rights as of the cut. */
  openings: Record<string, StoredOpening>
  /** Client accounts of the cut, each a leaf of the Merkle root. */
  accountIds: string[]
  /** Folded transfers whose request ids must still replay or conflict (domain/checkpoint.ts). */
  recognized: Record<string, Transfer>
  /** Folded grants (id → when granted) whose ids must never be granted again. */
  recognizedGrants: Record<string, number>
  /** Merkle root of the accounts' balances (domain/merkle.ts). */
  root: string
}

/** A node's word that its own fold up to the cut gives the checkpoint's root: signed by it. */
export type CheckpointAck = {
  id: string
  epoch: number
  node: string
  root: string
  /** The node's Ed25519 public key (base64url, raw 32 bytes) and its signature (base64url). */
  publicKey: string
  signature: string
}

export const checkpointKey = (epoch: number): string => String(epoch).padStart(16, '0')
export const ackKey = (epoch: number, node: string): string => `${checkpointKey(epoch)}/${node}`

export const checkpoints = (doc: Y.Doc): Y.Map<Checkpoint> => doc.getMap('checkpoints')
export const checkpointAcks = (doc: Y.Doc): Y.Map<CheckpointAck> => doc.getMap('checkpointAcks')

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
