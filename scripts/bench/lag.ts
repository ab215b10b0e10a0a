// Item 3 of the benchmarks issue: replication lag between nodes at steady write rates, for meshes
// of 3 and 5 nodes (direct links, no proxy). The pacer (its own process) sends deposits at a
// steady rate round-robin to every node; followers on every document of every node see each entry
// the moment each node made it durable and forwarded it. The lag of a write to another node is
// when that node forwarded it minus when the writing node did (both seen the same way, so the
// follower hop cancels); beside it, the lag from the 2xx at the client (negative when the answer
// took longer to reach the client than the update took to reach the other node). The spread of
// each p50/p99 is over the runs. On the 3-node mesh the lowest rate is also sent as `quorum`
// writes beside `local` ones, run by run: what a majority acknowledgement costs.

import { startMesh, type Mesh } from '../../test/nodes/support/mesh'
import type { Options, SectionResult, Table } from './context'
import { followMesh, documentNames, type MeshFollowers } from './followers'
import {
  cell,
  figure,
  log,
  pairedRatio,
  percentile,
  runScript,
  sleep,
  type Figure,
} from './harness'
import type { PacerResult, PacerSpec } from './pacer'
import { agreed, pooled } from './setup'

export type LagRun = {
  rate: number
  achievedRate: number
  samples: number
  missing: number
  lagP50Ms: number
  lagP99Ms: number
  /** From the writer's 2xx at the client to durable on another node (negative: before it). */
  afterAckP50Ms: number
  afterAckP99Ms: number
  /** Time until the last other node held the write. */
  allNodesP99Ms: number
  ackP50Ms: number
  ackP99Ms: number
  /** Durable on the writing node (its follower) minus the 2xx at the client: < 0 when the
   * answer takes longer to reach the client than the update takes to be forwarded. */
  ownFollowerP50Ms: number
  non2xx: number
  skipped: number
}

/** Accounts every write goes to: spread over the shards. */
const accountCount = 32

export async function createAccounts(mesh: Mesh, prefix: string): Promise<string[]> {
  const ids = Array.from({ length: accountCount }, (_, i) => `${prefix}-${i}`)
  await pooled(ids, 8, async (accountId) => {
    const reply = await mesh.client(mesh.ids[0]!).admin('POST', '/v1/admin/accounts', { accountId })
    if (reply.status !== 201 && reply.status !== 200) {
      throw new Error(`account ${accountId}: ${reply.status} ${JSON.stringify(reply.body)}`)
    }
  })
  return ids
}

export const meshClients = (mesh: Mesh) =>
  Object.fromEntries(mesh.ids.map((id) => [id, mesh.client(id)]))

/** Sends one steady run through the pacer and measures, from the followers, its lag. */
export async function pacedRun(
  mesh: Mesh,
  followers: MeshFollowers,
  accounts: string[],
  spec: Omit<PacerSpec, 'targets' | 'adminToken' | 'accounts'> & { targets?: string[] },
  options: Options,
): Promise<LagRun & { result: PacerResult }> {
  const targets = spec.targets ?? mesh.ids
  const { result } = await runScript<PacerResult>(
    'pacer.ts',
    {
      ...spec,
      targets: Object.fromEntries(targets.map((id) => [id, mesh.node(id).url()])),
      adminToken: mesh.adminToken,
      accounts,
    } satisfies PacerSpec,
    spec.seconds * 1000 + 90_000,
    options.tmpDir,
  )
  const acked = result.writes.filter((w) => w.status >= 200 && w.status < 300)
  const key = (w: { accountId: string; id: string }) => `deposit/${w.accountId}/${w.id}`
  // Give stragglers up to 10 s to arrive everywhere before counting them missing.
  const deadline = performance.now() + 10_000
  const everywhere = () =>
    acked.every((w) => mesh.ids.every((node) => followers.arrivedAt(node, key(w)) !== undefined))
  while (!everywhere() && performance.now() < deadline) await sleep(100)
  const lags: number[] = []
  const worst: number[] = []
  const afterAck: number[] = []
  const own: number[] = []
  let missing = 0
  for (const write of acked) {
    // Durable on the writing node, as its own follower saw it: the same path as the others'.
    const durableAt = followers.arrivedAt(write.node, key(write))
    if (durableAt !== undefined) own.push(durableAt - write.ackedAtMs)
    let last = 0
    for (const node of mesh.ids.filter((id) => id !== write.node)) {
      const at = followers.arrivedAt(node, key(write))
      if (at === undefined || durableAt === undefined) {
        missing++
        continue
      }
      lags.push(at - durableAt)
      afterAck.push(at - write.ackedAtMs)
      last = Math.max(last, at - durableAt)
    }
    worst.push(last)
  }
  const acks = acked.map((w) => w.ackedAtMs - w.sentAtMs)
  const span =
    acked.length < 2
      ? spec.seconds
      : (Math.max(...acked.map((w) => w.sentAtMs)) - Math.min(...acked.map((w) => w.sentAtMs))) /
        1000
  return {
    result,
    rate: spec.rate,
    achievedRate: acked.length / Math.max(span, 0.001),
    samples: lags.length,
    missing,
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
    afterAckP50Ms: percentile(afterAck, 50),
    afterAckP99Ms: percentile(afterAck, 99),
    allNodesP99Ms: percentile(worst, 99),
    ackP50Ms: percentile(acks, 50),
    ackP99Ms: percentile(acks, 99),
    ownFollowerP50Ms: percentile(own, 50),
    non2xx: result.writes.length - acked.length,
    skipped: result.skipped,
  }
}

