// Order throughput through the signed HTTP API of one real node (scripts/node.ts on workerd, a
// temporary data folder, loopback only): a quick order-only probe; `npm run bench` measures
// orders with autocannon beside the ceiling. Per run: fresh funded accounts, then `--concurrency`
// clients for `--seconds` each keep one order in flight: limit orders of one lot alternating buy
// and sell at a seeded random offset of up to 5 ticks around the mark, so about half cross.
// Every request is signed afresh and has its own clientOrderId. Between runs every resting order
// is cancelled, so each run starts on an empty book. Prints one JSON line: the median of the runs
// and their spread; the node is stopped at the end, whatever happens.
//
//   npx tsx scripts/bench/orders-api.ts [--seconds 10] [--concurrency 16] [--accounts 32]
//     [--runs 3] [--instruments BTC-PERP] [--shards 16] [--seed 1]

import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { signRequest } from '../../src/api/signing'
import * as instruments from '../../src/domain/instrument'
import { readCatalog } from '../../src/instruments'
import { integerOption, parseOptions, runMain, UsageError } from '../lib/cli'
import { signalGroup, spawnNode, type NodeProcess } from '../lib/node-process'
import { seededRandom } from '../lib/random'

const usage = `usage: npx tsx scripts/bench/orders-api.ts [--seconds 10] [--concurrency 16] [--accounts 32] [--runs 3]
  --seconds      length of each run's order flow (default 10)
  --concurrency  clients, each with one order in flight (default 16)
  --accounts     funded accounts per run, shared round-robin by the clients (default 32)
  --runs         runs; the median and the spread are reported (default 3)
  --instruments  comma-separated instruments the clients take turns on (default BTC-PERP)
  --shards       shard documents of the node (default: wrangler.toml)
  --seed         seed of the price offsets (default 1)`

/** Mark prices the flow is centred on (the default catalog's instruments). */
const marks: Record<string, string> = { 'BTC-PERP': '60000', 'ETH-PERP': '3000' }
/** Largest offset from the mark, in ticks. */
const offsetTicksMax = 5
/** A request that takes longer than this counts as failed (the run never waits on one longer). */
const requestTimeoutMs = 10_000
const deposit = '1000000'

type Options = {
  seconds: number
  concurrency: number
  accounts: number
  runs: number
  instruments: instruments.Instrument[]
  shards: number | undefined
  seed: number
}

function parseBenchArgs(argv: string[]): Options {
  const values = parseOptions(argv, {
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '16' },
    accounts: { type: 'string', default: '32' },
    runs: { type: 'string', default: '3' },
    instruments: { type: 'string', default: 'BTC-PERP' },
    shards: { type: 'string' },
    seed: { type: 'string', default: '1' },
  })
  const catalog = readCatalog(undefined)
  const symbols = values.instruments.split(',').filter((s) => s !== '')
  const listed = symbols.map((symbol) => {
    const instrument = catalog.get(symbol)
    if (instrument === undefined || marks[symbol] === undefined) {
      throw new UsageError(
        `--instruments: ${symbol} is not one of ${Object.keys(marks).join(', ')}`,
      )
    }
    return instrument
  })
  if (listed.length === 0) throw new UsageError('--instruments names no instrument')
  return {
    seconds: integerOption('--seconds', values.seconds, 1, 600),
    concurrency: integerOption('--concurrency', values.concurrency, 1, 1_024),
    accounts: integerOption('--accounts', values.accounts, 1, 10_000),
    runs: integerOption('--runs', values.runs, 1, 100),
    instruments: listed,
    shards:
      values.shards === undefined ? undefined : integerOption('--shards', values.shards, 1, 256),
    seed: integerOption('--seed', values.seed, 0, 2 ** 31),
  }
}

type Key = { keyId: string; secret: string }
type Reply = { status: number; body: any }

/** A minimal client of the node: admin calls with the token, client calls freshly signed. */
function client(base: string, adminToken: string) {
  const send = async (path: string, init: RequestInit): Promise<Reply> => {
    const response = await fetch(base + path, {
      ...init,
      signal: AbortSignal.timeout(requestTimeoutMs),
    })
    const text = await response.text()
    return { status: response.status, body: text.length > 0 ? JSON.parse(text) : null }
  }
  return {
    admin: (method: string, path: string, body?: unknown) =>
      send(path, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      }),
    signed: async (key: Key, method: string, path: string, body?: unknown) => {
      const text = body === undefined ? '' : JSON.stringify(body)
      const headers = await signRequest(key, { method, pathWithQuery: path, body: text })
      return send(path, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        ...(body !== undefined && { body: text }),
      })
    },
  }
}
type Client = ReturnType<typeof client>

const expectStatus = (reply: Reply, status: number, what: string) => {
  if (reply.status !== status) {
    throw new Error(`${what}: ${reply.status} ${JSON.stringify(reply.body)}`)
  }
  return reply.body
}

