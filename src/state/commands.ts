// Client and operator commands as functions over a shard document. Each validates first and
// writes only after every check has passed, so a rejected command leaves the document unchanged.
// The caller runs each inside one Yjs transaction and persists the resulting update atomically.

import type * as Y from 'yjs'
import { amountUnitsMax } from '../constants'
import { assert } from '../domain/assert'
import * as account from '../domain/account'
import * as escrow from '../domain/escrow'
import { ok, reject, type Result } from '../domain/result'
import * as ledger from '../domain/ledger'
import * as money from '../domain/money'
import * as withdrawal from '../domain/withdrawal'
import { recognizedGrant, recognizedTransfer } from './checkpoint'
import type { SignedMap } from './operator-signature'
import * as shard from './shard-doc'

/**
 * Who records a command and when: the only inputs a command takes from its environment; and,
 * on a node holding the operator's key, how it signs the entries that bring money in.
 */
export type RecordContext = {
  node: string
  now: number
  seal?: (map: SignedMap, entry: Record<string, unknown>) => string
}

export type Written<T> = { record: T; replayed: boolean }

export type CommandRejection =
  | 'account_not_found'
  | 'key_not_found'
  | 'key_revoked'
  | 'idempotency_conflict'
  | withdrawal.WithdrawalRejection
  | 'insufficient_local_rights'

export type CommandResult<T> = Result<Written<T>, CommandRejection>

const written = <T>(record: T, replayed: boolean): CommandResult<T> => ok({ record, replayed })

export function createAccount(
  doc: Y.Doc,
  input: { accountId: string },
  context: RecordContext,
): CommandResult<shard.AccountRecord> {
  const existing = shard.accounts(doc).get(input.accountId)
  if (existing !== undefined) return written(existing, true)
  // After this point, the operation must succeed.
  const record = { accountId: input.accountId, createdAt: context.now, node: context.node }
  shard.accounts(doc).set(input.accountId, record)
  return written(record, false)
}

export function createKey(
  doc: Y.Doc,
  input: Omit<shard.KeyRecord, 'createdAt' | 'node'>,
  context: RecordContext,
): CommandResult<shard.KeyRecord> {
  if (!shard.accounts(doc).has(input.accountId)) return accountNotFound(input.accountId)
  if (shard.keys(doc).has(input.keyId)) {
    return reject('idempotency_conflict', `key ${input.keyId} already exists`)
  }
  // After this point, the operation must succeed.
  const record = { ...input, scopes: [...input.scopes], createdAt: context.now, node: context.node }
  shard.keys(doc).set(input.keyId, record)
  return written(record, false)
}

export function revokeKey(
  doc: Y.Doc,
  input: { keyId: string },
  context: RecordContext,
): CommandResult<shard.Revocation> {
  if (!shard.keys(doc).has(input.keyId)) {
    return reject('key_not_found', `no API key ${input.keyId}`)
  }
  const existing = shard.revocations(doc).get(input.keyId)
  if (existing !== undefined) return written(existing, true)
  // After this point, the operation must succeed.
  const record = { keyId: input.keyId, revokedAt: context.now, node: context.node }
  shard.revocations(doc).set(input.keyId, record)
  return written(record, false)
}

export type Rotated = { key: shard.KeyRecord; revocation: shard.Revocation }

/**
 * Replaces a key with `newKeyId`: the same account, scopes, label and rate limit, and the old key
 * revoked in the same transaction (no grace period: a key is often rotated because it leaked).
 * A retry replays the rotation that took place; a key revoked otherwise cannot be rotated.
 */
export function rotateKey(
  doc: Y.Doc,
  input: { keyId: string; newKeyId: string },
  context: RecordContext,
): CommandResult<Rotated> {
  const old = shard.keys(doc).get(input.keyId)
  if (old === undefined) return reject('key_not_found', `no API key ${input.keyId}`)
  const revoked = shard.revocations(doc).get(input.keyId)
  if (revoked !== undefined) {
    const replacement =
      revoked.replacedBy === undefined ? undefined : shard.keys(doc).get(revoked.replacedBy)
    if (replacement !== undefined) return written({ key: replacement, revocation: revoked }, true)
    return reject('key_revoked', `API key ${input.keyId} was revoked: create a new key instead`)
  }
  if (shard.keys(doc).has(input.newKeyId)) {
    return reject('idempotency_conflict', `key ${input.newKeyId} already exists`)
  }
  // After this point, the operation must succeed.
  const key = createKey(doc, { ...old, keyId: input.newKeyId }, context)
  assert(key.ok, 'the new key is written')
  const revocation = {
    keyId: input.keyId,
    revokedAt: context.now,
    node: context.node,
    replacedBy: input.newKeyId,
  }
  shard.revocations(doc).set(input.keyId, revocation)
  return written({ key: key.value.record, revocation }, false)
}

