// Shared helpers of the replica tests: stubs of fresh shards, direct SQL reads of their storage,
// and shard documents built outside the replica (for the size tests).

import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import * as Y from 'yjs'
import { readConfig, type Env } from '../../src/config'
import * as money from '../../src/domain/money'
import type { Units } from '../../src/domain/money'
import type { ShardReplica } from '../../src/replica/shard-replica'
import * as accountIndex from '../../src/state/account-index'
import * as commands from '../../src/state/commands'
import { contentDigest } from '../../src/state/digest'
import type { SignerCheck } from '../../src/state/remote-checks'

export const shards = (env as unknown as Env).SHARD

/** The signature checks a replica runs on peer updates, with this environment's keys. */
export const operatorCheck = (): SignerCheck => ({
  publicKey: readConfig(env as unknown as Env).operatorPublicKey,
  nodeKeys: readConfig(env as unknown as Env).nodePublicKeys,
  onForged: () => undefined,
})

/** Every test takes shards of its own: storage is shared by the tests of one file. */
let nextShard = 0
export function freshShard(label: string): DurableObjectStub<ShardReplica> {
  nextShard += 1
  return shards.get(shards.idFromName(`a/shard/${label}-${nextShard}`))
}

export type StoredRow = { seq: number; bytes: number }

/** Rows of the update log, in order, read straight from SQLite. */
export const logRows = (stub: DurableObjectStub<ShardReplica>): Promise<StoredRow[]> =>
  runInDurableObject(stub, (_instance: ShardReplica, state) =>
    state.storage.sql
      .exec<StoredRow>('SELECT seq, LENGTH(body) AS bytes FROM update_log ORDER BY seq')
      .toArray(),
  )

/** The largest value stored in either table: every one must stay under the 128 KiB limit. */
export const largestStoredValue = (stub: DurableObjectStub<ShardReplica>): Promise<number> =>
  runInDurableObject(stub, (_instance: ShardReplica, state) => {
    const { log, chunk } = state.storage.sql
      .exec<{ log: number | null; chunk: number | null }>(
        `SELECT (SELECT MAX(LENGTH(body)) FROM update_log) AS log,
                (SELECT MAX(LENGTH(body)) FROM snapshot_chunk) AS chunk`,
      )
      .one()
    return Math.max(log ?? 0, chunk ?? 0)
  })

export const chunkRows = (stub: DurableObjectStub<ShardReplica>) =>
  runInDurableObject(stub, (_instance: ShardReplica, state) =>
    state.storage.sql
      .exec<{ generation: number; idx: number; bytes: number }>(
        'SELECT generation, idx, LENGTH(body) AS bytes FROM snapshot_chunk ORDER BY generation, idx',
      )
      .toArray(),
  )

export const usd = (whole: number): Units => BigInt(whole) * 1_000_000n

export const depositOf = (accountId: string, depositId: string, amount: Units) => ({
  accountId,
  depositId,
  amount,
  requestDigest: `deposit:${accountId}:${depositId}:${amount}`,
})

export const withdrawalOf = (accountId: string, withdrawalId: string, amount: Units) => ({
  accountId,
  withdrawalId,
  amount,
  requestDigest: `withdrawal:${accountId}:${withdrawalId}:${amount}`,
})

export type BuiltShard = {
  /** Yjs updates in the order they were made, each small enough for one stored value. */
  updates: Uint8Array[]
  /** Expected balance (collateral) of every account, in units. */
  balances: Map<string, Units>
  /** Expected number of ledger entries of every account. */
  entries: Map<string, number>
  deposits: number
  updateBytes: number
  /** Content digest of the built document. */
  digest: string
}

/**
 * Builds a shard document of about `targetBytes` outside any replica, through the same commands
 * the replica runs: `accounts` accounts, then rounds of deposits, `perUpdate` deposits to one Yjs
 * transaction (one update), until the updates hold `targetBytes`. Amounts vary and carry
 * fractional cents so a balance off by one unit shows.
 */
export function buildShard(targetBytes: number, accounts: number, perUpdate: number): BuiltShard {
  const doc = new Y.Doc()
  const index = accountIndex.observe(doc)
  const updates: Uint8Array[] = []
  doc.on('update', (update: Uint8Array) => updates.push(update))
  const context = { node: 'a', now: 1_700_000_000_000 }
  const balances = new Map<string, Units>()
  const entries = new Map<string, number>()
  const accountId = (i: number) => `acct-${i.toString().padStart(5, '0')}`
  doc.transact(() => {
    for (let i = 0; i < accounts; i++) {
      commands.createAccount(doc, { accountId: accountId(i) }, context)
      balances.set(accountId(i), 0n)
      entries.set(accountId(i), 0)
    }
  })
  const updateBytesMax = 100 * 1024
  if (updates[0]!.byteLength > updateBytesMax) throw new Error('too many accounts for one update')
  let updateBytes = updates[0]!.byteLength
  let deposits = 0
  while (updateBytes < targetBytes) {
    doc.transact(() => {
      for (let i = 0; i < perUpdate; i++) {
        const account = accountId(deposits % accounts)
        const amount = BigInt((deposits * 7919) % 1_000_003) + 1n
        const result = commands.deposit(doc, depositOf(account, `dep-${deposits}`, amount), {
          ...context,
          now: context.now + deposits,
        })
        if (!result.ok) throw new Error(result.message)
        balances.set(account, balances.get(account)! + amount)
        entries.set(account, entries.get(account)! + 1)
        deposits += 1
      }
    })
    const update = updates.at(-1)!
    if (update.byteLength > updateBytesMax) throw new Error('too many deposits for one update')
    updateBytes += update.byteLength
  }
  const digest = contentDigest(doc)
  void index
  doc.destroy()
  return { updates, balances, entries, deposits, updateBytes, digest }
}

/**
 * A ledger page, read loosely: the replica has answered with a `next` cursor and with a `more`
 * flag; either way the entries are the account's signed changes in ledger order.
 */
export type LedgerPage = {
  entries: { id: string; ts: number; amount: string; kind: string }[]
  next?: { ts: number; id: string } | null
  more?: boolean
}

/** Whether another page follows, and the cursor to ask for it with. */
export function nextCursor(page: LedgerPage): { ts: number; id: string } | null {
  const last = page.entries.at(-1)
  const more = page.more ?? (page.next !== undefined && page.next !== null)
  return more && last !== undefined ? { ts: last.ts, id: last.id } : null
}

/** The sum of signed ledger amounts, in units. */
export function ledgerSum(page: LedgerPage): Units {
  let sum = 0n
  for (const entry of page.entries) {
    const parsed = money.parse(entry.amount, { ...money.usdTransfer, allowNegative: true })
    if (!parsed.ok) throw new Error(`ledger entry ${entry.id}: ${parsed.message}`)
    sum += parsed.value
  }
  return sum
}
