// Item 4 of the benchmarks issue, and the mesh's closing figures (issue 5), on three real nodes
// whose links run through TCP proxies (the partition harness of the tests: cuts on real sockets).
//
// Convergence after heal: node a is cut off from b and c; N deposits are written on a and N on b
// (autocannon, `--amount N`), b and c agree among themselves; then every link heals and the
// followers on every document of every node time how long until all three hold the union of both
// sides. That time splits into the redial wait (heal to the first catch-up update arriving) and
// the sync itself (first catch-up update to converged). Bytes exchanged are the growth of every
// link's bytesIn (GET /v1/mesh/status) across the heal.
//
// Closing figures: replication lag at a steady rate; catch-up after a partition of 30 s with
// steady writes on both sides (every acknowledged write checked present on every node); restart
// to serving of a SIGKILLed node.

import type { Options, SectionResult, Table } from './context'
import { cell, epochMs, figure, log, median, runScript, sleep, type Figure } from './harness'
import { meshClients, pacedRun, startFollowedMesh, type LagRun } from './lag'
import type { LoadResult, LoadSpec } from './load'
import type { PacerResult } from './pacer'
import { agreed, linkBytesIn } from './setup'

type Mesh = Awaited<ReturnType<typeof startFollowedMesh>>

export type HealRun = HealTiming & {
  ops: number
  writeSeconds: number
  bytesPerOp: number
  acked: number
}

export type HealTiming = {
  /** Heal to every node holding everything (the slowest document). */
  convergeMs: number
  /** Heal to the first catch-up update of the document that got one last: the redial wait. */
  redialMs: number
  /** Per document, its first catch-up update to its last: median and slowest document. */
  syncMedianMs: number
  syncMaxMs: number
  documents: number
  bytes: number
  /** What the heal had to move at least: each node's missing part, encoded once. */
  minimumBytes: number
}

/** Heals every link and times convergence of every node to the union (from the followers). */
async function healAndTime({ mesh, followers }: Mesh, timeoutMs: number): Promise<HealTiming> {
  const clients = meshClients(mesh)
  const target = followers.union(mesh.ids)
  // What each node lacks, from the node of the other side that holds it (a's part to b and c,
  // b's part to a): each once.
  const minimumBytes =
    followers.diffBytes('b', 'a') + followers.diffBytes('a', 'b') + followers.diffBytes('a', 'c')
  const bytesBefore = await linkBytesIn(clients)
  const healedAt = epochMs()
  mesh.healAll()
  const convergedAt = await followers.reach(mesh.ids, target, timeoutMs)
  const times = [...followers.documentTimes(healedAt).values()]
  const syncs = times.map((t) => t.lastMs - t.firstMs)
  // The digests agree as well (checker C1), not only the state vectors.
  await agreed(clients, 60_000, 250)
  const bytes = (await linkBytesIn(clients)) - bytesBefore
  return {
    convergeMs: convergedAt - healedAt,
    redialMs: times.length === 0 ? 0 : Math.max(...times.map((t) => t.firstMs)) - healedAt,
    syncMedianMs: median(syncs),
    syncMaxMs: syncs.length === 0 ? 0 : Math.max(...syncs),
    documents: times.length,
    bytes,
    minimumBytes,
  }
}

async function divergentRun(
  setup: Mesh,
  ops: number,
  run: number,
  options: Options,
): Promise<HealRun> {
  const { mesh, accounts, followers } = setup
  mesh.isolate('a')
  await sleep(500)
  const startedAt = performance.now()
  const load = (id: string) => {
    const spec: LoadSpec = {
      url: mesh.node(id).url(),
      connections: 8,
      amount: ops,
      workload: {
        kind: 'deposit',
        adminToken: mesh.adminToken,
        accounts,
        tag: `div${ops}-${run}-${id}`,
      },
    }
    return runScript<LoadResult>('load.ts', spec, 30 * 60_000, options.tmpDir)
  }
  const [onA, onB] = await Promise.all([load('a'), load('b')])
  const writeSeconds = (performance.now() - startedAt) / 1000
  const acked = onA.result.ok + onB.result.ok
  // b and c agree before the heal: what is timed is the split healing, not b's writes reaching c.
  await followers.reach(['b', 'c'], followers.union(['b', 'c']), 120_000)
  const timing = await healAndTime(setup, 300_000)
  return { ops, writeSeconds, acked, ...timing, bytesPerOp: timing.bytes / Math.max(acked, 1) }
}

