// Closed-loop HTTP load from autocannon, in a process of its own (started by the suite through
// harness.runScript): `connections` connections each keep one request in flight, for `seconds`
// or until `amount` requests were answered. Every request is built afresh: a deposit, withdrawal
// or order gets its own id, and a client call is signed at the moment it is built (hex
// HMAC-SHA256 of timestamp + METHOD + path + body, src/api/signing.ts). Prints one JSON line.
//
//   npx tsx scripts/bench/load.ts <spec.json>

import autocannon from 'autocannon'
import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { seededRandom } from '../lib/random'

export type SignedAccount = { accountId: string; keyId: string; secret: string }

export type Workload =
  | { kind: 'get'; path: string }
  | {
      kind: 'deposit'
      adminToken: string
      accounts: string[]
      tag: string
      durability?: 'local' | 'quorum'
      /** Pad request ids to the 64-character limit (grows a document fastest). */
      padIds?: boolean
    }
  | {
      kind: 'withdrawal'
      accounts: SignedAccount[]
      tag: string
      durability?: 'local' | 'quorum'
    }
  | {
      kind: 'order'
      accounts: SignedAccount[]
      tag: string
      instrument: string
      /** The mark in ticks, the tick and lot as decimal strings: prices stay on the grid. */
      markTicks: number
      tickSize: string
      lotSize: string
      durability?: 'local' | 'quorum'
    }

export type LoadSpec = {
  url: string
  connections: number
  seconds?: number
  amount?: number
  timeoutSeconds?: number
  workload: Workload
  seed?: number
}

export type LoadResult = {
  url: string
  kind: string
  seconds: number
  requests: number
  ok: number
  okPerSecond: number
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number }
  statuses: Record<string, number>
  errors: number
  timeouts: number
  /** The first few non-2xx bodies, to tell why. */
  samples: string[]
}

const sign = (secret: string, payload: string) =>
  createHmac('sha256', secret).update(payload).digest('hex')

/** Formats `ticks` of `tickSize` as a decimal string without floating point. */
export function ticksToDecimal(ticks: number, tickSize: string): string {
  const decimals = tickSize.includes('.') ? tickSize.split('.')[1]!.length : 0
  const tickUnits = BigInt(tickSize.replace('.', ''))
  const units = BigInt(ticks) * tickUnits
  const text = units.toString().padStart(decimals + 1, '0')
  return decimals === 0 ? text : `${text.slice(0, -decimals)}.${text.slice(-decimals)}`
}

type Built = { method: string; path: string; headers: Record<string, string>; body?: string }

/** A function that builds request number n of the workload. */
function builder(workload: Workload, seed: number): (n: number) => Built {
  const random = seededRandom(seed)
  const signed = (account: SignedAccount, method: string, path: string, body: string): Built => {
    const timestamp = String(Date.now())
    return {
      method,
      path,
      body,
      headers: {
        'content-type': 'application/json',
        'x-api-key': account.keyId,
        'x-api-timestamp': timestamp,
        'x-api-signature': sign(account.secret, `${timestamp}${method}${path}${body}`),
      },
    }
  }
  switch (workload.kind) {
    case 'get':
      return () => ({ method: 'GET', path: workload.path, headers: {} })
    case 'deposit':
      return (n) => {
        const id = `${workload.tag}-${n}`
        const body = JSON.stringify({
          depositId: workload.padIds === true ? `${id}-`.padEnd(64, 'p') : id,
          accountId: workload.accounts[n % workload.accounts.length],
          asset: 'USD',
          amount: '1.25',
          signedAt: Date.now(),
          ...(workload.durability !== undefined && { durability: workload.durability }),
        })
        return {
          method: 'POST',
          path: '/v1/admin/deposits',
          body,
          headers: {
            authorization: `Bearer ${workload.adminToken}`,
            'content-type': 'application/json',
          },
        }
      }
    case 'withdrawal':
      return (n) => {
        const body = JSON.stringify({
          withdrawalId: `${workload.tag}-${n}`,
          asset: 'USD',
          amount: '0.01',
          ...(workload.durability !== undefined && { durability: workload.durability }),
        })
        return signed(
          workload.accounts[n % workload.accounts.length]!,
          'POST',
          '/v1/withdrawals',
          body,
        )
      }
    case 'order':
      return (n) => {
        // Alternating sides at up to 5 ticks either side of the mark: about half the flow crosses.
        const side = n % 2 === 0 ? 'buy' : 'sell'
        const offset = Math.floor(random() * 11) - 5
        const ticks = workload.markTicks + (side === 'buy' ? offset : -offset)
        const body = JSON.stringify({
          clientOrderId: `${workload.tag}-${n}`,
          instrument: workload.instrument,
          side,
          type: 'limit',
          price: ticksToDecimal(ticks, workload.tickSize),
          size: workload.lotSize,
          ...(workload.durability !== undefined && { durability: workload.durability }),
        })
        // Buys from one half of the accounts, sells from the other: no order meets its own account.
        const count = workload.accounts.length
        const account =
          workload.accounts[(Math.floor(n / 2) + (n % 2) * Math.floor(count / 2)) % count]!
        return signed(account, 'POST', '/v1/orders', body)
      }
  }
}

async function main(): Promise<void> {
  const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadSpec
  const build = builder(spec.workload, spec.seed ?? 1)
  let next = 0
  const statuses: Record<string, number> = {}
  const samples: string[] = []
  const url = new URL(spec.url)
  if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
    throw new Error(`load goes to loopback only, not ${url.hostname}`)
  }
  const startedAt = performance.now()
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    pipelining: 1,
    timeout: spec.timeoutSeconds ?? 10,
    ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.seconds ?? 10 }),
    requests: [
      {
        setupRequest: (request: Record<string, unknown>) => {
          const built = build(next++)
          return { ...request, ...built }
        },
        onResponse: (status: number, body: string) => {
          statuses[status] = (statuses[status] ?? 0) + 1
          if ((status < 200 || status >= 300) && samples.length < 5)
            samples.push(`${status} ${body.slice(0, 300)}`)
        },
      },
    ],
  })
  const seconds = (performance.now() - startedAt) / 1000
  const ok = Object.entries(statuses)
    .filter(([status]) => status.startsWith('2'))
    .reduce((sum, [, count]) => sum + count, 0)
  const output: LoadResult = {
    url: spec.url,
    kind: spec.workload.kind,
    seconds: result.duration,
    requests: Object.values(statuses).reduce((sum, count) => sum + count, 0),
    ok,
    okPerSecond: ok / (spec.amount !== undefined ? seconds : result.duration),
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
      mean: result.latency.average,
    },
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    samples,
  }
  console.log(JSON.stringify(output))
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error((error as Error)?.stack ?? String(error))
    process.exit(1)
  },
)
