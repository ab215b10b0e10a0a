// MarketReplica: the Durable Object of one instrument on one node. On the instrument's home node
// it runs the matcher: each order or cancel becomes one step entry (input + every decision) made
// durable before the caller hears the outcome. On every node it serves the market's derived state
// (book depth, orders, fills, positions) and keeps the operator's latest mark price in SQLite,
// outside the document: marks are overwritten every tick (design.md §2.3).

import { DurableObject } from 'cloudflare:workers'
import type * as Y from 'yjs'
import { readConfig, type Env, type NodeConfig } from '../config'
import { assert } from '../domain/assert'
import type { Instrument } from '../domain/instrument'
import * as ledger from '../domain/ledger'
import * as matcher from '../domain/matcher'
import type * as money from '../domain/money'
import { ok, reject, type Result } from '../domain/result'
import type { AccountMarketState, Mark } from '../state/account-figures'
import * as market from '../state/market-doc'
import * as marketState from '../state/market-state'
import * as replication from '../mesh/replication'
import * as durable from './durable-doc'
import * as replicaMesh from './replica-mesh'
import type { MeshStatus } from './shard-replica'
import * as storage from './shard-storage'

export type MarketRejection = 'shard_damaged' | 'market_diverged' | 'not_home_node' | 'not_found'
export type MarketResult<T> = Result<{ value: T; reflects: durable.Reflects }, MarketRejection>

export class MarketReplica extends DurableObject<Env> {
  readonly #config: NodeConfig
  readonly #instrument: Instrument
  #held!: durable.DurableDoc
  #state!: marketState.MarketState
  #mesh!: replication.Replication

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    this.#config = readConfig(env)
    // SQLite calls are synchronous, so the name is known before anything else runs.
    const name = storage.rememberName(ctx.storage.sql, ctx.id.name)
    assert(name !== undefined, 'a market replica was first addressed by name')
    const instrument = this.#config.instruments.get(name.slice(name.lastIndexOf('/') + 1))
    assert(instrument !== undefined, `market ${name} is a listed instrument`)
    this.#instrument = instrument
    void ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS mark_latest (
        id INTEGER PRIMARY KEY CHECK (id = 1), price TEXT NOT NULL, ts INTEGER NOT NULL)`)
      this.#held = durable.open(name, ctx.storage, (doc: Y.Doc) => {
        this.#state = marketState.replay(instrument, doc)
      })
      this.#mesh = replicaMesh.attach(this.#config, this.#held, () => {
        // Steps from the home node's matcher: replay them through the matcher, in order.
        if (this.#held.state.ok) marketState.catchUp(this.#state, this.#held.state.doc)
      })
    })
  }

  /** Inbound mesh links, forwarded by the Worker after it verified the peer's token. */
  override async fetch(request: Request): Promise<Response> {
    return replicaMesh.acceptUpgrade(this.#mesh, request)
  }

  meshStatus(): MeshStatus {
    return { ...durable.status(this.#held), links: replication.status(this.#mesh) }
  }

  /** Matches one order on the home node; the step is durable before this returns. */
  submit(input: market.OrderInput): MarketResult<marketState.OrderView> {
    const refused = this.#refuseMatching()
    if (refused !== undefined) return refused
    const existing = this.#state.orders.get(input.orderId)
    if (existing === undefined) this.#take(input)
    return this.#answer(this.#state.orders.get(input.orderId)!)
  }

  /** Cancels a resting order of `accountId` on the home node. */
  cancel(input: market.CancelInput): MarketResult<marketState.OrderView> {
    const refused = this.#refuseMatching()
    if (refused !== undefined) return refused
    const view = this.#state.orders.get(input.orderId)
    if (view === undefined || view.input.accountId !== input.accountId) {
      return reject('not_found', `no order ${input.orderId}`)
    }
    if (this.#state.book.orders.has(input.orderId)) this.#take(input)
    return this.#answer(view)
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
      resting: [...this.#state.book.orders.values()]
        .filter((order) => order.accountId === accountId)
        .map((order) => ({ remaining: order.remaining, price: order.price })),
      mark: this.mark(),
    })
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
    const fills = this.#state.accounts.get(accountId)?.fills ?? []
    const transfers = fills.flatMap(({ fill, ts, node }) =>
      market.fillTransfers(this.#instrument.symbol, fill, ts, node),
    )
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
      stale: Date.now() - row.ts > this.#config.markMaxAgeMs,
    }
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

  override async alarm(): Promise<void> {
    await replicaMesh.maintain(this.ctx.storage, this.#held, this.#mesh)
  }

  #take(input: market.OrderInput | market.CancelInput): void {
    const at = { ts: Date.now(), node: this.#config.nodeId }
    durable.write(this.#held, this.#config.nodeId, (doc) => {
      const step = marketState.take(this.#state, input, at)
      market.steps(doc).set(market.stepKey(step.seq), step)
    })
  }

  /** A damaged or diverged market serves nothing: its figures cannot be trusted for money. */
  #refuseReading(): MarketResult<never> | undefined {
    if (!this.#held.state.ok) return reject('shard_damaged', durable.damageMessage(this.#held))
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
    if (this.#instrument.spec.homeNode !== this.#config.nodeId) {
      return reject(
        'not_home_node',
        `${this.#instrument.symbol} is matched on node ${this.#instrument.spec.homeNode}`,
      )
    }
    // Steps beyond a gap: matching now would write a second history at the missing number.
    const doc = this.#held.state.ok ? this.#held.state.doc : undefined
    if (doc !== undefined && market.steps(doc).size !== this.#state.nextSeq - 1) {
      return reject('market_diverged', `${this.#instrument.symbol} holds steps beyond a gap`)
    }
    return undefined
  }

  #answer<T>(value: T): MarketResult<T> {
    return ok({ value, reflects: durable.reflects(this.#held) })
  }
}
