// Client and operator commands as functions over a shard document. Each validates first and
// writes only after every check has passed, so a rejected command leaves the document unchanged.
// The caller runs each inside one Yjs transaction and persists the resulting update atomically.

import type * as Y from 'yjs'
import * as account from '../domain/account'
import { ok, reject, type Result } from '../domain/result'
import * as ledger from '../domain/ledger'
import * as money from '../domain/money'
import * as withdrawal from '../domain/withdrawal'
import { transfersOf, type AccountIndex } from './account-index'
import * as shard from './shard-doc'

/** Who records a command and when: the only inputs a command takes from its environment. */
export type RecordContext = { node: string; now: number }

export type Written<T> = { record: T; replayed: boolean }

export type CommandRejection =
  'account_not_found' | 'key_not_found' | 'idempotency_conflict' | withdrawal.WithdrawalRejection

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
  input: { keyId: string; accountId: string; scopes: shard.Scope[]; label: string },
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

export type DepositInput = {
  depositId: string
  accountId: string
  amount: money.Units
  requestDigest: string
}

export function deposit(
  doc: Y.Doc,
  input: DepositInput,
  context: RecordContext,
): CommandResult<ledger.Transfer> {
  if (!shard.accounts(doc).has(input.accountId)) return accountNotFound(input.accountId)
  const id = ledger.transferId('deposit', input.accountId, input.depositId)
  const replay = replayOf(doc, id, input.requestDigest)
  if (replay !== undefined) return replay
  // After this point, the operation must succeed.
  const transfer: ledger.Transfer = {
    id,
    kind: 'deposit',
    from: ledger.externalAccount,
    to: input.accountId,
    amount: money.formatUsd(input.amount),
    ts: context.now,
    node: context.node,
    requestDigest: input.requestDigest,
  }
  shard.writeOnce(shard.transfers(doc), id, transfer)
  return written(transfer, false)
}

export type WithdrawalInput = {
  withdrawalId: string
  accountId: string
  amount: money.Units
  requestDigest: string
}

export function withdraw(
  doc: Y.Doc,
  index: AccountIndex,
  input: WithdrawalInput,
  context: RecordContext,
): CommandResult<ledger.Transfer> {
  if (!shard.accounts(doc).has(input.accountId)) return accountNotFound(input.accountId)
  const id = ledger.transferId('withdrawal', input.accountId, input.withdrawalId)
  const replay = replayOf(doc, id, input.requestDigest)
  if (replay !== undefined) return replay
  const decision = withdrawal.decide(figures(index, input.accountId), input.amount)
  if (!decision.ok) return decision
  // After this point, the operation must succeed.
  const transfer: ledger.Transfer = {
    id,
    kind: 'withdrawal',
    from: input.accountId,
    to: ledger.externalAccount,
    amount: money.formatUsd(input.amount),
    ts: context.now,
    node: context.node,
    requestDigest: input.requestDigest,
  }
  shard.writeOnce(shard.transfers(doc), id, transfer)
  return written(transfer, false)
}

/** The figures margin and withdrawal decisions are made on, folded from the account's transfers. */
export const figures = (index: AccountIndex, accountId: string): account.AccountFigures =>
  account.collateralOnly(ledger.balanceOf(transfersOf(index, accountId), accountId))

/** A stored transfer under `id` answers a retry: the same request replays, another conflicts. */
function replayOf(
  doc: Y.Doc,
  id: string,
  requestDigest: string,
): CommandResult<ledger.Transfer> | undefined {
  const existing = shard.transfers(doc).get(id)
  if (existing === undefined) return undefined
  if (existing.requestDigest !== requestDigest) {
    return reject(
      'idempotency_conflict',
      `request id of ${id} was already used with a different payload`,
    )
  }
  return written(existing, true)
}

const accountNotFound = (accountId: string) =>
  reject('account_not_found' as const, `no account ${accountId}`)