export type DepositInput = {
  depositId: string
  accountId: string
  amount: money.Units
  /** When the operator made the request (the admin API takes it within its receive window). */
  signedAt?: number
  requestDigest: string
}

export function deposit(
  doc: Y.Doc,
  input: DepositInput,
  context: RecordContext,
): CommandResult<ledger.Transfer> {
  assertTransferAmount(input.amount)
  if (!shard.accounts(doc).has(input.accountId)) return accountNotFound(input.accountId)
  const id = ledger.transferId('deposit', input.accountId, input.depositId)
  const replay = replayOf(doc, id, input.requestDigest)
  if (replay !== undefined) return replay
  // After this point, the operation must succeed.
  return recordTransfer(doc, id, 'deposit', ledger.externalAccount, input.accountId, input, context)
}

export type WithdrawalInput = {
  withdrawalId: string
  accountId: string
  amount: money.Units
  requestDigest: string
}

/** The stored answer to a retried withdrawal id: a replay, a conflict, or undefined if new. */
export const existingWithdrawal = (doc: Y.Doc, input: WithdrawalInput) =>
  replayOf(
    doc,
    ledger.transferId('withdrawal', input.accountId, input.withdrawalId),
    input.requestDigest,
  )

/**
 * Approves a withdrawal against `figures`, the account's figures across shard and markets, and
 * within what this node may spend of the account (`spendable`, its escrow rights).
 */
export function withdraw(
  doc: Y.Doc,
  input: WithdrawalInput,
  figures: account.AccountFigures,
  spendable: escrow.Spendable,
  context: RecordContext,
): CommandResult<ledger.Transfer> {
  assertTransferAmount(input.amount)
  if (!shard.accounts(doc).has(input.accountId)) return accountNotFound(input.accountId)
  const id = ledger.transferId('withdrawal', input.accountId, input.withdrawalId)
  const replay = replayOf(doc, id, input.requestDigest)
  if (replay !== undefined) return replay
  const decision = withdrawal.decide(figures, input.amount)
  if (!decision.ok) return decision
  if (input.amount > spendable.usable) return lacksRights(context.node, spendable)
  // After this point, the operation must succeed.
  return recordTransfer(
    doc,
    id,
    'withdrawal',
    input.accountId,
    ledger.externalAccount,
    input,
    context,
  )
}

export type OrderRecordInput = Omit<shard.OrderRecord, 'createdAt' | 'node'>

/** The stored record of an order id: replayed for the same request, a conflict for another. */
export function existingOrder(
  doc: Y.Doc,
  input: OrderRecordInput,
): CommandResult<shard.OrderRecord> | undefined {
  const existing = shard.orders(doc).get(input.orderId)
  if (existing === undefined) return undefined
  if (existing.requestDigest !== input.requestDigest) {
    return reject(
      'idempotency_conflict',
      `clientOrderId ${input.clientOrderId} was already used with a different order`,
    )
  }
  return written(existing, true)
}

/** Takes the client order id for good, after the risk check has passed. */
export function recordOrder(
  doc: Y.Doc,
  input: OrderRecordInput,
  context: RecordContext,
): CommandResult<shard.OrderRecord> {
  if (!shard.accounts(doc).has(input.accountId)) return accountNotFound(input.accountId)
  const existing = existingOrder(doc, input)
  if (existing !== undefined) return existing
  // After this point, the operation must succeed.
  const record = { ...input, createdAt: context.now, node: context.node }
  shard.orders(doc).set(input.orderId, record)
  return written(record, false)
}

