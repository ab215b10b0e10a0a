// ShardReplica: the Durable Object that holds one shard document of one node.
//
// Lifecycle (partyserver's shape): the constructor loads the document inside
// blockConcurrencyWhile, so no call sees a half-loaded shard. Writes run a command in one Yjs
// transaction, append the resulting update to SQLite in one storage transaction and only then
// return: nothing is acknowledged before it is durable (design.md §3). Compaction folds the log
// into a chunked snapshot on an alarm.

import { DurableObject } from 'cloudflare:workers'
import * as Y from 'yjs'
import { compactionDelayMs, compactionLogBytesMax, compactionLogRowsMax } from '../constants'
import { readConfig, type Env } from '../config'
import { assert } from '../domain/assert'
import * as accountDomain from '../domain/account'
import * as ledger from '../domain/ledger'
import { reject, ok, type Rejected, type Result } from '../domain/result'
import * as accountIndex from '../state/account-index'
import * as commands from '../state/commands'
import { contentDigest, stateVectorDigest } from '../state/digest'
import * as shardDoc from '../state/shard-doc'
import * as outbox from './outbox'
import * as storage from './shard-storage'

/** What a read reflects, so a client can tell a lagging replica from a converged one. */
export type Reflects = { shard: string; stateVectorDigest: string; pending: boolean }
export type Read<T> = Result<{ value: T; reflects: Reflects }, ReadRejection>
export type ReadRejection = 'shard_damaged' | 'account_not_found' | 'not_found'
export type WriteResult<T> =
  | Result<commands.Written<T> & { reflects: Reflects }, commands.CommandRejection>
  | Rejected<'shard_damaged'>

type Loaded = { doc: Y.Doc; index: accountIndex.AccountIndex }
type Shard = { ok: true; loaded: Loaded } | { ok: false; damage: storage.Damage }

export type LedgerEntry = {
  id: string
  kind: ledger.TransferKind
  /** Signed change of the account's balance. */
  amount: string
  ts: number
  node: string
}

export type LedgerCursor = { ts: number; id: string }

export type ShardStatus = {
  shard: string
  damage: storage.Damage | null
  storage: storage.StorageStats
  stateVectorDigest: string | null
  contentDigest: string | null
  pending: boolean
}

