// ShardReplica: the Durable Object that holds one account shard document of one node: accounts,
// API keys, ledger transfers (deposits, withdrawals) and the client order ids taken.
//
// Lifecycle (partyserver's shape): the constructor loads the document inside
// blockConcurrencyWhile, so no call sees a half-loaded shard. Writes run a command in one Yjs
// transaction and append its update to SQLite before returning: nothing is acknowledged before it
// is durable (design.md §3). Decisions that spend an account's free collateral (withdrawals,
// orders) read the markets and run under the account's lock.

import { DurableObject } from 'cloudflare:workers'
import type * as Y from 'yjs'
import { readConfig, type Durability, type Env, type NodeConfig } from '../config'
import { majorityLostGraceMs, rightsDemandWindowMs, rightsRequestFreshMs } from '../constants'
import * as accountDomain from '../domain/account'
import * as audits from '../domain/audits'
import { assert } from '../domain/assert'
import type { AccountFigures } from '../domain/account'
import { modeOf, type Breaker, type BreakerMode } from '../domain/breakers'
import * as escrow from '../domain/escrow'
import * as money from '../domain/money'
import * as ledger from '../domain/ledger'
import { reject, ok, type Rejected, type Result } from '../domain/result'
import * as accountIndex from '../state/account-index'
import * as instruments from '../domain/instrument'
import type { RiskRejection } from '../domain/risk'
import {
  accountFigures,
  orderRisk,
  staleMarkUnder,
  type AccountMarketState,
} from '../state/account-figures'
import * as commands from '../state/commands'
import type { OrderInput } from '../state/market-doc'
import type { OrderView } from '../state/market-state'
import { hasPending } from '../state/digest'
import { seal, verified, type SignedMap } from '../state/operator-signature'
import { shardChecks } from '../state/remote-checks'
import * as checkpointRules from '../state/checkpoint'
import type { AccountProof } from '../state/state-proof'
import * as folding from '../domain/checkpoint'
import * as merkle from '../domain/merkle'
import * as shardDoc from '../state/shard-doc'
import { lockQueueDepth, withAccountLock, type AccountLocks } from './account-lock'
import { marketStub } from './addressing'
import * as replication from '../mesh/replication'
import * as durable from './durable-doc'
import * as replicaMesh from './replica-mesh'
import * as replicaMetrics from './replica-metrics'
import type { MarketRejection } from './market-replica'
import { forgedRecorder, recentFindings } from './forged-findings'
import * as auditFindings from './audit-findings'
import { violationAgainst } from './audit-findings'
import * as checkpoints from './checkpoints'
import * as outbox from './outbox'
import * as rateBuckets from './rate-buckets'
import * as storage from './shard-storage'
import * as clock from '../clock'

export type Reflects = durable.Reflects
export type ShardStatus = durable.DocStatus
export type MeshStatus = durable.DocStatus & {
  links: ReturnType<typeof replication.status>
  liveness: ReturnType<typeof replication.livenessOf>
}
export type ReadRejection = 'shard_damaged' | 'shard_syncing' | 'account_not_found' | 'not_found'
export type Read<T> = Result<{ value: T; reflects: Reflects }, ReadRejection>
export type WriteResult<T> =
  | Result<commands.Written<T> & { reflects: Reflects }, commands.CommandRejection>
  | Rejected<'shard_damaged' | 'shard_syncing'>

export type OrderRejection =
  | commands.CommandRejection
  | MarketRejection
  | RiskRejection
  | 'outcome_unknown'
  | 'shard_pending'
  | 'account_busy'
  | 'market_restricted'
  | 'shard_syncing'
export type OrderResult = Result<
  { view: OrderView; replayed: boolean; reflects: Reflects },
  OrderRejection
>

export type AccountView = accountDomain.AccountSummary & {
  createdAt: number
  markets: AccountMarketState[]
  rights: { byNode: Record<string, string>; usableHere: string; majorityContact: boolean }
}

