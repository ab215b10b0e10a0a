// MarketReplica: the Durable Object of one instrument on one node. On the node that holds the
// instrument's matcher lease (mesh/lease-agent.ts; the home node unless it failed) it runs the
// matcher: each order, cancel or settlement becomes one step entry (input + every decision, and
// the lease's term) answered only once a majority that promised no higher term holds it. On
// every node it serves the market's derived state (book depth, orders, fills, positions) folded
// from the fenced chain of steps, and keeps the operator's latest mark price in SQLite, outside
// the document: marks are overwritten every tick (design.md §2.3).

import { DurableObject } from 'cloudflare:workers'
import type * as Y from 'yjs'
import { readConfig, type Durability, type Env, type NodeConfig } from '../config'
import { matcherCallTimeoutMs } from '../constants'
import { assert } from '../domain/assert'
import * as lease from '../domain/lease'
import * as ledger from '../domain/ledger'
import * as instruments from '../domain/instrument'
import * as matcher from '../domain/matcher'
import * as reconciler from '../domain/reconciler'
import * as money from '../domain/money'
import { ok, reject, type Result } from '../domain/result'
import type { AccountMarketState, Mark } from '../state/account-figures'
import * as market from '../state/market-doc'
import * as marketCheckpoint from '../state/market-checkpoint'
import * as marketState from '../state/market-state'
import { verified } from '../state/operator-signature'
import { marketChecks } from '../state/remote-checks'
import { forgedRecorder, recentFindings } from './forged-findings'
import { breakers, writeOnce, type Finding } from '../state/shard-doc'
import { auditedSteps, marketFiguresOf } from '../state/audit-entries'
import { hasPending } from '../state/digest'
import * as audits from '../domain/audits'
import * as auditFindings from './audit-findings'
import { violationAgainst } from './audit-findings'
import { admitsOrder, modeOf, stricter, type Breaker, type BreakerMode } from '../domain/breakers'
import { restricted } from '../state/account-figures'
import * as forward from '../mesh/forward'
import * as leaseAgent from '../mesh/lease-agent'
import * as replication from '../mesh/replication'
import * as durable from './durable-doc'
import { accountStub, shardStub } from './addressing'
import * as marketCheckpoints from './market-checkpoints'
import * as replicaMesh from './replica-mesh'
import * as replicaMetrics from './replica-metrics'
import type { MeshStatus } from './shard-replica'
import * as storage from './shard-storage'
import * as clock from '../clock'

export type MarketRejection =
  | 'shard_damaged'
  | 'market_diverged'
  | 'market_syncing'
  | 'not_home_node'
  | 'not_found'
  | 'home_node_unreachable'
  | 'outcome_unknown'
  | 'quorum_timeout'
  | 'mark_unavailable'
  | 'mark_stale'
  | 'market_restricted'
  | 'epoch_folded'
  | 'order_history_folded'
export type MarketResult<T> = Result<{ value: T; reflects: durable.Reflects }, MarketRejection>

export type SettlementReport = {
  instrument: string
  epoch: number
  seq: number
  mark: string
  fundingRate: string
  liquidated: string[]
  fundingPayments: number
}

/** A cancel the matcher took (or refused), or one recorded here that it has not seen yet. */
export type CancelOutcome =
  | { kind: 'decided'; view: marketState.OrderView }
  | { kind: 'requested'; request: market.CancelRequest; view: marketState.OrderView | null }

const decided = (result: MarketResult<marketState.OrderView>): MarketResult<CancelOutcome> =>
  result.ok
    ? ok({ value: { kind: 'decided', view: result.value.value }, reflects: result.value.reflects })
    : result

/** The latest epoch settled in `state`, -1 before any. */
const latestEpoch = (state: marketState.MarketState): number =>
  Math.max(-1, ...state.settledEpochs.keys())