export class ShardReplica extends DurableObject<Env> {
  readonly #nodeId: string
  readonly #outbox = outbox.create()
  #shard!: Shard
  /** Size of the log after the snapshot, kept in memory so a write never scans the log. */
  #logTail = { rows: 0, bytes: 0 }

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    this.#nodeId = readConfig(env).nodeId
    void ctx.blockConcurrencyWhile(async () => {
      storage.migrate(ctx.storage.sql)
      this.#shard = this.#load()
    })
  }

  // --- writes -------------------------------------------------------------------------------

  createAccount(input: { accountId: string }): WriteResult<shardDoc.AccountRecord> {
    return this.#write((doc) => commands.createAccount(doc, input, this.#context()))
  }

  createKey(input: Parameters<typeof commands.createKey>[1]): WriteResult<shardDoc.KeyRecord> {
    return this.#write((doc) => commands.createKey(doc, input, this.#context()))
  }

  revokeKey(input: { keyId: string }): WriteResult<shardDoc.Revocation> {
    return this.#write((doc) => commands.revokeKey(doc, input, this.#context()))
  }

  deposit(input: commands.DepositInput): WriteResult<ledger.Transfer> {
    return this.#write((doc) => commands.deposit(doc, input, this.#context()))
  }

  withdraw(input: commands.WithdrawalInput): WriteResult<ledger.Transfer> {
    return this.#write((doc, index) => commands.withdraw(doc, index, input, this.#context()))
  }

  // --- reads --------------------------------------------------------------------------------

  key(keyId: string): Read<{ record: shardDoc.KeyRecord; revoked: boolean }> {
    return this.#read(({ doc }) => {
      const record = shardDoc.keys(doc).get(keyId)
      if (record === undefined) return reject('not_found', `no API key ${keyId}`)
      return ok({ record, revoked: shardDoc.revocations(doc).has(keyId) })
    })
  }

  account(accountId: string): Read<accountDomain.AccountSummary & { createdAt: number }> {
    return this.#read(({ doc, index }) => {
      const record = shardDoc.accounts(doc).get(accountId)
      if (record === undefined) return reject('account_not_found', `no account ${accountId}`)
      const summary = accountDomain.summarize(commands.figures(index, accountId))
      return ok({ ...summary, createdAt: record.createdAt })
    })
  }

  transfer(id: string): Read<ledger.Transfer> {
    return this.#read(({ doc }) => {
      const transfer = shardDoc.transfers(doc).get(id)
      return transfer === undefined ? reject('not_found', `no ${id}`) : ok(transfer)
    })
  }

  /** One page of an account's ledger in the order every node agrees on (time, then id). */
  ledger(
    accountId: string,
    after: LedgerCursor | null,
    limit: number,
  ): Read<{ entries: LedgerEntry[]; next: LedgerCursor | null }> {
    return this.#read(({ doc, index }) => {
      if (!shardDoc.accounts(doc).has(accountId)) {
        return reject('account_not_found', `no account ${accountId}`)
      }
      const ordered = [...accountIndex.transfersOf(index, accountId)]
        .filter((t) => after === null || ledger.compareTransfers(t, { ...t, ...after }) > 0)
        .sort(ledger.compareTransfers)
      const page = ordered.slice(0, limit)
      const last = page.at(-1)
      return ok({
        entries: page.map((t) => ({
          id: t.id,
          kind: t.kind,
          amount: ledger.signedAmount(t, accountId) < 0n ? `-${t.amount}` : t.amount,
          ts: t.ts,
          node: t.node,
        })),
        next: ordered.length > limit && last !== undefined ? { ts: last.ts, id: last.id } : null,
      })
    })
  }

  status(): ShardStatus {
    const sql = this.ctx.storage.sql
    const loaded = this.#shard.ok ? this.#shard.loaded : null
    return {
      shard: this.#shardName(),
      damage: this.#shard.ok ? null : this.#shard.damage,
      storage: storage.stats(sql),
      stateVectorDigest: loaded && stateVectorDigest(loaded.doc),
      contentDigest: loaded && contentDigest(loaded.doc),
      pending: loaded !== null && shardDoc.hasPending(loaded.doc),
    }
  }

  // --- compaction ---------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    this.compact()
  }

  /** Folds the whole log into a new snapshot in one storage transaction. */
  compact(): storage.StorageStats {
    if (this.#shard.ok) {
      const state = Y.encodeStateAsUpdate(this.#shard.loaded.doc)
      const sql = this.ctx.storage.sql
      this.ctx.storage.transactionSync(() => {
        storage.replaceSnapshot(sql, state, storage.stats(sql).lastSeq)
      })
      this.#logTail = { rows: 0, bytes: 0 }
    }
    return storage.stats(this.ctx.storage.sql)
  }

  /** Listens to every update this shard makes durable (the mesh's replication seam). */
  subscribe(listener: outbox.DurableUpdateListener): () => void {
    return outbox.subscribe(this.#outbox, listener)
  }

  // --- internals ----------------------------------------------------------------------------

  #load(): Shard {
    const loaded = storage.load(this.ctx.storage.sql)
    if (!loaded.ok) {
      console.error(
        JSON.stringify({ msg: 'shard damaged', shard: this.#shardName(), ...loaded.damage }),
      )
      return { ok: false, damage: loaded.damage }
    }
    this.#logTail = {
      rows: loaded.tail.length,
      bytes: loaded.tail.reduce((n, row) => n + row.body.byteLength, 0),
    }
    const doc = new Y.Doc()
    Y.transact(doc, () => {
      if (loaded.snapshot !== undefined) Y.applyUpdate(doc, loaded.snapshot)
      for (const row of loaded.tail) Y.applyUpdate(doc, row.body)
    })
    return { ok: true, loaded: { doc, index: accountIndex.observe(doc) } }
  }

  #write<T>(
    run: (doc: Y.Doc, index: accountIndex.AccountIndex) => commands.CommandResult<T>,
  ): WriteResult<T> {
    if (!this.#shard.ok) return this.#damaged()
    const { doc, index } = this.#shard.loaded
    const updates: Uint8Array[] = []
    const capture = (update: Uint8Array) => updates.push(update)
    doc.on('update', capture)
    let result: commands.CommandResult<T>
    try {
      result = doc.transact(() => run(doc, index), this.#nodeId)
    } catch (error) {
      // A command that threw may have written part of its change: rebuild from what is durable.
      this.#shard = this.#load()
      throw error
    } finally {
      doc.off('update', capture)
    }
    assert(updates.length <= 1, 'one command makes at most one update')
    const update = updates[0]
    if (!result.ok) {
      assert(update === undefined, 'a rejected command changes nothing')
      return result
    }
    if (result.value.replayed) assert(update === undefined, 'a replayed command changes nothing')
    else {
      assert(update !== undefined, 'an accepted command makes an update')
      this.#persist(update, this.#nodeId)
    }
    return ok({ ...result.value, reflects: this.#reflects(doc) })
  }

  /** Appends an applied update to the log; only after this returns may it be acknowledged. */
  #persist(update: Uint8Array, origin: string): void {
    const sql = this.ctx.storage.sql
    let seq: number
    try {
      seq = this.ctx.storage.transactionSync(() => storage.append(sql, update, origin))
    } catch (error) {
      // The document holds a change storage refused: drop it by reloading what is durable.
      this.#shard = this.#load()
      throw error
    }
    this.#logTail.rows += 1
    this.#logTail.bytes += update.byteLength
    outbox.offer(this.#outbox, { seq, update, origin })
    void this.#scheduleCompaction()
  }

  async #scheduleCompaction(): Promise<void> {
    const { rows, bytes } = this.#logTail
    if (rows < compactionLogRowsMax && bytes < compactionLogBytesMax) return
    if ((await this.ctx.storage.getAlarm()) !== null) return
    await this.ctx.storage.setAlarm(Date.now() + compactionDelayMs)
  }

  #read<T>(run: (loaded: Loaded) => Result<T, ReadRejection>): Read<T> {
    if (!this.#shard.ok) return this.#damaged()
    const result = run(this.#shard.loaded)
    if (!result.ok) return result
    return ok({ value: result.value, reflects: this.#reflects(this.#shard.loaded.doc) })
  }

  #reflects(doc: Y.Doc): Reflects {
    return {
      shard: this.#shardName(),
      stateVectorDigest: stateVectorDigest(doc),
      pending: shardDoc.hasPending(doc),
    }
  }

  #damaged(): Rejected<'shard_damaged'> {
    assert(!this.#shard.ok, 'only a damaged shard refuses')
    const { where, reason } = this.#shard.damage
    return reject(
      'shard_damaged',
      `shard ${this.#shardName()} refuses to serve: ${where}: ${reason}`,
    )
  }

  #context(): commands.RecordContext {
    return { node: this.#nodeId, now: Date.now() }
  }

  #shardName(): string {
    return this.ctx.id.name ?? this.ctx.id.toString()
  }
}