export class ShardReplica extends DurableObject<Env> {
  readonly #config: NodeConfig
  readonly #locks: AccountLocks = new Map()
  readonly #buckets: rateBuckets.RateBuckets = new Map()
  #held!: durable.DurableDoc
  #shard!: number
  #index!: accountIndex.AccountIndex
  #mesh!: replication.Replication
  /** When this node last lost contact with a majority of the mesh; null while it has it. */
  #majorityLostAt: number | null = null
  /** The last settlement epoch this shard was audited at (see `audit`). */
  #auditedEpoch: number | null = null
  /** Peers' rights requests that arrived since the last remote update was handled. */
  readonly #asked = new Set<string>()

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    this.#config = readConfig(env)
    void ctx.blockConcurrencyWhile(async () => {
      const name = storage.rememberName(ctx.storage.sql, ctx.id.name) ?? ctx.id.toString()
      const shard = Number(name.slice(name.lastIndexOf('/') + 1))
      this.#shard = shard
      this.#held = durable.open(
        name,
        ctx.storage,
        (doc) => {
          this.#index = accountIndex.observe(doc)
          shardDoc.rightsRequests(doc).observe((event) => {
            if (!event.transaction.local) for (const id of event.keysChanged) this.#asked.add(id)
          })
        },
        shardChecks(shard, this.#config.shardCount, {
          publicKey: this.#config.operatorPublicKey,
          nodeKeys: this.#config.nodePublicKeys,
          onForged: forgedRecorder(() => this.#held, this.#config.nodeId),
        }),
      )
      this.#mesh = replicaMesh.attach(env, this.#config, this.#held, () => this.#afterRemote())
      await this.#scheduleCheckpoint()
    })
  }

  /** Inbound mesh links, forwarded by the Worker after it verified the peer's token. */
  override async fetch(request: Request): Promise<Response> {
    return replicaMesh.acceptUpgrade(this.#mesh, request)
  }

  /** Node `peer` is reachable: another replica of this node has a link to it again. */
  peerReachable(peer: string): void {
    replication.prompt(this.#mesh, peer)
  }

  meshStatus(): MeshStatus & { findings: shardDoc.Finding[] } {
    return {
      ...durable.status(this.#held),
      links: replication.status(this.#mesh),
      liveness: replication.livenessOf(this.#mesh),
      findings: recentFindings(this.#held),
    }
  }

  /** This document's whole state at one instant, for a snapshot export. */
  snapshot(): ReturnType<typeof replicaMesh.snapshot> {
    return replicaMesh.snapshot(this.#held)
  }

  /** Loads a snapshot's update as a peer's update is taken (remote checks, durable append). */
  restore(update: Uint8Array): ReturnType<typeof replicaMesh.restore> {
    return replicaMesh.restore(this.#mesh, update)
  }

  /** Counters and queue depths for `GET /metrics`; no digests, so it is cheap to scrape. */
  metrics(): replicaMetrics.ReplicaMetrics {
    return replicaMetrics.gather(this.#held, this.#mesh, {
      lockQueueDepth: lockQueueDepth(this.#locks),
      settlement: null,
      lease: null,
      checkpoint: {
        inForceEpoch: this.#index.inForce?.checkpoint.epoch ?? null,
        waiting:
          this.#held.state.ok &&
          (checkpointRules.latest(this.#held.state.doc)?.epoch ?? null) !==
            (this.#index.inForce?.checkpoint.epoch ?? null),
      },
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

  rotateKey(input: { keyId: string; newKeyId: string }): WriteResult<commands.Rotated> {
    return this.#write((doc) => commands.rotateKey(doc, input, this.#context()))
  }

  /** Records a deposit, signed with the operator's key (only a node holding it takes deposits). */
  async deposit(
    input: commands.DepositInput,
    durability: Durability = 'local',
  ): Promise<WriteResult<ledger.Transfer> | Rejected<'quorum_timeout' | 'no_operator_key'>> {
    if (this.#config.operatorSigningKey === null) return noOperatorKey()
    return this.#durably(
      durability,
      this.#write((doc) => commands.deposit(doc, input, this.#context())),
    )
  }

  /** Approves a withdrawal only within what the account's figures across all markets allow. */
  async withdraw(
    input: commands.WithdrawalInput,
    durability: Durability = 'local',
  ): Promise<
    | WriteResult<ledger.Transfer>
    | Rejected<
        MarketRejection | 'mark_stale' | 'shard_pending' | 'account_busy' | 'withdrawals_halted'
      >
  > {
    // A retry of a withdrawal already taken replays before anything can fail on the way.
    if (!durable.serving(this.#held)) return this.#damaged()
    const existing = commands.existingWithdrawal(this.#held.state.doc, input)
    if (existing !== undefined) {
      if (!existing.ok) return existing
      return this.#durably(
        durability,
        ok({ ...existing.value, reflects: durable.reflects(this.#held) }),
      )
    }
    const halted = this.#withdrawalsHalted(input.accountId)
    if (halted !== undefined) return halted
    const approved = await withAccountLock(this.#locks, input.accountId, async () => {
      const pending = this.#refusePending()
      if (pending !== undefined) return pending
      const markets = await this.#markets(input.accountId)
      if (!markets.ok) return markets
      // A market's audit that names the account halts its withdrawals as the shard's own does.
      const flagged = markets.value.find((state) => state.violation !== null)
      if (flagged !== undefined) return violationHalt(input.accountId, flagged.violation!)
      const stale = staleMarkUnder(markets.value)
      if (stale !== undefined) {
        return reject(
          'mark_stale',
          `the mark of ${stale} is missing or stale: withdrawals wait for a fresh one`,
        )
      }
      const figures = accountFigures(
        this.#index,
        input.accountId,
        markets.value,
        this.#config.instruments,
      )
      const spendable = this.#spendable(input.accountId, figures)
      const written = this.#write((doc) =>
        commands.withdraw(doc, input, figures, spendable, this.#context()),
      )
      if (!written.ok && written.code === 'insufficient_local_rights') {
        this.#askForRights(input.accountId, input.amount - spendable.usable)
      }
      return written
    })
    return this.#durably(durability, approved)
  }

  /**
   * Places an order: takes its client order id for good and has the instrument's matcher decide
   * it, after a risk check that the account's available balance covers its initial margin. A retry
   * of the same client order id replays; one that finds the matcher never saw it submits it again.
   */
  async placeOrder(
    input: OrderInput & { instrument: string; requestDigest: string },
    durability: Durability = 'local',
  ): Promise<OrderResult> {
    const placed = await withAccountLock(this.#locks, input.accountId, async () => {
      if (!durable.serving(this.#held)) return this.#damaged()
      const record = { ...pick(input), orderId: input.orderId }
      const existing = commands.existingOrder(this.#held.state.doc, record)
      if (existing !== undefined && !existing.ok) return existing
      const market = marketStub(this.env, this.#config, input.instrument)
      if (existing !== undefined) {
        const seen = await market.replay(
          input.orderId,
          input.accountId,
          existing.value.record.createdAt,
        )
        if (seen.ok) {
          return ok({ view: seen.value.value, replayed: true, reflects: seen.value.reflects })
        }
        if (seen.code === 'order_history_folded') return seen
        // Taken before, and the matcher cannot say whether it saw it: the outcome is unknown.
        if (seen.code !== 'not_found') return outcomeUnknown(seen.message)
      }
      // An order that cannot reach its matcher is refused before it takes anything.
      if (!(await market.matchable())) return homeUnreachable(input.instrument)
      const risk = await this.#riskCheck(input)
      if (!risk.ok) return risk
      const taken = this.#write((doc) => commands.recordOrder(doc, record, this.#context()))
      if (!taken.ok) return taken
      const priced = { ...orderInputOf(input), price: risk.value.price }
      let decided: Awaited<ReturnType<typeof market.submit>>
      try {
        decided = await market.submit(priced, durability)
      } catch (error) {
        return outcomeUnknown(String(error))
      }
      if (!decided.ok) return decided
      return ok({ view: decided.value.value, replayed: false, reflects: decided.value.reflects })
    })
    // The order's record in its account shard is as durable as its step in the market.
    return this.#durably(durability, placed)
  }

  // --- reads --------------------------------------------------------------------------------

  key(keyId: string): Read<{ record: shardDoc.KeyRecord; revoked: boolean }> {
    return this.#read((doc) => {
      const record = shardDoc.keys(doc).get(keyId)
      if (record === undefined) return reject('not_found', `no API key ${keyId}`)
      return ok({ record, revoked: shardDoc.revocations(doc).has(keyId) })
    })
  }

  /**
   * Resolves a signed request's key and takes a token of its rate limit in `lane` (a revoked or
   * unknown key takes none). `retryAfterMs` is null when the request is admitted.
   */
  admitKey(
    keyId: string,
    lane: rateBuckets.Lane,
  ): Read<{ record: shardDoc.KeyRecord; revoked: boolean; retryAfterMs: number | null }> {
    const key = this.key(keyId)
    if (!key.ok) return key
    const { record, revoked } = key.value.value
    let retryAfterMs: number | null = null
    if (!revoked) {
      const rate = record.rateLimit ?? this.#config.keyRate
      const taken = rateBuckets.take(this.#buckets, keyId, lane, rate, clock.now())
      if (!taken.admitted) retryAfterMs = taken.retryAfterMs
    }
    return ok({ ...key.value, value: { record, revoked, retryAfterMs } })
  }

  order(accountId: string, orderId: string): Read<shardDoc.OrderRecord> {
    return this.#read((doc) => {
      const record = shardDoc.orders(doc).get(orderId)
      if (record === undefined || record.accountId !== accountId)
        return reject('not_found', `no order ${orderId}`)
      return ok(record)
    })
  }

  async account(accountId: string): Promise<Read<AccountView> | Rejected<MarketRejection>> {
    const markets = await this.#markets(accountId)
    if (!markets.ok) return markets
    return this.#read((doc) => {
      const record = shardDoc.accounts(doc).get(accountId)
      if (record === undefined) return reject('account_not_found', `no account ${accountId}`)
      const figures = accountFigures(
        this.#index,
        accountId,
        markets.value,
        this.#config.instruments,
      )
      const rights = this.#rights(accountId)
      return ok({
        ...accountDomain.summarize(figures),
        createdAt: record.createdAt,
        markets: markets.value,
        rights: {
          byNode: Object.fromEntries(
            [...rights].map(([node, units]) => [node, money.formatUsd(units)]),
          ),
          usableHere: money.formatUsd(this.#spendable(accountId, figures).usable),
          majorityContact: this.#majorityContact(),
        },
      })
    })
  }

  /** The account's cross-margin figures, for the settlement reconciler's margin check. */
  async figures(
    accountId: string,
  ): Promise<Result<AccountFigures, ReadRejection | MarketRejection>> {
    const markets = await this.#markets(accountId)
    if (!markets.ok) return markets
    if (!durable.serving(this.#held)) return this.#damaged()
    if (!shardDoc.accounts(this.#held.state.doc).has(accountId)) {
      return this.#unlessSyncing(reject('account_not_found', `no account ${accountId}`))
    }
    return ok(accountFigures(this.#index, accountId, markets.value, this.#config.instruments))
  }

  transfer(id: string): Read<ledger.Transfer> {
    return this.#read((doc) => {
      // A folded transfer stays readable while its checkpoint recognises its request id.
      const transfer =
        shardDoc.transfers(doc).get(id) ?? checkpointRules.recognizedTransfer(doc, id)
      return transfer === undefined ? reject('not_found', `no ${id}`) : ok(transfer)
    })
  }

  /** One page of the account's shard transfers in the order every node agrees on (time, then id). */
  ledger(
    accountId: string,
    after: ledger.LedgerCursor | null,
    limit: number,
  ): Read<{ entries: ledger.LedgerEntry[]; more: boolean }> {
    return this.#read((doc) => {
      if (!shardDoc.accounts(doc).has(accountId))
        return reject('account_not_found', `no account ${accountId}`)
      const inForce = this.#index.inForce?.checkpoint
      const opening = accountIndex.openingOf(this.#index, accountId)
      return ok(
        ledger.page(
          accountIndex.transfersOf(this.#index, accountId),
          accountId,
          after,
          limit,
          inForce === undefined || opening === undefined
            ? null
            : {
                id: `checkpoint/${inForce.epoch}`,
                kind: 'opening_balance',
                amount: money.formatUsd(opening.balance),
                ts: inForce.cutTime,
                node: inForce.writer,
              },
        ),
      )
    })
  }

  status(): ShardStatus {
    return durable.status(this.#held)
  }

  // --- compaction and replication seam -----------------------------------------------------

  override async alarm(): Promise<void> {
    await replicaMesh.maintain(this.ctx.storage, this.#held, this.#mesh)
    this.checkpoint(checkpoints.dueEpoch(this.#config))
    await this.#scheduleCheckpoint()
  }

  /**
   * Takes every epoch checkpoint step this node may take now: cuts `epoch` if this node is the
   * writer (null: none), acknowledges the latest checkpoint, compacts the one in force.
   */
  checkpoint(epoch: number | null): checkpoints.StepReport {
    return checkpoints.step(this.#held, this.#index, this.#config, this.#shard, epoch)
  }

  /** The checkpoint in force and the latest written, for status reads and proofs. */
  checkpointState(): {
    inForce: shardDoc.Checkpoint | null
    latest: shardDoc.Checkpoint | null
    acks: shardDoc.CheckpointAck[]
  } {
    const inForce = this.#index.inForce?.checkpoint ?? null
    if (!this.#held.state.ok) return { inForce, latest: null, acks: [] }
    const doc = this.#held.state.doc
    const acks =
      inForce?.members.flatMap(
        (node) => shardDoc.checkpointAcks(doc).get(shardDoc.ackKey(inForce.epoch, node)) ?? [],
      ) ?? []
    const latest = checkpointRules.latest(doc) ?? null
    return { inForce, latest, acks }
  }

  /**
   * The account's state proof from the checkpoint in force: its leaf, the leaf's Merkle path and
   * the members' signatures over the root (src/state/state-proof.ts checks it).
   */
  accountProof(accountId: string): Read<AccountProof> {
    return this.#read(() => {
      const inForce = this.#index.inForce
      if (inForce === undefined) {
        return reject('not_found', 'no checkpoint of this shard is in force yet')
      }
      const { checkpoint } = inForce
      const leaves = folding.leavesOf(inForce.openings, checkpoint.accountIds)
      const proof = merkle.proof(leaves, accountId)
      if (proof === undefined) {
        return reject('not_found', `account ${accountId} is not in checkpoint ${checkpoint.epoch}`)
      }
      return ok({
        shard: checkpoint.shard,
        epoch: checkpoint.epoch,
        cutTime: checkpoint.cutTime,
        root: checkpoint.root,
        leaf: proof.leaf,
        path: proof.path,
        signatures: this.checkpointState().acks.map(({ node, publicKey, signature }) => ({
          node,
          publicKey,
          signature,
        })),
      })
    })
  }

  /** The checkpoint alarm wakes the replica at the next epoch boundary, if none comes sooner. */
  async #scheduleCheckpoint(): Promise<void> {
    const intervalMs = this.#config.checkpointIntervalMs
    if (intervalMs === 0) return
    await durable.alarmBy(this.ctx.storage, (Math.floor(clock.now() / intervalMs) + 1) * intervalMs)
  }

  compact(): storage.StorageStats {
    return durable.compact(this.#held)
  }

  /** Listens to every update this shard makes durable (the mesh's replication seam). */
  subscribe(listener: outbox.DurableUpdateListener): () => void {
    return outbox.subscribe(this.#held.outbox, listener)
  }

  // --- internals ----------------------------------------------------------------------------

  async #markets(accountId: string): Promise<Result<AccountMarketState[], MarketRejection>> {
    const symbols = [...this.#config.instruments.keys()]
    const read = await Promise.all(
      symbols.map((symbol) => marketStub(this.env, this.#config, symbol).accountState(accountId)),
    )
    const states: AccountMarketState[] = []
    for (const state of read) {
      if (!state.ok) return state
      states.push(state.value.value)
    }
    return ok(states)
  }

  /** The risk check; returns the price the matcher gets (a market order's band edge). */
  async #riskCheck(
    input: OrderInput & { instrument: string },
  ): Promise<Result<{ price: string }, OrderRejection>> {
    const pending = this.#refusePending()
    if (pending !== undefined) return pending
    const markets = await this.#markets(input.accountId)
    if (!markets.ok) return markets
    if (!durable.serving(this.#held)) return this.#damaged()
    if (!shardDoc.accounts(this.#held.state.doc).has(input.accountId)) {
      return this.#unlessSyncing(reject('account_not_found', `no account ${input.accountId}`))
    }
    const instrument = this.#config.instruments.get(input.instrument)
    if (instrument === undefined) return reject('not_found', `no instrument ${input.instrument}`)
    const figures = accountFigures(
      this.#index,
      input.accountId,
      markets.value,
      this.#config.instruments,
    )
    const risk = orderRisk(input, instrument, markets.value, figures)
    if (!risk.ok) return risk
    // The order's margin is spent from this node's rights (reduce-only orders need none).
    const spendable = this.#spendable(input.accountId, figures)
    if (risk.value.margin > spendable.usable) {
      this.#askForRights(input.accountId, risk.value.margin - spendable.usable)
      return commands.lacksRights(this.#config.nodeId, spendable)
    }
    return ok({ price: instruments.formatPrice(instrument, risk.value.limit) })
  }

  /**
   * After a peer's updates are durable here: the account index already follows the document;
   * answer the rights requests that came with them, and record any request id that the merge
   * found taken twice (I3: the document keeps one copy, so it takes effect once).
   */
  #afterRemote(): void {
    this.checkpoint(null)
    const asked = [...this.#asked]
    this.#asked.clear()
    if (asked.length > 0) {
      this.#grantRequested(asked).catch((error) =>
        console.error(JSON.stringify({ msg: 'granting rights failed', error: String(error) })),
      )
    }
    const merged = accountIndex.takeMergedCopies(this.#index)
    if (merged.length === 0 || !this.#held.state.ok) return
    durable.write(this.#held, this.#config.nodeId, (doc) => {
      for (const copy of merged) {
        shardDoc.writeOnce(shardDoc.findings(doc), `merged/${copy.id}`, {
          id: `merged/${copy.id}`,
          kind: 'merged_copy',
          invariant: 'I3',
          accountId: copy.kept.kind === 'deposit' ? copy.kept.to : copy.kept.from,
          message:
            `${copy.id} was taken on node ${copy.kept.node} and on node ${copy.dropped.node}; ` +
            `the merge kept node ${copy.kept.node}'s copy, so it took effect once`,
          evidence: { kept: copy.kept, dropped: copy.dropped },
          ts: clock.now(),
          node: this.#config.nodeId,
        })
      }
    })
  }

  #rights(accountId: string): Map<string, money.Units> {
    return accountIndex.rightsOf(this.#index, accountId)
  }

  /** What this node may spend of the account now (its escrow rights, net of commitments). */
  #spendable(accountId: string, figures: AccountFigures): escrow.Spendable {
    const rights = this.#rights(accountId)
    const free = figures.collateral + figures.unrealizedPnl - figures.initialMargin
    const { nodeId, settlementNode } = this.#config
    const gainsNode = nodeId !== settlementNode || this.#majorityContact() ? settlementNode : null
    return escrow.spendable(rights, nodeId, free, gainsNode)
  }

  /**
   * Whether this node is in contact with a majority of the mesh through this document's links,
   * or lost it less than `majorityLostGraceMs` ago.
   */
  #majorityContact(): boolean {
    const now = clock.now()
    const linked = [...this.#config.peers.keys()].filter((peer) =>
      replication.linkUp(this.#mesh, peer),
    )
    const inContact = linked.length + 1 >= replication.majorityOf(this.#config)
    this.#majorityLostAt = escrow.majorityLostAt(this.#majorityLostAt, inContact, now)
    return escrow.gainsSpendableAfter(this.#majorityLostAt, now, majorityLostGraceMs)
  }

  /**
   * Whether this document holds every update its peers said they hold: a link up to each peer and
   * none behind. Only then are rights judged (a grant may be on its way from a peer out of reach).
   */
  #holdsPeersState(): boolean {
    const links = replication.status(this.#mesh)
    return [...this.#config.peers.keys()].every((peer) =>
      links.some((link) => link.peer === peer && link.state === 'up' && link.behind === 0),
    )
  }

  /** Records that this node lacks `shortfall` of the account's rights, for its peers to grant. */
  #askForRights(accountId: string, shortfall: money.Units): void {
    if (this.#config.peers.size === 0 || !this.#held.state.ok) return
    durable.write(this.#held, this.#config.nodeId, (doc) =>
      commands.requestRights(
        doc,
        accountId,
        shortfall,
        [...this.#config.peers.keys()],
        this.#context(),
        rightsRequestFreshMs,
      ),
    )
  }

  /**
   * Answers peers' fresh requests for rights with grants, per the grant policy, each under the
   * account's lock (a grant spends rights as a withdrawal does). Stale requests get nothing: the
   * asker has long answered its client and will ask again if it still lacks rights.
   */
  async #grantRequested(requestIds: string[]): Promise<void> {
    for (const id of requestIds) {
      if (!durable.serving(this.#held)) return
      const request = shardDoc.rightsRequests(this.#held.state.doc).get(id)
      const now = clock.now()
      if (request === undefined || request.node === this.#config.nodeId) continue
      if (now - request.ts >= rightsRequestFreshMs) continue
      await withAccountLock(this.#locks, request.accountId, async () => {
        const markets = await this.#markets(request.accountId)
        if (!markets.ok || !durable.serving(this.#held) || hasPending(this.#held.state.doc)) return
        const figures = accountFigures(
          this.#index,
          request.accountId,
          markets.value,
          this.#config.instruments,
        )
        const usable = this.#spendable(request.accountId, figures).usable
        const amount = escrow.grantAmount(
          this.#config.rightsGrantPolicy,
          usable,
          ledger.amountUnits(request),
          this.#demand(request, [...shardDoc.rightsRequests(this.#held.state.doc).values()]),
        )
        if (amount <= 0n) return
        durable.write(this.#held, this.#config.nodeId, (doc) =>
          commands.grantRights(doc, request, amount, this.#context()),
        )
      })
    }
  }

  /** The asker's and this node's demand for the account's rights over the recent window. */
  #demand(request: escrow.RightsRequest, requests: escrow.RightsRequest[]): escrow.Demand {
    const transfers = accountIndex.transfersOf(this.#index, request.accountId)
    const since = clock.now() - rightsDemandWindowMs
    const of = (node: string) =>
      escrow.recentDemand(transfers, requests, request.accountId, node, since)
    return { asker: of(request.node), granter: of(this.#config.nodeId) }
  }

  #write<T>(run: (doc: Y.Doc) => commands.CommandResult<T>): WriteResult<T> {
    if (!durable.serving(this.#held)) return this.#damaged()
    const result = durable.write(this.#held, this.#config.nodeId, run)
    if (!result.ok) return this.#unlessSyncing(result)
    return ok({ ...result.value, reflects: durable.reflects(this.#held) })
  }

  /** Records an operator's withdrawals breaker; every node obeys it once it has it. */
  recordBreaker(entry: Breaker): void {
    assert(verified(this.#config.operatorPublicKey, 'breakers', entry), 'a breaker is signed')
    if (!this.#held.state.ok) return
    durable.write(this.#held, this.#config.nodeId, (doc) =>
      shardDoc.writeOnce(shardDoc.breakers(doc), entry.id, entry),
    )
  }

  /** The withdrawals breaker in force on this shard. */
  withdrawalsMode(): { mode: BreakerMode; by: Breaker | null } {
    return modeOf(this.#held.state.ok ? shardDoc.breakers(this.#held.state.doc).values() : [])
  }

  /**
   * Withdrawals stop while the operator's breaker says so, and for an account with a recorded
   * invariant violation until the operator has looked (design: never repaired silently).
   */
  #withdrawalsHalted(accountId: string): Rejected<'withdrawals_halted'> | undefined {
    const { mode, by } = this.withdrawalsMode()
    if (mode !== 'normal') {
      return reject('withdrawals_halted', `withdrawals are halted by the operator: ${by?.reason}`)
    }
    const finding = violationAgainst(this.#held, accountId)
    return finding === undefined ? undefined : violationHalt(accountId, finding.message)
  }

  /**
   * The reconciler's audits of this shard (domain/audits.ts), on causally complete state only:
   * every violation recorded as a finding (write-once, so each node's record is one entry), none
   * repaired. Run once per settlement epoch (markets ask as they settle) and on the operator's
   * demand; null while the shard cannot be judged (damaged, or holding pending updates).
   */
  audit(epoch: number | null = null): shardDoc.Finding[] | null {
    if (!durable.serving(this.#held) || hasPending(this.#held.state.doc)) return null
    if (epoch !== null && this.#auditedEpoch !== null && epoch <= this.#auditedEpoch) return []
    if (epoch !== null) this.#auditedEpoch = epoch
    const doc = this.#held.state.doc
    // After a checkpoint compacted history, the audit starts from its openings.
    const inForce = this.#index.inForce
    const { violations } = audits.auditShard(
      checkpointRules.unfolded(inForce, shardDoc.transfers(doc), 'transfers'),
      checkpointRules.unfolded(inForce, shardDoc.grants(doc), 'grants'),
      this.#holdsPeersState() ? { gainsNode: this.#config.settlementNode } : null,
      inForce === undefined
        ? audits.emptyShardFigures()
        : audits.shardFiguresFromOpenings(inForce.openings),
    )
    const made = auditFindings.findingsOf(violations, this.#held.name, this.#config.nodeId)
    return auditFindings.record(this.#held, this.#config.nodeId, made)
  }

  /** Settles a write's durability; a rejection or a local write passes through as it is. */
  async #durably<R extends Result<unknown, string>>(
    durability: Durability,
    result: R,
  ): Promise<R | Rejected<'quorum_timeout'>> {
    if (!result.ok) return result
    return (await replication.awaitDurability(this.#mesh, durability)) ?? result
  }

  /**
   * Money decisions wait while updates with missing dependencies are pending: the account's
   * entries they hold are not visible yet, so its balance as seen here may be wrong.
   */
  #refusePending(): Rejected<'shard_damaged' | 'shard_pending'> | undefined {
    if (!durable.serving(this.#held)) return this.#damaged()
    if (!hasPending(this.#held.state.doc)) return undefined
    return reject(
      'shard_pending',
      `${this.#held.name} holds updates whose dependencies have not arrived; retry shortly`,
    )
  }

  #read<T>(run: (doc: Y.Doc) => Result<T, ReadRejection>): Read<T> {
    if (!durable.serving(this.#held)) return this.#damaged()
    const result = run(this.#held.state.doc)
    if (!result.ok) return this.#unlessSyncing(result)
    return ok({ value: result.value, reflects: durable.reflects(this.#held) })
  }

  /**
   * A replica that has not caught up from its peers since it started (a wiped node, one just
   * joined or restarted) may lack an account, key or entry they hold: its "there is none" is not
   * definite until then, so it is answered as not executed (the same wait as `market_syncing`).
   */
  #unlessSyncing<C extends string>(rejected: Rejected<C>): Rejected<C | 'shard_syncing'> {
    if (!absenceCodes.has(rejected.code)) return rejected
    if (durable.caughtUp(this.#held, this.#config.peers.size)) return rejected
    return reject(
      'shard_syncing',
      `${this.#held.name} is catching up from its peers and may not hold it yet ` +
        `(${rejected.message}); retry shortly`,
    )
  }

  #damaged(): Rejected<'shard_damaged'> {
    return reject('shard_damaged', durable.damageMessage(this.#held))
  }

  #context(): commands.RecordContext {
    const { nodeId, operatorSigningKey, operatorPublicKey } = this.#config
    if (operatorSigningKey === null) return { node: nodeId, now: clock.now() }
    const sealed = (map: SignedMap, entry: Record<string, unknown>) => {
      const signature = seal(operatorSigningKey, map, entry)
      // Checked as every peer will check it, before it is written.
      assert(verified(operatorPublicKey, map, { ...entry, signature }), 'the signature verifies')
      return signature
    }
    return { node: nodeId, now: clock.now(), seal: sealed }
  }
}

const violationHalt = (accountId: string, why: string) =>
  reject('withdrawals_halted' as const, `withdrawals of ${accountId} wait for the operator: ${why}`)

/** Rejections that say something does not exist. */
const absenceCodes: ReadonlySet<string> = new Set([
  'account_not_found',
  'key_not_found',
  'not_found',
])

const noOperatorKey = () =>
  reject(
    'no_operator_key' as const,
    "this node does not hold the operator's signing key: record deposits on a node that does",
  )

const outcomeUnknown = (why: string) =>
  reject(
    'outcome_unknown' as const,
    `the order was taken but its outcome is unknown (${why}); query it by clientOrderId`,
  )

const homeUnreachable = (symbol: string) =>
  reject(
    'home_node_unreachable' as const,
    `${symbol} is matched on another node, which this node cannot reach now`,
  )

const pick = (input: OrderInput & { instrument: string; requestDigest: string }) => ({
  clientOrderId: input.clientOrderId,
  accountId: input.accountId,
  instrument: input.instrument,
  requestDigest: input.requestDigest,
})

const orderInputOf = ({
  instrument: _instrument,
  requestDigest: _digest,
  ...input
}: OrderInput & { instrument: string; requestDigest: string }): OrderInput => input
