// Item 7 of the benchmarks issue: edge versus central. Three client groups sit at one-way delays
// of 20, 60 and 120 ms from a central site (TCP proxies that delay every chunk, both ways).
//   edge:    a mesh of three nodes, one at each group's site: each group reaches its own node
//            through a short delay (5 ms), and the nodes reach each other through the delay
//            between their sites (sites spread 120° apart around the centre: law of cosines);
//   central: one node at the centre answers every group through the group's own delay.
// Each group runs autocannon (4 connections, its own process) at the same time as the others,
// for signed withdrawals (local, then quorum on the mesh) and signed orders (BTC-PERP, whose
// matcher is on node a: orders at b and c are forwarded to it). Edge and central runs alternate,
// so each ratio compares runs made side by side.

import { startMesh, type Mesh } from '../../test/nodes/support/mesh'
import { startTestNode } from '../../test/nodes/support/test-node'
import { startTcpProxy, type TcpProxy } from '../lib/tcp-proxy'
import type { Options, SectionResult } from './context'
import { cell, figure, log, pairedRatio, runScript } from './harness'
import { meshClients } from './lag'
import type { LoadResult, LoadSpec, SignedAccount, Workload } from './load'
import { agreed, cancelResting, fundAccounts, keepMarksFresh, orderGrid } from './setup'

const sites = ['a', 'b', 'c'] as const
type Site = (typeof sites)[number]
type Kind = 'withdrawal-local' | 'withdrawal-quorum' | 'order'
const kinds: Kind[] = ['withdrawal-local', 'withdrawal-quorum', 'order']

/** One-way delay between two sites at `d1` and `d2` from the centre, 120° apart. */
export const siteDelayMs = (d1: number, d2: number) =>
  Math.round(Math.sqrt(d1 * d1 + d2 * d2 + d1 * d2))

type GroupResult = { p50: number; p99: number; okPerSecond: number; ok: number; requests: number }
type Runs = Record<string, Record<Site, GroupResult[]>>

export async function runEdge(options: Options): Promise<SectionResult> {
  const delays = Object.fromEntries(
    sites.map((site, i) => [site, options.groupDelaysMs[i]!]),
  ) as Record<Site, number>
  const proxies: TcpProxy[] = []
  let mesh: Mesh | undefined
  let central: Awaited<ReturnType<typeof startTestNode>> | undefined
  const marks: { stop(): void }[] = []
  try {
    mesh = await startMesh({ ids: [...sites], proxied: true })
    const edgeMesh = mesh
    central = await startTestNode({ id: 'a' })
    const centralNode = central
    for (const from of sites) {
      for (const to of sites) {
        if (from !== to)
          mesh.proxy(from, to).impair({ delayMs: siteDelayMs(delays[from], delays[to]) })
      }
    }
    const edgeUrl: Partial<Record<Site, string>> = {}
    const centralUrl: Partial<Record<Site, string>> = {}
    for (const site of sites) {
      const toEdge = await startTcpProxy(
        `group ${site} -> edge ${site}`,
        Number(new URL(mesh.node(site).url()).port),
      )
      toEdge.impair({ delayMs: options.edgeDelayMs })
      const toCentre = await startTcpProxy(
        `group ${site} -> centre`,
        Number(new URL(central.url()).port),
      )
      toCentre.impair({ delayMs: delays[site] })
      proxies.push(toEdge, toCentre)
      edgeUrl[site] = toEdge.url
      centralUrl[site] = toCentre.url
    }
    const edgeMarks = keepMarksFresh(sites.map((site) => () => edgeMesh.client(site)))
    const centralMarks = keepMarksFresh([() => centralNode.client()])
    marks.push(edgeMarks, centralMarks)
    await Promise.all([edgeMarks.ready, centralMarks.ready])
    // Each group opens and funds its accounts at its own node: the deposit gives that node the
    // rights (escrow) to approve the group's withdrawals and orders alone.
    const edgeAccounts: Record<string, SignedAccount[]> = {}
    const centralAccounts: Record<string, SignedAccount[]> = {}
    for (const site of sites) {
      edgeAccounts[site] = await fundAccounts(mesh.client(site), `edge-${site}`, 8)
      centralAccounts[site] = await fundAccounts(central.client(), `central-${site}`, 8)
    }
    await agreed(meshClients(mesh), 120_000)

    const runs: Runs = {}
    const record = (topology: string, kind: string, site: Site, result: LoadResult) => {
      const key = `${topology} ${kind}`
      runs[key] ??= { a: [], b: [], c: [] }
      runs[key]![site].push({
        p50: result.latencyMs.p50,
        p99: result.latencyMs.p99,
        okPerSecond: result.okPerSecond,
        ok: result.ok,
        requests: result.requests,
      })
    }
    const grid = orderGrid()
    const groupLoad = async (topology: 'edge' | 'central', kind: Kind, run: number) => {
      const results = await Promise.all(
        sites.map(async (site) => {
          const accounts = (topology === 'edge' ? edgeAccounts : centralAccounts)[site]!
          const tag = `${topology}-${kind}-${run}-${site}`
          const workload: Workload =
            kind === 'order'
              ? { kind: 'order', accounts, tag, ...grid }
              : {
                  kind: 'withdrawal',
                  accounts,
                  tag,
                  durability: kind === 'withdrawal-quorum' ? 'quorum' : 'local',
                }
          const spec: LoadSpec = {
            url: (topology === 'edge' ? edgeUrl : centralUrl)[site]!,
            connections: 4,
            seconds: options.seconds,
            workload,
            seed: run + 1,
          }
          return runScript<LoadResult>(
            'load.ts',
            spec,
            options.seconds * 1000 + 60_000,
            options.tmpDir,
          )
        }),
      )
      results.forEach(({ result }, i) => record(topology, kind, sites[i]!, result))
      log(
        `edge/central run ${run + 1} ${topology} ${kind}: ` +
          results
            .map(
              ({ result }, i) =>
                `${sites[i]} p50 ${result.latencyMs.p50} p99 ${result.latencyMs.p99} ms (${result.ok}/${result.requests} 2xx)`,
            )
            .join(', ') +
          results
            .flatMap(({ result }, i) =>
              result.samples.slice(0, 1).map((sample) => `\n  ${sites[i]}: ${sample}`),
            )
            .join(''),
      )
      if (kind === 'order') {
        const client = topology === 'edge' ? edgeMesh.client('a') : centralNode.client()
        const all = Object.values(topology === 'edge' ? edgeAccounts : centralAccounts).flat()
        await cancelResting(client, all)
      }
    }
    for (let run = 0; run < options.runs; run++) {
      for (const kind of kinds) {
        await groupLoad('edge', kind, run)
        // A central node alone has no majority to wait for: its quorum is its local write.
        if (kind !== 'withdrawal-quorum') await groupLoad('central', kind, run)
      }
    }
    return edgeReport(runs, delays, options)
  } finally {
    for (const each of marks) each.stop()
    await Promise.all([mesh?.stop(), central?.stop(), ...proxies.map((p) => p.close())])
  }
}