/** The refusal of a spend beyond this node's rights; the caller asks its peers for more. */
export const lacksRights = (node: string, spendable: escrow.Spendable) =>
  reject(
    'insufficient_local_rights' as const,
    `node ${node} may spend ${money.formatUsd(spendable.usable)} USD of this account now (its ` +
      `rights ${money.formatUsd(spendable.rights)} USD less ${money.formatUsd(spendable.commitment)} ` +
      'USD committed); it has asked its peers for rights: retry shortly',
  )

/** The id of the grant `from` makes for a request: one per request and giver. */
const grantId = (requestId: string, from: string) => `${requestId}/${from}`

/**
 * Asks `peers` for rights, unless a request of this node for the account is still open (fresh,
 * and no peer has granted it yet).
 */
export function requestRights(
  doc: Y.Doc,
  accountId: string,
  shortfall: money.Units,
  peers: readonly string[],
  context: RecordContext,
  freshMs: number,
): escrow.RightsRequest | undefined {
  const requests = shard.rightsRequests(doc)
  const grants = shard.grants(doc)
  const answered = (requestId: string) =>
    peers.some((peer) => {
      const id = grantId(requestId, peer)
      return grants.has(id) || recognizedGrant(doc, id)
    })
  const prefix = `${accountId}/${context.node}/`
  for (const [id, request] of requests) {
    if (!id.startsWith(prefix)) continue
    if (escrow.requestOpen(request, answered(id), context.now, freshMs)) return undefined
  }
  const request = {
    id: `${prefix}${context.now}`,
    accountId,
    node: context.node,
    amount: money.formatUsd(shortfall),
    ts: context.now,
  }
  shard.writeOnce(requests, request.id, request)
  return request
}

/** Gives `amount` of this node's rights to the node that asked; once per request and giver. */
export function grantRights(
  doc: Y.Doc,
  request: escrow.RightsRequest,
  amount: money.Units,
  context: RecordContext,
): escrow.Grant | undefined {
  assert(request.node !== context.node, 'a node does not grant itself')
  assert(amount > 0n && amount <= amountUnitsMax, 'a grant amount is positive and within limits')
  const grant = {
    id: grantId(request.id, context.node),
    accountId: request.accountId,
    from: context.node,
    to: request.node,
    amount: money.formatUsd(amount),
    ts: context.now,
  }
  if (recognizedGrant(doc, grant.id)) return undefined
  return shard.writeOnce(shard.grants(doc), grant.id, grant) === 'written' ? grant : undefined
}

function recordTransfer(
  doc: Y.Doc,
  id: string,
  kind: ledger.TransferKind,
  from: string,
  to: string,
  input: { amount: money.Units; requestDigest: string; signedAt?: number },
  context: RecordContext,
): CommandResult<ledger.Transfer> {
  const transfer: ledger.Transfer = {
    id,
    kind,
    from,
    to,
    amount: money.formatUsd(input.amount),
    ts: context.now,
    node: context.node,
    requestDigest: input.requestDigest,
    ...(input.signedAt !== undefined && { signedAt: input.signedAt }),
  }
  if (kind === 'deposit' && context.seal !== undefined) {
    transfer.signature = context.seal('transfers', transfer)
  }
  assert(
    shard.writeOnce(shard.transfers(doc), id, transfer) === 'written',
    'a new transfer id is free',
  )
  return written(transfer, false)
}

/**
 * A stored transfer under `id` answers a retry: the same request replays, another conflicts. A
 * transfer an epoch checkpoint folded answers from the checkpoint while it recognises the id.
 */
function replayOf(
  doc: Y.Doc,
  id: string,
  requestDigest: string,
): CommandResult<ledger.Transfer> | undefined {
  const existing = shard.transfers(doc).get(id) ?? recognizedTransfer(doc, id)
  if (existing === undefined) return undefined
  if (existing.requestDigest !== requestDigest) {
    return reject(
      'idempotency_conflict',
      `request id of ${id} was already used with a different payload`,
    )
  }
  return written(existing, true)
}

/** Amounts are validated at the API; a bad one here is a programmer error, never stored. */
function assertTransferAmount(amount: money.Units): void {
  assert(amount > 0n, 'a transfer amount is positive')
  assert(amount <= amountUnitsMax, 'a transfer amount is within the limit')
}

const accountNotFound = (accountId: string) =>
  reject('account_not_found' as const, `no account ${accountId}`)