export async function startFollowedMesh(ids: string[], proxied: boolean, shards = 16) {
  const mesh = await startMesh({ ids, proxied, shards })
  try {
    await agreed(meshClients(mesh), 60_000)
    const accounts = await createAccounts(mesh, 'lag')
    await agreed(meshClients(mesh), 60_000)
    const followers = await followMesh(
      Object.fromEntries(ids.map((id) => [id, mesh.node(id).url()])),
      mesh.meshSecret,
      documentNames(shards, ['BTC-PERP', 'ETH-PERP']),
    )
    return { mesh, accounts, followers }
  } catch (error) {
    await mesh.stop()
    throw error
  }
}

export async function runLag(options: Options): Promise<SectionResult> {
  const curves: Record<string, Record<number, LagRun[]>> = {}
  const quorum: { local: LagRun[]; quorum: LagRun[] } = { local: [], quorum: [] }
  for (const size of options.lagMeshSizes) {
    const ids = 'abcdefgh'.slice(0, size).split('')
    const { mesh, accounts, followers } = await startFollowedMesh(ids, false)
    try {
      const curve: Record<number, LagRun[]> = {}
      curves[`${size} nodes`] = curve
      for (let run = 0; run < options.runs; run++) {
        for (const rate of options.lagRates) {
          const lag = await pacedRun(
            mesh,
            followers,
            accounts,
            { rate, seconds: options.seconds, tag: `lag${size}-${rate}-${run}` },
            options,
          )
          ;(curve[rate] ??= []).push(lag)
          log(
            `lag ${size} nodes ${rate}/s run ${run + 1}: p50 ${lag.lagP50Ms.toFixed(1)} ms, ` +
              `p99 ${lag.lagP99Ms.toFixed(1)} ms, ack p50 ${lag.ackP50Ms.toFixed(1)} ms, ` +
              `${lag.samples} samples, ${lag.missing} missing, ${lag.non2xx} non-2xx`,
          )
        }
        if (size === 3) {
          // local and quorum side by side at the lowest rate (below saturation)
          const rate = options.lagRates[0]!
          for (const durability of ['local', 'quorum'] as const) {
            const lag = await pacedRun(
              mesh,
              followers,
              accounts,
              { rate, seconds: options.seconds, tag: `q${durability}-${run}`, durability },
              options,
            )
            quorum[durability].push(lag)
            log(
              `durability ${durability} ${rate}/s run ${run + 1}: ack p50 ${lag.ackP50Ms.toFixed(1)} ms, ` +
                `p99 ${lag.ackP99Ms.toFixed(1)} ms, ${lag.non2xx} non-2xx`,
            )
          }
        }
      }
    } finally {
      followers.close()
      await mesh.stop()
    }
  }
  return lagReport(curves, quorum)
}