function edgeReport(runs: Runs, delays: Record<Site, number>, options: Options): SectionResult {
  const rows: string[][] = []
  const figures: Record<string, unknown> = {}
  const centralFor = (kind: string) =>
    runs[`central ${kind === 'withdrawal-quorum' ? 'withdrawal-local' : kind}`]
  for (const kind of kinds) {
    const edge = runs[`edge ${kind}`]
    const central = centralFor(kind)
    if (edge === undefined || central === undefined) continue
    for (const site of sites) {
      const e50 = figure(
        edge[site].map((r) => r.p50),
        'ms',
        0,
      )
      const e99 = figure(
        edge[site].map((r) => r.p99),
        'ms',
        0,
      )
      const c50 = figure(
        central[site].map((r) => r.p50),
        'ms',
        0,
      )
      const c99 = figure(
        central[site].map((r) => r.p99),
        'ms',
        0,
      )
      const ratio50 = pairedRatio(
        edge[site].map((r) => r.p50),
        central[site].map((r) => r.p50),
        2,
      )
      const ratio99 = pairedRatio(
        edge[site].map((r) => r.p99),
        central[site].map((r) => r.p99),
        2,
      )
      const share = (results: GroupResult[]) =>
        results.reduce((n, r) => n + r.ok, 0) /
        Math.max(
          1,
          results.reduce((n, r) => n + r.requests, 0),
        )
      rows.push([
        kind === 'withdrawal-quorum'
          ? 'withdrawal quorum (central: local)'
          : kind.replace('-', ' '),
        `${site} (${delays[site]} ms)`,
        `${cell(e50)} / ${cell(e99)}`,
        `${cell(c50)} / ${cell(c99)}`,
        `${cell(ratio50)} / ${cell(ratio99)}`,
        `${(share(edge[site]) * 100).toFixed(1)}% / ${(share(central[site]) * 100).toFixed(1)}%`,
      ])
      figures[`${kind} ${site}`] = {
        edgeP50: e50,
        edgeP99: e99,
        centralP50: c50,
        centralP99: c99,
        ratioP50: ratio50,
        ratioP99: ratio99,
      }
    }
  }
  const between = sites
    .flatMap((x, i) =>
      sites.slice(i + 1).map((y) => `${x}-${y} ${siteDelayMs(delays[x], delays[y])} ms`),
    )
    .join(', ')
  return {
    tables: [
      {
        title:
          `Edge vs central, write latency per client group (one-way delay to the centre in brackets; ` +
          `edge: ${options.edgeDelayMs} ms to its own node, nodes ${between} apart)`,
        columns: [
          'write',
          'group',
          'edge p50 / p99 ms',
          'central p50 / p99 ms',
          'edge/central p50 / p99',
          '2xx edge / central',
        ],
        rows,
      },
    ],
    figures,
  }
}