export async function runConvergence(options: Options): Promise<SectionResult> {
  const setup = await startFollowedMesh(['a', 'b', 'c'], true)
  const results: Record<number, HealRun[]> = {}
  try {
    for (const ops of options.divergentOps) {
      for (let run = 0; run < options.runs; run++) {
        const result = await divergentRun(setup, ops, run, options)
        ;(results[ops] ??= []).push(result)
        log(
          `heal ${ops}+${ops} run ${run + 1}: converged ${result.convergeMs.toFixed(0)} ms ` +
            `(last redial ${result.redialMs.toFixed(0)}, sync per doc median ` +
            `${result.syncMedianMs.toFixed(0)} max ${result.syncMaxMs.toFixed(0)}, ${result.documents} docs), ` +
            `${(result.bytes / 1e6).toFixed(2)} MB, ${result.acked} acked, writes took ${result.writeSeconds.toFixed(1)} s`,
        )
      }
    }
  } finally {
    setup.followers.close()
    await setup.mesh.stop()
  }
  const rows = Object.entries(results).map(([ops, runs]) => {
    const converge = figure(
      runs.map((r) => r.convergeMs),
      'ms',
      0,
    )
    return [
      `${ops} + ${ops}`,
      cell(converge),
      cell(
        figure(
          runs.map((r) => r.redialMs),
          'ms',
          0,
        ),
      ),
      `${cell(
        figure(
          runs.map((r) => r.syncMedianMs),
          'ms',
          0,
        ),
      )} / ${cell(
        figure(
          runs.map((r) => r.syncMaxMs),
          'ms',
          0,
        ),
      )}`,
      `${cell(
        figure(
          runs.map((r) => r.bytes / 1e6),
          'MB',
          2,
        ),
      )} / ${cell(
        figure(
          runs.map((r) => r.minimumBytes / 1e6),
          'MB',
          2,
        ),
      )}`,
      cell(
        figure(
          runs.map((r) => r.bytesPerOp),
          'B',
          0,
        ),
      ),
      Number(ops) === 10_000
        ? `${(converge.median / 1000).toFixed(2)}x / ${(
            figure(
              runs.map((r) => r.syncMaxMs),
              'ms',
            ).median / 1000
          ).toFixed(2)}x`
        : '(target is for 10k)',
    ]
  })
  return {
    tables: [
      {
        title:
          'Convergence after heal: a cut off from b and c, N deposits on a and N on b, then every link heals',
        columns: [
          'divergent ops per side',
          'heal to converged ms',
          "heal to last document's first catch-up ms",
          "one document's sync ms: median / slowest",
          'bytes exchanged / minimum MB',
          'bytes per op',
          'vs 1 s target: total / slowest sync',
        ],
        rows,
      },
    ],
    figures: {
      byOps: Object.fromEntries(
        Object.entries(results).map(([ops, runs]) => {
          const of = (pick: (run: (typeof runs)[number]) => number, unit = 'ms') =>
            figure(runs.map(pick), unit, 0)
          return [
            ops,
            {
              convergeMs: of((r) => r.convergeMs),
              redialMs: of((r) => r.redialMs),
              syncMedianMs: of((r) => r.syncMedianMs),
              syncMaxMs: of((r) => r.syncMaxMs),
              bytes: of((r) => r.bytes, 'B'),
              runs,
            },
          ]
        }),
      ),
    },
  }
}

export type PartitionRun = HealTiming & {
  partitionSeconds: number
  writes: number
  acked: number
  lostAcked: number
}

async function partitionRun(setup: Mesh, run: number, options: Options): Promise<PartitionRun> {
  const { mesh, accounts, followers } = setup
  mesh.isolate('a')
  // Writes on both sides of the split at a steady rate, for the whole partition.
  const { result } = await runScript<PacerResult>(
    'pacer.ts',
    {
      targets: Object.fromEntries(mesh.ids.map((id) => [id, mesh.node(id).url()])),
      rate: options.closingRate,
      seconds: options.partitionSeconds,
      adminToken: mesh.adminToken,
      accounts,
      tag: `split-${run}`,
    },
    options.partitionSeconds * 1000 + 90_000,
    options.tmpDir,
  )
  await followers.reach(['b', 'c'], followers.union(['b', 'c']), 120_000)
  const timing = await healAndTime(setup, 300_000)
  const acked = result.writes.filter((w) => w.status >= 200 && w.status < 300)
  const lostAcked = acked.filter((w) =>
    mesh.ids.some((id) => followers.arrivedAt(id, `deposit/${w.accountId}/${w.id}`) === undefined),
  ).length
  return {
    partitionSeconds: options.partitionSeconds,
    writes: result.writes.length,
    acked: acked.length,
    lostAcked,
    ...timing,
  }
}