function lagReport(
  curves: Record<string, Record<number, LagRun[]>>,
  quorum: { local: LagRun[]; quorum: LagRun[] },
): SectionResult {
  const rows: string[][] = []
  const figures: Record<string, unknown> = {}
  for (const [mesh, curve] of Object.entries(curves)) {
    for (const [rate, runs] of Object.entries(curve)) {
      const p50 = figure(
        runs.map((r) => r.lagP50Ms),
        'ms',
      )
      const p99 = figure(
        runs.map((r) => r.lagP99Ms),
        'ms',
      )
      const all99 = figure(
        runs.map((r) => r.allNodesP99Ms),
        'ms',
      )
      const achieved = figure(
        runs.map((r) => r.achievedRate),
        'writes/s',
        0,
      )
      const ack50 = figure(
        runs.map((r) => r.ackP50Ms),
        'ms',
      )
      const ack99 = figure(
        runs.map((r) => r.ackP99Ms),
        'ms',
      )
      const fromAck50 = figure(
        runs.map((r) => r.afterAckP50Ms),
        'ms',
      )
      const fromAck99 = figure(
        runs.map((r) => r.afterAckP99Ms),
        'ms',
      )
      const own = figure(
        runs.map((r) => r.ownFollowerP50Ms),
        'ms',
      )
      const lost = runs.reduce((n, r) => n + r.missing, 0)
      const refused = runs.reduce((n, r) => n + r.non2xx + r.skipped, 0)
      rows.push([
        mesh,
        rate,
        cell(achieved),
        cell(p50),
        cell(p99),
        cell(all99),
        `${cell(fromAck50)} / ${cell(fromAck99)}`,
        `${cell(ack50)} / ${cell(ack99)}`,
        `${lost} / ${refused}`,
      ])
      figures[`${mesh} ${rate}/s`] = {
        p50,
        p99,
        allNodesP99: all99,
        fromAck50,
        fromAck99,
        achieved,
        ack50,
        ack99,
        ownFollowerP50: own,
        runs,
      }
    }
  }
  const tables: Table[] = [
    {
      title:
        'Replication lag: durable on the writing node to durable on each other node (followers); ' +
        'from the 2xx; the 2xx itself',
      columns: [
        'mesh',
        'rate/s',
        'achieved/s',
        'lag p50 ms',
        'lag p99 ms',
        'last node p99 ms',
        'from 2xx p50 / p99 ms',
        '2xx p50 / p99 ms',
        'missing / refused+skipped',
      ],
      rows,
    },
  ]
  if (quorum.local.length > 0) {
    const ratio50 = pairedRatio(
      quorum.quorum.map((r) => r.ackP50Ms),
      quorum.local.map((r) => r.ackP50Ms),
      2,
    )
    const ratio99 = pairedRatio(
      quorum.quorum.map((r) => r.ackP99Ms),
      quorum.local.map((r) => r.ackP99Ms),
      2,
    )
    const row = (name: string, runs: LagRun[]) => [
      name,
      String(runs[0]?.rate ?? ''),
      cell(
        figure(
          runs.map((r) => r.ackP50Ms),
          'ms',
        ),
      ),
      cell(
        figure(
          runs.map((r) => r.ackP99Ms),
          'ms',
        ),
      ),
      String(runs.reduce((n, r) => n + r.non2xx, 0)),
    ]
    tables.push({
      title: `Durability on 3 nodes, side by side: quorum/local ack p50 ${cell(ratio50)}x, p99 ${cell(ratio99)}x`,
      columns: ['durability', 'rate/s', 'ack p50 ms', 'ack p99 ms', 'non-2xx'],
      rows: [row('local', quorum.local), row('quorum', quorum.quorum)],
    })
    figures.quorum = {
      ratioP50: ratio50,
      ratioP99: ratio99,
      local: quorum.local,
      quorum: quorum.quorum,
    }
  }
  return { tables, figures: stripResults(figures) }
}

/** Drops the raw pacer records (thousands of writes) from what goes to the JSON file. */
function stripResults(figures: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(figures, (key, value) => (key === 'result' ? undefined : value)),
  ) as Record<string, unknown>
}

export type { Figure }
