// The seeded client workload of a chaos run: `processes` clients, each a loop that picks an
// operation (deposit, withdrawal, order, cancel of one of its resting orders), an account (any
// of them: several clients hit the same accounts at several nodes at once) and a node, and sends
// it through the node's client proxy. A timeout or a 5xx is retried under the same request id at
// another node, up to `attemptsMax` tries. Every try is an invocation and a completion in the
// history. A few leveraged accounts trade near their margin limit, each always on one side, and
// the mark feed (a seeded random walk posted to every node, as the operator's feed would) now and
// then swings far and back, so settlements liquidate one of them.

import { orderIdOf } from '../../src/state/shard-doc'
import { rateDecimals, type Instrument } from '../../src/domain/instrument'
import * as money from '../../src/domain/money'
import { apiClient, type ApiClient, type ApiKey, type Reply } from '../../test/support/api-client'
import { fork, integerBetween, pick } from '../lib/random'
import type { Cluster } from './cluster'
import type { CompletionEvent, HistoryWriter, Op, Outcome, ReplySummary } from './history'

export type Account = { accountId: string; key: ApiKey }

/** An account that only ever opens positions on `side`, each near its margin limit. */
export type LeveragedAccount = {
  account: Account
  side: 'buy' | 'sell'
  /** Its first deposit (USD units): it is topped up when its equity falls below half. */
  deposit: bigint
}

export type WorkloadOptions = {
  cluster: Cluster
  history: HistoryWriter
  accounts: Account[]
  leveraged: LeveragedAccount[]
  instruments: Instrument[]
  processes: number
  random: () => number
  /** A request unanswered by then is an unknown outcome (info). */
  requestTimeoutMs: number
  attemptsMax: number
  /** Pause between a client's operations. */
  thinkMs: [number, number]
  /** Share of operations that withdraw most of what the node says is withdrawable. */
  drainShare: number
  marks: MarkFeed
}

export type Workload = { stop(): Promise<void> }

/** Classifies a reply: 2xx ok; 4xx and 503 with an error envelope fail (not executed); else info. */
export function outcomeOf(reply: Reply | undefined): Outcome {
  if (reply === undefined) return 'info'
  if (reply.status >= 200 && reply.status < 300) return 'ok'
  if (reply.status >= 400 && reply.status < 500) return 'fail'
  if (reply.status === 503 && typeof reply.body?.error?.code === 'string') return 'fail'
  return 'info'
}