export async function runClosing(options: Options): Promise<SectionResult> {
  const setup = await startFollowedMesh(['a', 'b', 'c'], true)
  const lag: LagRun[] = []
  const partitions: PartitionRun[] = []
  const restarts: { readyMs: number; caughtUpMs: number }[] = []
  try {
    for (let run = 0; run < options.runs; run++) {
      const paced = await pacedRun(
        setup.mesh,
        setup.followers,
        setup.accounts,
        { rate: options.closingRate, seconds: options.seconds, tag: `close-lag-${run}` },
        options,
      )
      lag.push(paced)
      log(
        `closing lag run ${run + 1}: p50 ${paced.lagP50Ms.toFixed(1)} ms, p99 ${paced.lagP99Ms.toFixed(1)} ms`,
      )
    }
    for (let run = 0; run < options.runs; run++) {
      const partition = await partitionRun(setup, run, options)
      partitions.push(partition)
      log(
        `closing partition run ${run + 1}: ${partition.acked} acked over ${partition.partitionSeconds} s, ` +
          `caught up ${partition.convergeMs.toFixed(0)} ms after heal (last redial ${partition.redialMs.toFixed(0)}, ` +
          `slowest doc sync ${partition.syncMaxMs.toFixed(0)}), ` +
          `${partition.lostAcked} acked writes missing`,
      )
    }
    for (let run = 0; run < options.runs; run++) {
      const node = setup.mesh.node('c')
      await node.kill()
      const readyMs = await node.restart()
      // Restarted c: followers on it are gone with the process; judge catching up from digests.
      const caughtUpMs = readyMs + (await agreed(meshClients(setup.mesh), 120_000, 100))
      restarts.push({ readyMs, caughtUpMs })
      log(
        `closing restart run ${run + 1}: serving after ${readyMs.toFixed(0)} ms, agreed after ${caughtUpMs.toFixed(0)} ms`,
      )
    }
  } finally {
    setup.followers.close()
    await setup.mesh.stop()
  }
  return closingReport(lag, partitions, restarts, options)
}

function closingReport(
  lag: LagRun[],
  partitions: PartitionRun[],
  restarts: { readyMs: number; caughtUpMs: number }[],
  options: Options,
): SectionResult {
  const f = (values: number[], unit: string, digits = 1): Figure => figure(values, unit, digits)
  const lagP50 = f(
    lag.map((r) => r.lagP50Ms),
    'ms',
  )
  const lagP99 = f(
    lag.map((r) => r.lagP99Ms),
    'ms',
  )
  const catchUp = f(
    partitions.map((r) => r.convergeMs),
    'ms',
    0,
  )
  const ready = f(
    restarts.map((r) => r.readyMs),
    'ms',
    0,
  )
  const tables: Table[] = [
    {
      title: 'The mesh closing figures (issue 5): 3 nodes, links through TCP proxies',
      columns: ['figure', 'median (min–max)', 'target / note'],
      rows: [
        [
          `replication lag p50 at ${options.closingRate} writes/s`,
          `${cell(lagP50)} ms`,
          'durable on writer to durable on each other node',
        ],
        [
          `replication lag p99 at ${options.closingRate} writes/s`,
          `${cell(lagP99)} ms`,
          `target 50 ms: ${(lagP99.median / 50).toFixed(2)}x`,
        ],
        [
          `catch-up after a ${options.partitionSeconds} s partition (a | b,c), writes on both sides`,
          `${cell(catchUp)} ms`,
          `heal to all converged; last document's redial ${cell(
            f(
              partitions.map((r) => r.redialMs),
              'ms',
              0,
            ),
          )} ms; one document's sync, slowest ${cell(
            f(
              partitions.map((r) => r.syncMaxMs),
              'ms',
              0,
            ),
          )} ms`,
        ],
        [
          'writes acknowledged during the partition / missing after heal',
          `${cell(
            f(
              partitions.map((r) => r.acked),
              'writes',
              0,
            ),
          )} / ${partitions.reduce((n, r) => n + r.lostAcked, 0)}`,
          `bytes exchanged at heal ${cell(
            f(
              partitions.map((r) => r.bytes / 1e6),
              'MB',
              2,
            ),
          )} MB`,
        ],
        [
          'restart to serving (SIGKILL, then spawn to ready)',
          `${cell(ready)} ms`,
          'node process + workerd start + every replica loaded',
        ],
        [
          'restart to caught up (digests agree on all 3)',
          `${cell(
            f(
              restarts.map((r) => r.caughtUpMs),
              'ms',
              0,
            ),
          )} ms`,
          'polled every 100 ms through GET /v1/mesh/status',
        ],
      ],
    },
  ]
  return {
    tables,
    figures: {
      lagP50,
      lagP99,
      lagRuns: lag.map(({ ...rest }) => ({ ...rest, result: undefined })),
      catchUpMs: catchUp,
      partitions,
      restartToServingMs: ready,
      restarts,
    },
  }
}
