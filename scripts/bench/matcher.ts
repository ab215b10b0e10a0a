// Matcher throughput in pure code: orders per second through `matcher.submit` on a book kept
// near the touch by a seeded random flow (limit orders around a mid, some market orders and
// cancels). Prints the median of the runs and their spread.
//
//   npx tsx scripts/bench/matcher.ts [--orders 200000] [--runs 5] [--seed 1]

import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import * as matcher from '../../src/domain/matcher'
import { readCatalog } from '../../src/instruments'
import { seededRandom } from '../lib/random'

const btc = readCatalog(undefined).get('BTC-PERP')!

export type MatcherRun = { ordersPerSecond: number; fills: number; resting: number }

/** One run of `orders` orders through a fresh book, replayed from `seed`. */
export function runMatcher(orders: number, seed: number): MatcherRun {
  const next = seededRandom(seed)
  const book = matcher.create(btc)
  const mid = 120_000n // price units of 0.5: 60000
  let fills = 0
  const started = performance.now()
  for (let n = 0; n < orders; n++) {
    const side = next() < 0.5 ? 'buy' : 'sell'
    const roll = next()
    if (roll < 0.1 && book.orders.size > 0) {
      const ids = book.orders.keys()
      matcher.cancel(book, ids.next().value!)
      continue
    }
    const offset = BigInt(Math.floor(next() * 40) - 10)
    const price = roll < 0.15 ? null : side === 'buy' ? mid - offset : mid + offset
    const decisions = matcher.submit(book, {
      orderId: `o${n}`,
      accountId: `acct-${Math.floor(next() * 1000)}`,
      side,
      price,
      size: BigInt(1 + Math.floor(next() * 20)) * btc.lot,
      timeInForce: price === null ? 'IOC' : 'GTC',
      reduceOnly: false,
    })
    for (const decision of decisions) if (decision.type === 'fill') fills++
  }
  const seconds = (performance.now() - started) / 1000
  return { ordersPerSecond: orders / seconds, fills, resting: book.orders.size }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      orders: { type: 'string', default: '200000' },
      runs: { type: 'string', default: '5' },
      seed: { type: 'string', default: '1' },
    },
  })
  const orders = Number(values.orders)
  const runs = Number(values.runs)
  const results = Array.from({ length: runs }, (_, i) =>
    runMatcher(orders, Number(values.seed) + i),
  )
  const rates = results.map((r) => r.ordersPerSecond).sort((a, b) => a - b)
  const median = rates[Math.floor(rates.length / 2)]!
  console.log(
    JSON.stringify({
      bench: 'matcher.submit (pure)',
      orders,
      runs,
      medianOrdersPerSecond: Math.round(median),
      minOrdersPerSecond: Math.round(rates[0]!),
      maxOrdersPerSecond: Math.round(rates.at(-1)!),
      fillsPerRun: results[0]!.fills,
      restingAtEnd: results[0]!.resting,
    }),
  )
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main()