export class MarketReplica extends DurableObject<Env> {
  readonly #config: NodeConfig
  readonly #instrument: instruments.Instrument
  #held!: durable.DurableDoc
  #state!: marketState.MarketState
  #mesh!: replication.Replication
  /** The latest epoch settled when this replica last audited (it audits at each new one). */
  #auditedEpoch = -1
  #lease!: leaseAgent.LeaseAgent
  #startedUnpromised = false
  /** Outcomes of this replica's settle calls since it loaded, for `GET /metrics`. */
  readonly #settleOutcomes: Record<string, number> = {}

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    this.#config = readConfig(env)
    // SQLite calls are synchronous, so the name is known before anything else runs.
    const name = storage.rememberName(ctx.storage.sql, ctx.id.name)
    assert(name !== undefined, 'a market replica was first addressed by name')
    const instrument = this.#config.instruments.get(name.slice(name.lastIndexOf('/') + 1))
    assert(instrument !== undefined, `market ${name} is a listed instrument`)
    this.#instrument = instrument
    const options = marketCheckpoints.optionsOf(this.#config)
    void ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS mark_latest (
        id INTEGER PRIMARY KEY CHECK (id = 1), price TEXT NOT NULL, ts INTEGER NOT NULL)`)
      // This node's promise as a grantor of the matcher lease: overwritten on every renewal, so
      // kept here and never in the document (design.md §2.3).
      ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS lease_promise (
        id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL)`)
      this.#held = durable.open(
        name,
        ctx.storage,
        (doc: Y.Doc) => {
          this.#state = marketState.replay(instrument, doc, options)
          this.#auditedEpoch = latestEpoch(this.#state)
        },
        marketChecks(
          {
            publicKey: this.#config.operatorPublicKey,
            nodeKeys: this.#config.nodePublicKeys,
            onForged: forgedRecorder(() => this.#held, this.#config.nodeId),
          },
          options.members,
        ),
      )
      this.#mesh = replicaMesh.attach(env, this.#config, this.#held, () => {
        // Steps from the home node's matcher: replay them through the matcher, in order. On the
        // home node, cancels recorded elsewhere arrive this way too.
        if (!this.#held.state.ok) return
        this.#catchUp()
        this.#auditWhenSettled()
        this.#takeCancelsDue(market.cancelRequests(this.#held.state.doc).keys())
      })
      // A node that starts without a promise may have been wiped (F11): what it held before is
      // gone, so it matches only once it has caught up from as many peers as a repair needs.
      this.#startedUnpromised = this.#promiseStore().load() === null
      this.#mesh.promisedTerm = () => this.#promiseStore().load()?.term ?? 0
      this.#lease = leaseAgent.create(
        this.#mesh,
        lease.candidatesOf(this.#instrument.spec.homeNode, [
          this.#config.nodeId,
          ...this.#config.peers.keys(),
        ]),
        this.#promiseStore(),
        {
          durationMs: this.#config.leaseDurationMs,
          failoverTimeoutMs: this.#config.failoverTimeoutMs,
        },
        () => this.#leaseChanged(),
      )
      // Checkpoints passed on the replay, and cancels recorded while this node was down or
      // before it became reachable.
      if (this.#held.state.ok) {
        this.#catchUp()
        this.#takeCancelsDue(market.cancelRequests(this.#held.state.doc).keys())
      }
      // Epochs settle from the alarm: make sure one is set on the home node.
      const interval = this.#config.settlementIntervalMs
      if (interval > 0 && (await ctx.storage.getAlarm()) === null) {
        await ctx.storage.setAlarm(
          clock.schedulerTime((reconciler.epochOf(clock.now(), interval) + 1) * interval),
        )
      }
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

  meshStatus(): MeshStatus & { lease: leaseAgent.LeaseStatus; findings: Finding[] } {
    return {
      ...durable.status(this.#held),
      links: replication.status(this.#mesh),
      liveness: replication.livenessOf(this.#mesh),
      lease: leaseAgent.status(this.#lease),
      findings: recentFindings(this.#held),
    }
  }

  /** This node's lease promise in SQLite: written before the grant is answered. */
  #promiseStore(): leaseAgent.PromiseStore {
    const sql = this.ctx.storage.sql
    return {
      load: () => {
        const row = sql
          .exec<{ term: number; holder: string; expires_at: number }>(
            'SELECT term, holder, expires_at FROM lease_promise WHERE id = 1',
          )
          .toArray()[0]
        return row === undefined
          ? null
          : { term: row.term, holder: row.holder, expiresAt: row.expires_at }
      },
      save: (promise) =>
        void sql.exec(
          'INSERT OR REPLACE INTO lease_promise (id, term, holder, expires_at) VALUES (1, ?, ?, ?)',
          promise.term,
          promise.holder,
          promise.expiresAt,
        ),
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

  /** Counters and queue depths for `GET /metrics`, with this market's settlements. */
  metrics(): replicaMetrics.ReplicaMetrics {
    const epochs = this.#held.state.ok ? [...this.#state.settledEpochs.keys()] : []
    return replicaMetrics.gather(this.#held, this.#mesh, {
      lockQueueDepth: 0,
      checkpoint: {
        inForceEpoch: this.#state.base?.epoch ?? null,
        waiting:
          this.#held.state.ok &&
          marketCheckpoint.waiting(this.#held.state.doc, this.#state) !== undefined,
      },
      lease: { instrument: this.#instrument.symbol, ...leaseAgent.status(this.#lease) },
      settlement: {
        instrument: this.#instrument.symbol,
        outcomes: { ...this.#settleOutcomes },
        epochs: epochs.length,
        lastEpoch: epochs.reduce<number | null>(
          (last, e) => (last === null || e > last ? e : last),
          null,
        ),
      },
    })
  }

  /**
   * Has the matcher decide one order: here on the home node, or forwarded to the home node if a
   * link to it is up (503 not executed if none is). The step is durable before this returns, on a
   * majority of nodes if the order asks for `quorum`.
   */
  async submit(
    input: market.OrderInput,
    durability: Durability,
  ): Promise<MarketResult<marketState.OrderView>> {
    if (leaseAgent.holding(this.#lease)) return this.match({ op: 'submit', input, durability })
    return this.#forward({ op: 'submit', input, durability })
  }

  /**
   * A placement retry's answer: the order as the matcher took it, from the lease holder once a
   * majority that promised no higher term holds its chain. A node's own view could name a step
   * of its that no majority confirmed, which a later term fences (chaos seed 7006: a cut-off
   * holder answered a retry 201 from such a step). not_found: the matcher never took it.
   */
  async replay(
    orderId: string,
    accountId: string,
    recordedAt: number,
  ): Promise<MarketResult<marketState.OrderView>> {
    const call = { op: 'replay' as const, orderId, accountId, recordedAt }
    if (leaseAgent.holding(this.#lease)) return this.match(call)
    return this.#forward(call)
  }

  /**
   * The lease came, was renewed or went: a holder takes the cancels recorded meanwhile (ones that
   * arrived while it was not ready to match are taken at its next renewal).
   */
  #leaseChanged(): void {
    if (!this.#held.state.ok) return
    this.#catchUp()
    this.#takeCancelsDue(market.cancelRequests(this.#held.state.doc).keys())
  }

  /**
   * Failback, an operator's action: the lease holder hands this instrument's matcher to
   * `target`, a candidate node, which campaigns for a higher term (lease-agent.ts).
   */
  failback(
    target: string,
  ): MarketResult<{ holder: string; outcome: Exclude<leaseAgent.FailbackOutcome, 'no_holder'> }> {
    const known = leaseAgent.holder(this.#lease)
    const outcome = leaseAgent.failback(this.#lease, target)
    if (outcome === 'no_holder' || known === null) {
      return reject(
        'home_node_unreachable',
        `no node this one can reach holds ${this.#instrument.symbol}'s matcher lease`,
      )
    }
    return this.#answer({ holder: known, outcome })
  }

  /** Whether an order can reach the matcher now: this node holds the lease, or a link to the holder is up. */
  matchable(): boolean {
    if (leaseAgent.holding(this.#lease)) return true
    const holder = leaseAgent.holder(this.#lease)
    return holder !== null && replication.linkUp(this.#mesh, holder)
  }

  /**
   * Cancels a resting order of `accountId`. Off the home node the cancel is first recorded here,
   * so it takes effect once the matcher sees it whatever the network does; then, if a link to the
   * home node is up, the home takes it now.
   */
  async cancel(input: market.CancelInput): Promise<MarketResult<CancelOutcome>> {
    const refused = this.#refuseReading()
    if (refused !== undefined) return refused
    const known = this.#state.orders.get(input.orderId)
    if (known !== undefined && known.input.accountId !== input.accountId) {
      return reject('not_found', `no order ${input.orderId}`)
    }
    const call = { op: 'cancel' as const, input, durability: 'local' as const }
    if (leaseAgent.holding(this.#lease)) return decided(await this.match(call))
    const request = durable.write(this.#held, this.#config.nodeId, (doc) => {
      const requests = market.cancelRequests(doc)
      const recorded = requests.get(input.orderId)
      if (recorded !== undefined) return recorded
      const made = { ...input, node: this.#config.nodeId }
      requests.set(input.orderId, made)
      return made
    })
    const answer = (): MarketResult<CancelOutcome> =>
      this.#answer({ kind: 'requested', request, view: known ?? null })
    if (!this.matchable()) return answer()
    const forwarded = await this.#forward(call)
    return forwarded.ok ? decided(forwarded) : answer()
  }

  /**
   * The matcher: takes one order or cancel on the home node (an order id taken before replays its
   * view), then any cancel recorded for that order elsewhere that is now due.
   */
  async match(call: forward.MatcherCall): Promise<MarketResult<marketState.OrderView>> {
    const refused = this.#refuseMatching()
    if (refused !== undefined) return refused
    if (call.op === 'replay') {
      const taken = this.#state.orders.get(call.orderId)
      const base = this.#state.base
      if (taken === undefined && marketCheckpoint.mayHaveFolded(base, call.recordedAt)) {
        return reject(
          'order_history_folded',
          `order ${call.orderId} was placed before ${new Date(base!.retainFrom).toISOString()}, ` +
            "the market's history before which is folded: whatever it did stands, it is not placed again",
        )
      }
      if (taken === undefined || taken.input.accountId !== call.accountId) {
        return reject('not_found', `no order ${call.orderId}`)
      }
      return this.#confirmed(call.orderId)
    }
    const { input } = call
    const known = this.#state.orders.get(input.orderId)
    if (call.op === 'cancel') {
      if (known === undefined || known.input.accountId !== input.accountId) {
        return reject('not_found', `no order ${input.orderId}`)
      }
      if (this.#state.book.orders.has(input.orderId)) {
        const lost = this.#take(call.input)
        if (lost !== undefined) return lost
      }
    } else {
      if (known === undefined) {
        // The matcher's own guard: an order that reached it past a breaker is not taken.
        const mode = this.mode().mode
        if (!admitsOrder(mode, call.input.reduceOnly)) {
          return restricted(this.#instrument.symbol, mode)
        }
        const lost = this.#take(call.input)
        if (lost !== undefined) return lost
      }
      this.#takeCancelsDue([input.orderId])
    }
    return this.#confirmed(input.orderId)
  }

  /** The order's view once every step this holder took is confirmed for its term. */
  async #confirmed(orderId: string): Promise<MarketResult<marketState.OrderView>> {
    // Every matcher step is answered once held by a majority that promised no higher term: only
    // then can no later term fence it (domain/fencing.ts). A client asking for `local` gets this.
    const missed = await replication.awaitDurability(
      this.#mesh,
      'quorum',
      leaseAgent.heldTerm(this.#lease),
    )
    if (missed !== undefined) return reject('outcome_unknown', missed.message)
    return this.#answer(this.#state.orders.get(orderId)!)
  }

  order(orderId: string, accountId: string): MarketResult<marketState.OrderView> {
    const refused = this.#refuseReading()
    if (refused !== undefined) return refused
    const view = this.#state.orders.get(orderId)
    if (view === undefined || view.input.accountId !== accountId)
      return reject('not_found', `no order ${orderId}`)
    return this.#answer(view)
  }

  openOrders(accountId: string): MarketResult<marketState.OrderView[]> {
    const refused = this.#refuseReading()
    if (refused !== undefined) return refused
    const open = [...this.#state.book.orders.values()]
      .filter((order) => order.accountId === accountId)
      .map((order) => this.#state.orders.get(order.orderId)!)
    return this.#answer(open)
  }

  accountState(accountId: string): MarketResult<AccountMarketState> {
    const refused = this.#refuseReading()
    if (refused !== undefined) return refused
    const activity = this.#state.accounts.get(accountId)
    return this.#answer({
      symbol: this.#instrument.symbol,
      position: matcher.positionOf(this.#state.book, accountId),
      realized: activity?.realized ?? 0n,
      fees: activity?.fees ?? 0n,
      funding: activity?.funding ?? 0n,
      resting: [...this.#state.book.orders.values()]
        .filter((order) => order.accountId === accountId)
        .map((order) => ({ remaining: order.remaining, price: order.price })),
      mark: this.mark(),
      mode: this.mode().mode,
      violation: violationAgainst(this.#held, accountId)?.message ?? null,
    })
  }

  /** Records an operator's circuit breaker for this instrument or the venue; nodes obey on sight. */
  recordBreaker(entry: Breaker): void {
    assert(verified(this.#config.operatorPublicKey, 'breakers', entry), 'a breaker is signed')
    durable.write(this.#held, this.#config.nodeId, (doc) =>
      writeOnce(breakers(doc), entry.id, entry),
    )
  }

  /** The breaker mode in force here: the stricter of this instrument's and the venue's. */
  mode(): { mode: BreakerMode; instrument: Breaker | null; venue: Breaker | null } {
    const entries = this.#held.state.ok ? [...breakers(this.#held.state.doc).values()] : []
    const instrument = modeOf(entries.filter((entry) => entry.scope === 'instrument'))
    const venue = modeOf(entries.filter((entry) => entry.scope === 'venue'))
    return {
      mode: stricter(instrument.mode, venue.mode),
      instrument: instrument.by,
      venue: venue.by,
    }
  }

  /** The account's fills after the cursor (time, then fill id), oldest first, at most `limit`. */
  fills(
    accountId: string,
    after: ledger.LedgerCursor | null,
    limit: number,
  ): MarketResult<marketState.AccountActivity['fills']> {
    const refused = this.#refuseReading()
    if (refused !== undefined) return refused
    const all = this.#state.accounts.get(accountId)?.fills ?? []
    const later = (entry: (typeof all)[number]) =>
      after === null ||
      entry.ts > after.ts ||
      (entry.ts === after.ts && entry.fill.fillId > after.id)
    return this.#answer(all.filter(later).slice(0, limit))
  }

  /** The ledger transfers the account's fills imply (fees, realized PnL), as a ledger page. */
  ledger(
    accountId: string,
    after: ledger.LedgerCursor | null,
    limit: number,
  ): MarketResult<{ entries: ledger.LedgerEntry[]; more: boolean }> {
    const refused = this.#refuseReading()
    if (refused !== undefined) return refused
    const activity = this.#state.accounts.get(accountId)
    const symbol = this.#instrument.symbol
    const transfers = [
      ...(activity?.fills ?? []).flatMap(({ fill, ts, node }) =>
        market.fillTransfers(symbol, fill, ts, node),
      ),
      ...(activity?.fundings ?? []).map(({ funding, ts, node }) =>
        market.fundingTransfer(symbol, funding, ts, node),
      ),
    ]
    return this.#answer(ledger.page(transfers, accountId, after, limit))
  }

  depth(levels: number): MarketResult<ReturnType<typeof matcher.depth>> {
    const refused = this.#refuseReading()
    if (refused !== undefined) return refused
    return this.#answer(matcher.depth(this.#state.book, levels))
  }

  /** Records the operator's latest mark; an older or equal timestamp than the latest is ignored. */
  setMark(price: money.Units, ts: number): { applied: boolean; mark: Mark } {
    const latest = this.mark()
    const applied = latest === null || ts > latest.ts
    if (applied) {
      this.ctx.storage.sql.exec(
        'INSERT OR REPLACE INTO mark_latest (id, price, ts) VALUES (1, ?, ?)',
        price.toString(),
        ts,
      )
    }
    return { applied, mark: this.mark()! }
  }

  mark(): Mark | null {
    const row = this.ctx.storage.sql
      .exec<{ price: string; ts: number }>('SELECT price, ts FROM mark_latest WHERE id = 1')
      .toArray()[0]
    if (row === undefined) return null
    return {
      price: BigInt(row.price),
      ts: row.ts,
      stale: clock.now() - row.ts > this.#config.markMaxAgeMs,
    }
  }

  /**
   * The settlement reconciler, on the instrument's home node: settles `epoch` once, at the
   * latest recorded mark, with the funding rate the book implies and every account below
   * maintenance margin (judged on its whole cross-margin figures) liquidated. The decisions are
   * made first, then taken as one settle step, so every node replays the same settlement.
   * Positions that do not net to zero afterwards are recorded as a finding, never repaired.
   */
  async settle(epoch: number): Promise<MarketResult<SettlementReport>> {
    const replay = this.#held.state.ok && this.#state.settledEpochs.has(epoch)
    const settled = await this.#settle(epoch)
    const outcome = !settled.ok ? settled.code : replay ? 'replayed' : 'settled'
    this.#settleOutcomes[outcome] = (this.#settleOutcomes[outcome] ?? 0) + 1
    return settled
  }

  async #settle(epoch: number): Promise<MarketResult<SettlementReport>> {
    const refused = this.#refuseMatching()
    if (refused !== undefined) return refused
    if (this.#state.settledEpochs.has(epoch)) return this.#answer(this.#report(epoch))
    const base = this.#state.base
    if (base !== null && epoch <= base.epoch) {
      return reject(
        'epoch_folded',
        `epoch ${epoch} of ${this.#instrument.symbol} is at or before the checkpoint in force (epoch ${base.epoch}), whose history is folded: it is not settled now`,
      )
    }
    const mark = this.mark()
    if (mark === null) return reject('mark_unavailable', `no mark for ${this.#instrument.symbol}`)
    if (mark.stale) return reject('mark_stale', `the mark of ${this.#instrument.symbol} is stale`)
    const holders = [...this.#state.book.positions]
      .filter(([accountId, position]) => position.size !== 0n && !ledger.isSystemAccount(accountId))
      .map(([accountId]) => accountId)
    const judged = await Promise.all(
      holders.map(async (accountId) => {
        const figures = await accountStub(this.env, this.#config, accountId).figures(accountId)
        return figures.ok ? [{ accountId, figures: figures.value }] : []
      }),
    )
    // Another call may have settled the epoch while the figures were read, and the lease may
    // have run out meanwhile (the step refuses then).
    if (this.#state.settledEpochs.has(epoch)) return this.#answer(this.#report(epoch))
    const lost = this.#take({
      kind: 'settle',
      epoch,
      mark: mark.price.toString(),
      fundingRate: reconciler.fundingRate(this.#state.book, mark.price).toString(),
      liquidate: reconciler.liquidationsDue(judged.flat()),
      receivedAt: clock.now(),
    })
    if (lost !== undefined) return lost
    this.#auditWhenSettled()
    return this.#answer(this.#report(epoch))
  }

  status(): durable.DocStatus & { divergence: string | null; nextSeq: number } {
    return {
      ...durable.status(this.#held),
      divergence: this.#held.state.ok ? this.#state.divergence : null,
      nextSeq: this.#held.state.ok ? this.#state.nextSeq : 0,
    }
  }

  compact(): storage.StorageStats {
    return durable.compact(this.#held)
  }

  /** The market's checkpoint in force and the latest written, after a catch-up. */
  checkpointState(): MarketResult<marketCheckpoints.CheckpointState> {
    const refused = this.#refuseReading()
    if (refused !== undefined) return refused
    const held = this.#held
    assert(durable.serving(held), 'a market that reads is serving')
    this.#catchUp()
    return this.#answer(marketCheckpoints.stateOf(held.state.doc, this.#state))
  }

  override async alarm(): Promise<void> {
    await replicaMesh.maintain(this.ctx.storage, this.#held, this.#mesh)
    await this.#settleWhenDue()
  }

  /** On the home node with epochs on: settle the epoch that last ended, and wake at the next. */
  async #settleWhenDue(): Promise<void> {
    const interval = this.#config.settlementIntervalMs
    if (interval === 0) return
    const now = clock.now()
    const ended = reconciler.epochOf(now, interval) - 1
    // Settlement is a matcher step: the lease holder takes it, wherever the lease is.
    if (leaseAgent.holding(this.#lease) && !this.#state.settledEpochs.has(ended)) {
      const settled = await this.settle(ended)
      if (!settled.ok) {
        console.error(JSON.stringify({ msg: 'settlement refused', epoch: ended, ...settled }))
      }
    }
    const next = clock.schedulerTime((reconciler.epochOf(now, interval) + 1) * interval)
    const current = await this.ctx.storage.getAlarm()
    if (current === null || current > next) await this.ctx.storage.setAlarm(next)
  }

  /** What the settle step of `epoch` did, as every node replays it. */
  #report(epoch: number): SettlementReport {
    const settled = this.#state.settledEpochs.get(epoch)
    assert(settled !== undefined, `epoch ${epoch} was settled`)
    return {
      instrument: this.#instrument.symbol,
      epoch,
      seq: settled.at.seq,
      mark: instruments.formatPrice(this.#instrument, BigInt(settled.input.mark)),
      fundingRate: money.format(BigInt(settled.input.fundingRate), instruments.rateDecimals),
      liquidated: settled.input.liquidate,
      fundingPayments: settled.fundingPayments,
    }
  }

  /**
   * The reconciler's audits of this market (domain/audits.ts) over its steps up to the first gap,
   * and I5 over the book the matcher replayed: each violation recorded as a write-once finding,
   * none repaired. Null while the market cannot be judged (damaged, or pending updates).
   */
  audit(): Finding[] | null {
    if (!durable.serving(this.#held) || hasPending(this.#held.state.doc)) return null
    const base = this.#state.base
    const steps = auditedSteps(this.#instrument, this.#held.state.doc, base)
    const { violations } = audits.auditMarket(
      steps,
      this.#instrument.notionalScale,
      base === null ? audits.emptyMarketFigures() : marketFiguresOf(this.#instrument, base),
    )
    const net = reconciler.positionsNetToZero(this.#state.book)
    if (net !== 0n) {
      const seq = this.#state.nextSeq - 1
      violations.push({
        invariant: 'I5',
        subject: `book/${seq}`,
        accountIds: [],
        message: `positions of ${this.#instrument.symbol} in the replayed book net to ${net} at step ${seq}, not zero`,
        evidence: { net: net.toString(), seq },
      })
    }
    const made = auditFindings.findingsOf(violations, this.#held.name, this.#config.nodeId)
    return auditFindings.record(this.#held, this.#config.nodeId, made)
  }

  /**
   * At each settle step this node takes or replays: audit this market, and ask this node's
   * shards to audit theirs for the epoch (each does once per epoch, whichever market asks).
   */
  #auditWhenSettled(): void {
    const epoch = latestEpoch(this.#state)
    if (!this.#held.state.ok || epoch === this.#auditedEpoch) return
    this.#auditedEpoch = epoch
    this.audit()
    for (let shard = 0; shard < this.#config.shardCount; shard++) {
      shardStub(this.env, this.#config, shard)
        .audit(epoch)
        .catch((error: unknown) =>
          console.error(JSON.stringify({ msg: 'shard audit failed', shard, error: String(error) })),
        )
    }
  }

  /**
   * Writes one matcher step, or refuses (nothing written) when matching is no longer allowed:
   * callers checked before, but a lease runs out by the clock, even between two steps.
   */
  #take(input: market.StepInput): MarketResult<never> | undefined {
    const refused = this.#refuseMatching()
    if (refused !== undefined) return refused
    const at = { ts: clock.now(), node: this.#config.nodeId }
    const term = leaseAgent.heldTerm(this.#lease)
    // A checkpoint written with a settle step can outgrow one stored value: then the whole
    // document is folded into a new snapshot in the same storage transaction.
    const oversize = input.kind === 'settle' ? 'fold' : 'refuse'
    durable.write(
      this.#held,
      this.#config.nodeId,
      (doc) => {
        const step = marketState.take(this.#state, input, at, term)
        market.steps(doc).set(market.stepKeyOf(term, step.seq), step)
        if (input.kind === 'settle') {
          marketCheckpoints.writeWhenDue(doc, this.#state, this.#config, input.epoch, at.ts)
        }
      },
      oversize,
    )
    return undefined
  }

  /**
   * Takes the steps that came in since, then acknowledges the checkpoints the replay passed and
   * compacts to the one in force.
   */
  #catchUp(): void {
    if (!durable.serving(this.#held)) return
    marketState.catchUp(this.#state, this.#held.state.doc)
    marketCheckpoints.settle(this.#held, this.#state, this.#config)
  }

  async #forward(call: forward.MatcherCall): Promise<MarketResult<marketState.OrderView>> {
    const home = leaseAgent.holder(this.#lease)
    if (home === null || !this.matchable()) {
      return reject(
        'home_node_unreachable',
        home === null
          ? `no node holds ${this.#instrument.symbol}'s matcher lease that this node can reach`
          : `${this.#instrument.symbol} is matched on node ${home}, which this node cannot reach`,
      )
    }
    const sent = await forward.callHome(
      this.#config,
      this.#mesh.fetcher,
      home,
      this.#instrument.symbol,
      call,
      matcherCallTimeoutMs,
    )
    if (!sent.ok) return sent
    const answer = sent.value
    if (!answer.ok) return reject(answer.code as MarketRejection, answer.message)
    return ok({ value: forward.viewFromWire(answer.value.value), reflects: answer.value.reflects })
  }

  /**
   * Takes the recorded cancels of these orders that rest in the book, on the home node. A cancel
   * is due when both it and its order have reached the matcher, in either order.
   */
  #takeCancelsDue(orderIds: Iterable<string>): void {
    if (this.#refuseMatching() !== undefined || !this.#held.state.ok) return
    const requests = market.cancelRequests(this.#held.state.doc)
    for (const orderId of orderIds) {
      const request = requests.get(orderId)
      const resting = this.#state.book.orders.get(orderId)
      if (request === undefined || resting === undefined) continue
      if (resting.accountId !== request.accountId) continue
      const { node: _node, ...input } = request
      if (this.#take(input) !== undefined) return
    }
  }

  /**
   * A damaged, repairing or diverged market serves nothing: its figures cannot be trusted for
   * money. A repaired one has replayed every step through the matcher on its reload.
   */
  #refuseReading(): MarketResult<never> | undefined {
    if (!durable.serving(this.#held))
      return reject('shard_damaged', durable.damageMessage(this.#held))
    if (this.#state.divergence !== null) {
      return reject(
        'market_diverged',
        `${this.#instrument.symbol} halted: ${this.#state.divergence}`,
      )
    }
    return undefined
  }

  #refuseMatching(): MarketResult<never> | undefined {
    const refused = this.#refuseReading()
    if (refused !== undefined) return refused
    const symbol = this.#instrument.symbol
    if (!leaseAgent.holding(this.#lease)) {
      const holder = leaseAgent.holder(this.#lease)
      return reject(
        'not_home_node',
        `${symbol} is matched on ${holder === null ? 'no node now' : `node ${holder}`}`,
      )
    }
    // The new holder continues the chain only from what a majority of its grantors held: every
    // step acknowledged in an older term is among it (domain/fencing.ts).
    if (!leaseAgent.ready(this.#lease)) {
      return reject('market_syncing', `${symbol}'s matcher is catching up from its grantors`)
    }
    // A node that may have been wiped lacks what it held itself: it needs as many peers' syncs
    // as a repair does, or its next step could take a number another step of its term holds.
    if (this.#startedUnpromised && !durable.caughtUp(this.#held, this.#config.peers.size)) {
      return reject('market_syncing', `${symbol}'s matcher is catching up from its peers`)
    }
    if (!this.#state.complete) {
      return reject('market_syncing', `${symbol}'s steps have a gap this node waits to fill`)
    }
    // A newer term began elsewhere: this lease is stale, whatever this node's clock says.
    if (this.#state.term > leaseAgent.heldTerm(this.#lease)) {
      return reject('not_home_node', `${symbol} is matched in a newer term than this node's`)
    }
    return undefined
  }

  #answer<T>(value: T): MarketResult<T> {
    return ok({ value, reflects: durable.reflects(this.#held) })
  }
}