/** A client of one node through its proxy; each call bounded by the request timeout. */
const clientOf = (cluster: Cluster, node: string, timeoutMs: number): ApiClient =>
  apiClient(
    (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
    cluster.clientUrl(node),
    cluster.adminToken,
  )

/** Sends one try of `op` to `node`. */
async function send(
  client: ApiClient,
  account: Account,
  op: Op,
): Promise<{ reply?: Reply; error?: string }> {
  try {
    switch (op.f) {
      case 'deposit':
        return {
          reply: await client.admin('POST', '/v1/admin/deposits', {
            depositId: op.requestId,
            accountId: op.accountId,
            asset: 'USD',
            amount: op.amount,
            signedAt: Date.now(),
          }),
        }
      case 'withdraw':
        return {
          reply: await client.signed(account.key, 'POST', '/v1/withdrawals', {
            withdrawalId: op.requestId,
            asset: 'USD',
            amount: op.amount,
          }),
        }
      case 'order':
        return {
          reply: await client.signed(account.key, 'POST', '/v1/orders', {
            clientOrderId: op.requestId,
            instrument: op.instrument,
            side: op.side,
            type: op.type,
            ...(op.price !== null && { price: op.price }),
            size: op.size,
            timeInForce: op.timeInForce,
          }),
        }
      case 'cancel':
        return { reply: await client.signed(account.key, 'DELETE', `/v1/orders/${op.orderId}`) }
    }
  } catch (error) {
    return { error: String((error as Error).cause ?? error).slice(0, 200) }
  }
}

function summarize(op: Op, reply: Reply): ReplySummary | undefined {
  if (reply.status < 200 || reply.status >= 300) return undefined
  if (typeof reply.body !== 'object' || reply.body === null) return {}
  const body = reply.body as Record<string, unknown>
  const text = (name: string) =>
    typeof body[name] === 'string' ? { [name]: body[name] as string } : {}
  const replayed = reply.headers.get('Idempotent-Replayed') === 'true'
  if (op.f === 'deposit' || op.f === 'withdraw')
    return { ...text('amount'), ...text('node'), replayed }
  return { ...text('orderId'), ...text('status'), ...text('filledSize'), replayed }
}

/** Runs every try of one request until an answer that settles it, or the tries run out. */
export async function perform(
  options: Pick<WorkloadOptions, 'cluster' | 'history' | 'requestTimeoutMs' | 'attemptsMax'>,
  context: { process: number; random: () => number; stopping: () => boolean },
  account: Account,
  op: Op,
  firstNode: string,
): Promise<CompletionEvent> {
  const { cluster, history } = options
  let node = firstNode
  let completion: CompletionEvent | undefined
  for (let attempt = 1; attempt <= options.attemptsMax; attempt++) {
    history.append({
      type: 'invoke',
      t: history.now(),
      process: context.process,
      attempt,
      node,
      op,
    })
    const client = clientOf(cluster, node, options.requestTimeoutMs)
    const { reply, error } = await send(client, account, op)
    const outcome = outcomeOf(reply)
    const envelope = reply?.body?.error as { code?: string; retryable?: boolean } | undefined
    const summary = reply === undefined ? undefined : summarize(op, reply)
    completion = {
      type: outcome,
      t: history.now(),
      process: context.process,
      attempt,
      node,
      op,
      ...(reply !== undefined && { status: reply.status }),
      ...(envelope?.code !== undefined && { code: envelope.code }),
      ...(envelope?.retryable !== undefined && { retryable: envelope.retryable }),
      ...(summary !== undefined && { reply: summary }),
      ...(error !== undefined && { error }),
    }
    history.append(completion)
    const retry = reply === undefined || reply.status >= 500
    if (!retry || context.stopping()) break
    // Another node, after a short pause: the same request id, on whichever side it lands.
    await sleep(integerBetween(context.random, 100, 400))
    const others = cluster.members().filter((id) => id !== node)
    node = pick(context.random, others.length > 0 ? others : cluster.members())
  }
  return completion!
}

export function startWorkload(options: WorkloadOptions): Workload {
  let stopping = false
  const loops = Array.from({ length: options.processes }, (_, index) =>
    clientLoop(options, index + 1, fork(options.random), () => stopping),
  )
  return {
    async stop() {
      stopping = true
      await Promise.all(loops)
    },
  }
}

/** The account as `node` reads it (GET /v1/account), or undefined when it cannot say. */
async function readAccount(
  options: WorkloadOptions,
  account: Account,
  node: string,
): Promise<Reply['body'] | undefined> {
  const client = clientOf(options.cluster, node, options.requestTimeoutMs)
  const read = await client.signed(account.key, 'GET', '/v1/account').catch(() => undefined)
  return read?.status === 200 ? read.body : undefined
}

/** A USD amount of an account read; undefined when absent or not one. */
function amountOf(text: unknown): bigint | undefined {
  if (typeof text !== 'string') return undefined
  const parsed = money.parse(text, { ...money.usdTransfer, allowZero: true, allowNegative: true })
  return parsed.ok ? parsed.value : undefined
}

/** 80-100% of what `node` reports withdrawable, or undefined when it cannot say or it is little. */
async function drainable(
  options: WorkloadOptions,
  account: Account,
  node: string,
  random: () => number,
): Promise<string | undefined> {
  const withdrawable = amountOf((await readAccount(options, account, node))?.withdrawable)
  if (withdrawable === undefined || withdrawable < 0n) return undefined
  const share = BigInt(integerBetween(random, 80, 100))
  const cents = (withdrawable * share) / 100n / 10_000n
  return cents < 100n ? undefined : money.format(cents * 10_000n, 6)
}

type Resting = { account: Account; orderId: string; clientOrderId: string; instrument: string }

async function clientLoop(
  options: WorkloadOptions,
  process: number,
  random: () => number,
  stopping: () => boolean,
): Promise<void> {
  const resting: Resting[] = []
  let sequence = 0
  const context = { process, random, stopping }
  while (!stopping()) {
    try {
      await clientStep(options, context, resting, `${process}-${sequence++}`)
    } catch (error) {
      // A harness bug must not end the run silently: say it, and let the checkers judge.
      console.error(`[workload] client ${process}: ${(error as Error).stack ?? String(error)}`)
    }
    await sleep(integerBetween(random, ...options.thinkMs))
  }
}

async function clientStep(
  options: WorkloadOptions,
  context: { process: number; random: () => number; stopping: () => boolean },
  resting: Resting[],
  id: string,
): Promise<void> {
  const { random } = context
  if (options.leveraged.length > 0 && random() < leveragedShare) {
    const leveraged = pick(random, options.leveraged)
    const node = pick(random, options.cluster.members())
    const op = await leveragedOp(options, random, leveraged, node, id)
    if (op !== undefined) await perform(options, context, leveraged.account, op, node)
    return
  }
  const account = pick(random, options.accounts)
  const node = pick(random, options.cluster.members())
  const roll = random()
  let op: Op
  if (roll < 0.2) {
    const amount = cents(random, 50, 2_000)
    op = { f: 'deposit', requestId: `d-${id}`, accountId: account.accountId, amount }
  } else if (roll < 0.2 + options.drainShare) {
    // A drain: most of what the node says is withdrawable. Two drains of one account on two
    // sides of a partition overdraw it unless the nodes coordinate (escrow, I4).
    const amount = await drainable(options, account, node, random)
    if (amount === undefined) return
    op = { f: 'withdraw', requestId: `w-${id}`, accountId: account.accountId, amount }
  } else if (roll < 0.45) {
    const amount = cents(random, 1, 300)
    op = { f: 'withdraw', requestId: `w-${id}`, accountId: account.accountId, amount }
  } else if (roll < 0.6 && resting.length > 0) {
    const order = resting.splice(Math.floor(random() * resting.length), 1)[0]!
    const cancel: Op = {
      f: 'cancel',
      requestId: `x-${order.clientOrderId}`,
      accountId: order.account.accountId,
      orderId: order.orderId,
      instrument: order.instrument,
    }
    await perform(options, context, order.account, cancel, node)
    return
  } else op = orderOp(options, random, account, `o-${id}`)
  const done = await perform(options, context, account, op, node)
  const rests = ['open', 'partially_filled'].includes(done.reply?.status ?? '')
  if (op.f === 'order' && done.type === 'ok' && rests)
    resting.push({
      account,
      orderId: op.orderId,
      clientOrderId: op.requestId,
      instrument: op.instrument,
    })
}

/** Share of operations that go to a leveraged account. */
const leveragedShare = 0.2
/**
 * A leveraged order's initial margin, as a percent of what the node lets it spend: the node also
 * holds back the order's loss against the mark and its taker fee.
 */
const leveragedMarginShare = 90n
/** How far through the mark a leveraged order is priced (millionths): past the resting orders. */
const leveragedThrough = 5_000n

/**
 * A GTC limit order on the account's side, priced 0.5% through the mark (a market order's margin
 * would be held at the band's edge, 10% off), whose initial margin is most of what `node` lets it
 * spend, taking it near its limit (what the book cannot fill rests until another order takes
 * it); when that buys not one lot and a liquidation has eaten the account's equity below half
 * its first deposit, a top-up instead.
 */
async function leveragedOp(
  options: WorkloadOptions,
  random: () => number,
  { account, side, deposit }: LeveragedAccount,
  node: string,
  id: string,
): Promise<Op | undefined> {
  const { accountId } = account
  const read = await readAccount(options, account, node)
  const usable = amountOf(read?.rights?.usableHere)
  const equity = amountOf(read?.equity)
  if (usable === undefined || equity === undefined) return undefined
  const instrument = pick(random, options.instruments)
  const notional =
    (usable * leveragedMarginShare * 10n ** BigInt(rateDecimals)) /
    100n /
    instrument.initialMarginRate
  const mark = options.marks.price(instrument.symbol)
  const lots = notional / (mark * instrument.lot * instrument.notionalScale)
  if (lots < 1n)
    return equity < deposit / 2n
      ? { f: 'deposit', requestId: `d-${id}`, accountId, amount: cents(random, 100, 300) }
      : undefined
  return {
    f: 'order',
    requestId: `o-${id}`,
    accountId,
    orderId: orderIdOf(accountId, `o-${id}`),
    instrument: instrument.symbol,
    side,
    type: 'limit',
    price: tickPrice(instrument, mark, side === 'buy' ? leveragedThrough : -leveragedThrough),
    size: money.format(instrument.lot * lots, instrument.sizeDecimals),
    timeInForce: 'GTC',
  }
}

function orderOp(
  options: WorkloadOptions,
  random: () => number,
  account: Account,
  clientOrderId: string,
): Op {
  const instrument = pick(random, options.instruments)
  const side = random() < 0.5 ? 'buy' : 'sell'
  const market = random() < 0.2
  const lots = BigInt(integerBetween(random, 1, 10))
  const size = money.format(
    (instrument.minSize > instrument.lot ? instrument.minSize : instrument.lot) * lots,
    instrument.sizeDecimals,
  )
  const mark = options.marks.price(instrument.symbol)
  // Within ±0.3% of the mark, on the tick: about half the limit orders cross.
  const price = tickPrice(instrument, mark, BigInt(Math.round((random() * 2 - 1) * 3_000)))
  const tif = market ? 'IOC' : pick(random, ['GTC', 'GTC', 'IOC', 'POST_ONLY'] as const)
  return {
    f: 'order',
    requestId: clientOrderId,
    accountId: account.accountId,
    orderId: orderIdOf(account.accountId, clientOrderId),
    instrument: instrument.symbol,
    side,
    type: market ? 'market' : 'limit',
    price: market ? null : price,
    size,
    timeInForce: tif,
  }
}

/** The price `offset` millionths off the mark, on the tick. */
function tickPrice(instrument: Instrument, mark: bigint, offset: bigint): string {
  const raw = (mark * (1_000_000n + offset)) / 1_000_000n
  return money.format((raw / instrument.tick) * instrument.tick, instrument.priceDecimals)
}

const cents = (random: () => number, min: number, max: number) =>
  `${integerBetween(random, min, max - 1)}.${String(integerBetween(random, 0, 99)).padStart(2, '0')}`

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Share of mark ticks that swing far instead of walking. */
const swingShare = 0.2
/**
 * A swing's size in millionths: 6-8%, past what a position near its 10% initial margin can lose
 * before its 5% maintenance margin, short of what its deposit can lose (no bankrupt liquidation).
 */
const swingMillionths: [number, number] = [60_000, 80_000]

/**
 * The operator's mark feed: a seeded random walk per instrument, posted to every live node, that
 * now and then swings far and (at its next swing) back.
 */
export type MarkFeed = {
  price(symbol: string): bigint
  start(): void
  stop(): Promise<void>
  /** Posts the current marks to one node now (a node back from a restart). */
  post(node: string): Promise<void>
}

export function markFeed(
  cluster: Cluster,
  instruments: Instrument[],
  start: Record<string, string>,
  random: () => number,
  intervalMs = 2_000,
): MarkFeed {
  const prices = new Map(
    instruments.map((i) => [
      i.symbol,
      BigInt(start[i.symbol] ?? '1000') * 10n ** BigInt(i.priceDecimals),
    ]),
  )
  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> = Promise.resolve()
  const post = async (node: string) => {
    const client = cluster.admin(node, 2_000)
    await Promise.all(
      instruments.map((instrument) =>
        client
          .admin('POST', '/v1/admin/marks', {
            instrument: instrument.symbol,
            price: money.format(prices.get(instrument.symbol)!, instrument.priceDecimals),
            ts: Date.now(),
          })
          .catch(() => undefined),
      ),
    )
  }
  // Each instrument's next swing goes the other way: the mark swings out and back, never far off.
  const swingSign = new Map(instruments.map((i) => [i.symbol, random() < 0.5 ? 1n : -1n]))
  const tick = async () => {
    for (const instrument of instruments) {
      const price = prices.get(instrument.symbol)!
      let step = BigInt(Math.round((random() * 2 - 1) * 1_000)) // ±0.1%
      if (random() < swingShare) {
        const sign = -swingSign.get(instrument.symbol)!
        swingSign.set(instrument.symbol, sign)
        step = sign * BigInt(integerBetween(random, ...swingMillionths))
      }
      const next = (price * (1_000_000n + step)) / 1_000_000n
      prices.set(instrument.symbol, (next / instrument.tick) * instrument.tick)
    }
    await Promise.all(
      cluster.ids.filter((id) => cluster.node(id).state === 'running').map((id) => post(id)),
    )
  }
  return {
    price: (symbol) => prices.get(symbol)!,
    post,
    start() {
      const loop = () => {
        running = tick().then(() => {
          if (timer !== undefined) timer = setTimeout(loop, intervalMs)
        })
      }
      timer = setTimeout(loop, 0)
    },
    async stop() {
      clearTimeout(timer)
      timer = undefined
      await running
    },
  }
}
