// Items 1 and 2 of the benchmarks issue: the ceiling of this machine (a hello-world Worker on the
// same miniflare) and one node's durable writes, side by side. Each run loads the node's
// GET /health (routing, no storage), deposits (operator, bearer token), signed withdrawals and
// signed orders, every write durable before its 2xx, each right after a run of the hello-world
// Worker: the ratio of a workload to the ceiling is taken against that adjacent run. The node is a real one
// (scripts/node.ts on workerd, 16 shards), its load comes from autocannon in its own process.
// Each run ends with the pure matcher (scripts/bench/matcher.ts) in this process: what matching
// alone would allow, against what the orders API delivers.

import { startTestNode } from '../../test/nodes/support/test-node'
import type { Options, SectionResult } from './context'
import { cell, figure, log, pairedRatio, runScript, startServer } from './harness'
import type { LoadResult, LoadSpec, Workload } from './load'
import { runMatcher } from './matcher'
import { cancelResting, fundAccounts, keepMarksFresh, orderGrid } from './setup'

type Workloads = 'hello' | 'health' | 'deposit' | 'withdrawal' | 'order'
const order: Workloads[] = ['hello', 'health', 'deposit', 'withdrawal', 'order']
const labels: Record<Workloads, string> = {
  hello: 'hello-world Worker (ceiling)',
  health: 'node GET /health (no storage)',
  deposit: 'deposits (durable, bearer)',
  withdrawal: 'withdrawals (durable, signed)',
  order: 'orders (durable, signed, matched)',
}

export async function runThroughput(options: Options): Promise<SectionResult> {
  const hello = await startServer('hello-server.ts', [], /^hello listening on (http:\S+)$/, 90_000)
  const node = await startTestNode({ id: 'a' }).catch(async (error: unknown) => {
    await hello.stop()
    throw error
  })
  const marks = keepMarksFresh([() => node.client()])
  try {
    await marks.ready
    const accounts = await fundAccounts(node.client(), 'tp', 64)
    const grid = orderGrid()
    const matcher: number[] = []
    const runs: Record<Workloads, LoadResult[]> = {
      hello: [],
      health: [],
      deposit: [],
      withdrawal: [],
      order: [],
    }
    /** The hello-world run made just before each run of a workload: its side-by-side ceiling. */
    const ceilings: Record<Workloads, number[]> = {
      hello: [],
      health: [],
      deposit: [],
      withdrawal: [],
      order: [],
    }
    const slots: Workloads[] = order
      .filter((kind) => kind !== 'hello')
      .flatMap((kind) => ['hello', kind])
    for (let run = 0; run < options.runs; run++) {
      for (const kind of slots) {
        const workload: Workload =
          kind === 'hello'
            ? { kind: 'get', path: '/' }
            : kind === 'health'
              ? { kind: 'get', path: '/health' }
              : kind === 'deposit'
                ? {
                    kind: 'deposit',
                    adminToken: node.adminToken,
                    accounts: accounts.map((a) => a.accountId),
                    tag: `tp${run}`,
                  }
                : kind === 'withdrawal'
                  ? { kind: 'withdrawal', accounts, tag: `tp${run}` }
                  : { kind: 'order', accounts, tag: `tp${run}`, ...grid }
        const spec: LoadSpec = {
          url: kind === 'hello' ? hello.url : node.url(),
          connections: options.connections,
          seconds: options.seconds,
          workload,
          seed: run + 1,
        }
        const { result } = await runScript<LoadResult>(
          'load.ts',
          spec,
          options.seconds * 1000 + 60_000,
          options.tmpDir,
        )
        runs[kind].push(result)
        if (kind !== 'hello') ceilings[kind].push(runs.hello.at(-1)!.okPerSecond)
        log(
          `throughput run ${run + 1}/${options.runs} ${kind}: ${Math.round(result.okPerSecond)} 2xx/s, ` +
            `p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms` +
            (result.ok === result.requests
              ? ''
              : `, non-2xx ${JSON.stringify(result.statuses)}: ${result.samples[0] ?? ''}`),
        )
        if (kind === 'order') await cancelResting(node.client(), accounts)
      }
      // The pure matcher in this process: what matching alone could take.
      matcher.push(runMatcher(50_000, run + 1).ordersPerSecond)
    }
    return report(runs, ceilings, matcher)
  } finally {
    marks.stop()
    await Promise.all([node.stop(), hello.stop()])
  }
}

function report(
  runs: Record<Workloads, LoadResult[]>,
  ceilings: Record<Workloads, number[]>,
  matcher: number[],
): SectionResult {
  const figures: Record<string, unknown> = {}
  const rows: string[][] = []
  for (const kind of order) {
    const results = runs[kind]
    const rate = figure(
      results.map((r) => r.okPerSecond),
      '2xx/s',
      0,
    )
    const ratio = pairedRatio(
      results.map((r) => r.okPerSecond),
      ceilings[kind],
    )
    const p50 = figure(
      results.map((r) => r.latencyMs.p50),
      'ms',
    )
    const p99 = figure(
      results.map((r) => r.latencyMs.p99),
      'ms',
    )
    const requests = results.reduce((n, r) => n + r.requests, 0)
    const share2xx = requests === 0 ? 0 : results.reduce((n, r) => n + r.ok, 0) / requests
    rows.push([
      labels[kind],
      cell(rate),
      kind === 'hello' ? '1 (ceiling)' : cell(ratio),
      cell(p50),
      cell(p99),
      `${(share2xx * 100).toFixed(share2xx === 1 ? 0 : 2)}%`,
    ])
    figures[kind] = {
      okPerSecond: rate,
      ratioToCeiling: ratio,
      p50Ms: p50,
      p99Ms: p99,
      share2xx,
      statuses: results.map((r) => r.statuses),
      samples: results.flatMap((r) => r.samples).slice(0, 5),
    }
  }
  const matched = figure(matcher, 'orders/s', 0)
  rows.push([
    'matcher.submit alone (pure, in process)',
    cell(matched),
    `orders API / matcher: ${cell(
      pairedRatio(
        runs.order.map((r) => r.okPerSecond),
        matcher,
        4,
      ),
    )}`,
    '–',
    '–',
    '–',
  ])
  figures.matcher = matched
  return {
    tables: [
      {
        title: 'One node: ceiling and durable writes (autocannon, closed loop)',
        columns: ['workload', '2xx/s', 'ratio to ceiling', 'p50 ms', 'p99 ms', '2xx share'],
        rows,
      },
    ],
    figures,
  }
}