/** Runs `work` over `items`, at most `width` at a time. */
async function pooled<T>(items: T[], width: number, work: (item: T) => Promise<void>) {
  let next = 0
  const lane = async () => {
    while (next < items.length) await work(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane))
}

async function fundAccounts(api: Client, run: number, count: number) {
  const accounts: { accountId: string; key: Key }[] = []
  await pooled(
    Array.from({ length: count }, (_, i) => `bench-r${run}-${i}`),
    16,
    async (accountId) => {
      expectStatus(await api.admin('POST', '/v1/admin/accounts', { accountId }), 201, accountId)
      const key = expectStatus(
        await api.admin('POST', `/v1/admin/accounts/${accountId}/keys`, {
          scopes: ['read', 'trade'],
        }),
        201,
        `${accountId} key`,
      )
      expectStatus(
        await api.admin('POST', '/v1/admin/deposits', {
          depositId: `bench-${accountId}`,
          accountId,
          asset: 'USD',
          amount: deposit,
          signedAt: Date.now(),
        }),
        201,
        `${accountId} deposit`,
      )
      accounts.push({ accountId, key: { keyId: key.keyId, secret: key.secret } })
    },
  )
  return accounts.sort((a, b) => (a.accountId < b.accountId ? -1 : 1))
}

function markUnits(instrument: instruments.Instrument): bigint {
  const mark = instruments.parsePrice(instrument, marks[instrument.symbol])
  if (!mark.ok) throw new Error(mark.message)
  return mark.value
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!

type RunResult = {
  ordersPerSecond: number
  orders: number
  share2xx: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  fills: number
  takerFills: number
  statuses: Record<string, number>
  failures: Record<string, number>
}

async function run(api: Client, options: Options, index: number): Promise<RunResult> {
  const accounts = await fundAccounts(api, index, options.accounts)
  const latencies: number[] = []
  const statuses: Record<string, number> = {}
  const failures: Record<string, number> = {}
  let ok = 0
  let takerFills = 0
  const started = performance.now()
  const deadline = started + options.seconds * 1000
  const clientLoop = async (c: number) => {
    const next = seededRandom(options.seed + index * 1_000 + c)
    for (let n = 0; performance.now() < deadline; n++) {
      const account = accounts[(c + n * options.concurrency) % accounts.length]!
      const instrument = options.instruments[n % options.instruments.length]!
      const side = (c + n) % 2 === 0 ? 'buy' : 'sell'
      const offset = BigInt(Math.floor(next() * (2 * offsetTicksMax + 1)) - offsetTicksMax)
      // A buy above the mark or a sell below it is aggressive: about half the flow crosses.
      const price = markUnits(instrument) + (side === 'buy' ? offset : -offset) * instrument.tick
      const body = {
        clientOrderId: `r${index}-c${c}-${n}`,
        instrument: instrument.symbol,
        side,
        type: 'limit',
        price: instruments.formatPrice(instrument, price),
        size: instrument.spec.lotSize,
      }
      const sentAt = performance.now()
      try {
        const reply = await api.signed(account.key, 'POST', '/v1/orders', body)
        latencies.push(performance.now() - sentAt)
        statuses[reply.status] = (statuses[reply.status] ?? 0) + 1
        if (reply.status >= 200 && reply.status < 300) {
          ok++
          if (reply.body.filledSize !== '0') takerFills++
        } else {
          const code = reply.body?.error?.code ?? 'unknown'
          failures[code] = (failures[code] ?? 0) + 1
        }
      } catch (error) {
        latencies.push(performance.now() - sentAt)
        const code = (error as Error).name
        failures[code] = (failures[code] ?? 0) + 1
        statuses.none = (statuses.none ?? 0) + 1
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, (_, c) => clientLoop(c)))
  const elapsed = (performance.now() - started) / 1000
  const sorted = latencies.sort((a, b) => a - b)
  const fills = await countFills(api, accounts)
  await cancelResting(api, accounts, options.instruments)
  return {
    ordersPerSecond: ok / elapsed,
    orders: latencies.length,
    share2xx: latencies.length === 0 ? 0 : ok / latencies.length,
    p50Ms: percentile(sorted, 0.5),
    p90Ms: percentile(sorted, 0.9),
    p99Ms: percentile(sorted, 0.99),
    fills,
    takerFills,
    statuses,
    failures,
  }
}

/** Distinct fills of the run's accounts (each fill is listed for its taker and its maker). */
async function countFills(api: Client, accounts: { key: Key }[]): Promise<number> {
  const ids = new Set<string>()
  await pooled(accounts, 8, async ({ key }) => {
    let cursor: string | null = null
    do {
      const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`
      const page = expectStatus(
        await api.signed(key, 'GET', `/v1/fills?limit=500${query}`),
        200,
        'fills',
      )
      for (const fill of page.fills) ids.add(fill.fillId)
      cursor = page.nextCursor
    } while (cursor !== null)
  })
  return ids.size
}

/** Cancels every resting order of the run, so the next run starts on an empty book. */
async function cancelResting(
  api: Client,
  accounts: { key: Key }[],
  listed: instruments.Instrument[],
) {
  await pooled(accounts, 8, async ({ key }) => {
    for (const instrument of listed) {
      const path = `/v1/orders?instrument=${instrument.symbol}`
      expectStatus(await api.signed(key, 'DELETE', path), 200, 'cancel all')
    }
  })
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}
const round = (value: number, digits = 0) => Number(value.toFixed(digits))
const spread = (values: number[], digits = 0) => ({
  median: round(median(values), digits),
  min: round(Math.min(...values), digits),
  max: round(Math.max(...values), digits),
})

async function main(argv: string[]): Promise<number> {
  const options = parseBenchArgs(argv)
  const root = await mkdtemp(join(tmpdir(), 'clearmesh-bench-'))
  const adminToken = `admin-${randomBytes(12).toString('hex')}`
  let node: NodeProcess | undefined
  let markTimer: ReturnType<typeof setInterval> | undefined
  // Bounded in time whatever happens: a stuck node or request ends the bench with an error.
  const budgetMs = 120_000 + options.runs * (options.seconds * 1000 + 90_000)
  const watchdog = setTimeout(() => {
    console.error(`orders-api bench: over its ${budgetMs} ms budget, stopping`)
    if (node !== undefined) signalGroup(node.pid, 'SIGKILL')
    process.exit(1)
  }, budgetMs)
  const interrupted = () => {
    if (node !== undefined) signalGroup(node.pid, 'SIGKILL')
    process.exit(130)
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  try {
    const startedAt = performance.now()
    node = spawnNode(
      {
        id: 'a',
        port: 0,
        host: '127.0.0.1',
        data: join(root, 'a'),
        ...(options.shards !== undefined && { shards: options.shards }),
        env: {
          CLEARMESH_ADMIN_TOKEN: adminToken,
          CLEARMESH_KEY_SECRET: `keys-${randomBytes(12).toString('hex')}`,
          CLEARMESH_MESH_SECRET: `mesh-${randomBytes(12).toString('hex')}`,
        },
      },
      { readyTimeoutMs: 90_000 },
    )
    const url = await node.ready
    if (new URL(url).hostname !== '127.0.0.1') throw new Error(`node is not on loopback: ${url}`)
    const coldStartMs = performance.now() - startedAt
    const api = client(url, adminToken)
    // A mark stamped ahead of the node's clock is refused: post fresh ones every 5 s instead.
    const postMarks = () =>
      Promise.all(
        options.instruments.map(async (instrument) =>
          expectStatus(
            await api.admin('POST', '/v1/admin/marks', {
              instrument: instrument.symbol,
              price: marks[instrument.symbol],
              ts: Date.now(),
            }),
            200,
            'mark',
          ),
        ),
      )
    await postMarks()
    markTimer = setInterval(() => void postMarks().catch(() => undefined), 5_000)
    const results: RunResult[] = []
    for (let index = 0; index < options.runs; index++) {
      const result = await run(api, options, index)
      console.error(
        `run ${index + 1}/${options.runs}: ${round(result.ordersPerSecond)} orders/s, ` +
          `p50 ${round(result.p50Ms, 1)} ms, p99 ${round(result.p99Ms, 1)} ms, ` +
          `2xx ${round(result.share2xx * 100, 2)}%, ${result.fills} fills`,
      )
      results.push(result)
    }
    console.log(
      JSON.stringify({
        bench: 'POST /v1/orders (signed, one node)',
        seconds: options.seconds,
        concurrency: options.concurrency,
        accounts: options.accounts,
        runs: options.runs,
        instruments: options.instruments.map((i) => i.symbol),
        coldStartMs: round(coldStartMs),
        ordersPerSecond: spread(results.map((r) => r.ordersPerSecond)),
        latencyMs: {
          p50: spread(
            results.map((r) => r.p50Ms),
            1,
          ),
          p90: spread(
            results.map((r) => r.p90Ms),
            1,
          ),
          p99: spread(
            results.map((r) => r.p99Ms),
            1,
          ),
        },
        share2xx: spread(
          results.map((r) => r.share2xx),
          4,
        ),
        fillsPerRun: spread(results.map((r) => r.fills)),
        ordersPerRun: spread(results.map((r) => r.orders)),
        statuses: results.map((r) => r.statuses),
        failures: results.map((r) => r.failures),
        takerFillsMatch: results.every((r) => r.takerFills === r.fills),
      }),
    )
    return 0
  } catch (error) {
    if (node !== undefined) console.error(`node output:\n${node.output()}`)
    throw error
  } finally {
    clearTimeout(watchdog)
    clearInterval(markTimer)
    if (node !== undefined) await node.stop()
    await rm(root, { recursive: true, force: true })
  }
}

runMain('orders-api bench', usage, main)
