// The load-shedding figures (issue 11): a node's capacity for durable deposits and withdrawals
// (autocannon, closed loop, its own process), then an open-loop mix of both at `--factor` times
// that rate for `--seconds` (the pacer, its own process) while a client keeps cancelling resting
// orders and closing its position with reduce-only orders, and a probe sends a deposit every
// 50 ms. Reports the answers by status, the latency of the admitted writes, whether the client's
// cancels and reduce-only orders were taken, that every acknowledged write is in the ledger
// afterwards (and no refused one), and how long after the load the node served normally again.
// Not a test: figures for docs/benchmarks.md.
//
//   npx tsx scripts/bench/overload.ts [--seconds 20] [--factor 2] [--capacity-seconds 5] [--seed 1]

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestNode } from '../../test/nodes/support/test-node'
import { apiClient, type ApiClient, type ApiKey } from '../../test/support/api-client'
import { integerOption, parseOptions, runMain } from '../lib/cli'
import { epochMs, log, percentile, round, runScript, sleep } from './harness'
import type { LoadResult, LoadSpec, SignedAccount } from './load'
import type { PacedWrite, PacerResult, PacerSpec } from './pacer'
import { benchInstrument, fundAccounts, keepMarksFresh, pooled } from './setup'

const usage = `usage: npx tsx scripts/bench/overload.ts [--seconds 20] [--factor 2] [--capacity-seconds 5] [--seed 1]`

/** Resting orders the risk-reducing client holds; it cancels one per round. */
const restingCount = 150
const reducerIntervalMs = 100
const probeIntervalMs = 50
/** Consecutive normal probes that count as serving normally again. */
const normalRun = 5

type Timed = { kind: string; status: number; sentAtMs: number; ms: number }

const timed = async (kind: string, send: () => Promise<{ status: number }>): Promise<Timed> => {
  const sentAtMs = epochMs()
  const reply = await send().catch(() => ({ status: 0 }))
  return { kind, status: reply.status, sentAtMs, ms: epochMs() - sentAtMs }
}

const is2xx = (status: number) => status >= 200 && status < 300

/** A client long 1 BTC with `restingCount` resting bids, and a maker that takes its closes. */
async function riskReducer(client: ApiClient, tag: string) {
  const [maker, reducer] = await fundAccounts(client, `${tag}-rr`, 2)
  const order = (key: ApiKey, body: Record<string, unknown>) =>
    client.signed(key, 'POST', '/v1/orders', {
      instrument: benchInstrument,
      type: 'limit',
      ...body,
    })
  const placed = async (key: ApiKey, body: Record<string, unknown>, status: string) => {
    const reply = await order(key, body)
    if (reply.status !== 201 || reply.body.status !== status)
      throw new Error(`setup order: ${reply.status} ${JSON.stringify(reply.body)}`)
    return reply.body.orderId as string
  }
  await placed(
    maker!,
    { clientOrderId: `${tag}-ask`, side: 'sell', price: '60000', size: '1' },
    'open',
  )
  await placed(
    reducer!,
    { clientOrderId: `${tag}-open`, side: 'buy', price: '60000', size: '1', timeInForce: 'IOC' },
    'filled',
  )
  await placed(
    maker!,
    { clientOrderId: `${tag}-bid`, side: 'buy', price: '59000', size: '1' },
    'open',
  )
  const resting: string[] = []
  await pooled(
    Array.from({ length: restingCount }, (_, i) => i),
    4,
    async (i) => {
      resting.push(
        await placed(
          reducer!,
          { clientOrderId: `${tag}-rest-${i}`, side: 'buy', price: '55000', size: '0.001' },
          'open',
        ),
      )
    },
  )
  let round = 0
  /** One round: cancel a resting order, or close 0.001 BTC with a reduce-only sell. */
  const next = (): Promise<Timed> => {
    round += 1
    if (round % 2 === 1 && resting.length > 0) {
      const orderId = resting.pop()!
      return timed('cancel', () => client.signed(reducer!, 'DELETE', `/v1/orders/${orderId}`))
    }
    return timed('reduce_only', () =>
      order(reducer!, {
        clientOrderId: `${tag}-close-${round}`,
        side: 'sell',
        price: '59000',
        size: '0.001',
        timeInForce: 'IOC',
        reduceOnly: true,
      }),
    )
  }
  return { next }
}

/** Calls `step` every `intervalMs` until `stopped()`; at most `max` calls. */
async function every(
  intervalMs: number,
  max: number,
  stopped: () => boolean,
  step: () => Promise<Timed>,
) {
  const results: Timed[] = []
  for (let i = 0; i < max && !stopped(); i++) {
    const due = epochMs() + intervalMs
    results.push(await step())
    await sleep(Math.max(0, due - epochMs()))
  }
  return results
}

/** Every ledger entry id of the accounts (each read with its own key). */
async function ledgerIds(client: ApiClient, accounts: SignedAccount[]): Promise<Set<string>> {
  const ids = new Set<string>()
  await pooled(accounts, 4, async (account) => {
    let cursor: string | null = null
    for (let page = 0; page < 1_000; page++) {
      const path = `/v1/ledger?limit=500${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`
      const reply = await client.signed(account, 'GET', path)
      if (reply.status === 429) {
        await sleep(1_000)
        continue
      }
      if (reply.status !== 200)
        throw new Error(`ledger: ${reply.status} ${JSON.stringify(reply.body)}`)
      for (const entry of reply.body.entries) ids.add(entry.id)
      cursor = reply.body.nextCursor
      if (cursor === null) return
    }
    throw new Error(`ledger of ${account.accountId}: over 1000 pages`)
  })
  return ids
}

const byStatus = (answers: { status: number; code?: string }[]) => {
  const counts: Record<string, number> = {}
  for (const { status, code } of answers) {
    const name = code === undefined ? String(status) : `${status} ${code}`
    counts[name] = (counts[name] ?? 0) + 1
  }
  return counts
}

const latency = (ms: number[]) => ({
  p50: round(percentile(ms, 50)),
  p99: round(percentile(ms, 99)),
})

async function main(argv: string[]): Promise<number> {
  const values = parseOptions(argv, {
    seconds: { type: 'string', default: '20' },
    factor: { type: 'string', default: '2' },
    'capacity-seconds': { type: 'string', default: '5' },
    seed: { type: 'string', default: '1' },
  })
  const seconds = integerOption('--seconds', values.seconds, 1, 300)
  const factor = integerOption('--factor', values.factor, 1, 10)
  const capacitySeconds = integerOption('--capacity-seconds', values['capacity-seconds'], 1, 60)
  const seed = integerOption('--seed', values.seed, 0, 2 ** 31)
  const tmpDir = await mkdtemp(join(tmpdir(), 'clearmesh-overload-'))
  const node = await startTestNode({ id: 'a' })
  const marks = keepMarksFresh([() => node.client()])
  try {
    await marks.ready
    // The risk-reducing client and the probe give up on an answer after 10 s (counted as 0).
    const client = apiClient(
      (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(10_000) }),
      node.url(),
      node.adminToken,
    )
    const accounts = await fundAccounts(client, 'ov', 32)
    const ids = accounts.map((a) => a.accountId)
    // 1. Capacity, closed loop: 16 connections each keep one write in flight.
    const capacity: Record<string, LoadResult> = {}
    for (const kind of ['deposit', 'withdrawal'] as const) {
      const spec: LoadSpec = {
        url: node.url(),
        connections: 16,
        seconds: capacitySeconds,
        seed,
        workload:
          kind === 'deposit'
            ? { kind, adminToken: node.adminToken, accounts: ids, tag: `cap-${kind}` }
            : { kind, accounts, tag: `cap-${kind}` },
      }
      capacity[kind] = (
        await runScript<LoadResult>('load.ts', spec, capacitySeconds * 1000 + 60_000, tmpDir)
      ).result
      log(
        `capacity ${kind}: ${Math.round(capacity[kind]!.okPerSecond)} 2xx/s, p99 ${capacity[kind]!.latencyMs.p99} ms`,
      )
    }
    // Half deposits, half withdrawals: each write costs the mean of their times.
    const mixCapacity =
      2 / (1 / capacity.deposit!.okPerSecond + 1 / capacity.withdrawal!.okPerSecond)
    const rate = Math.round(factor * mixCapacity)
    // Idle latency of a deposit: what "normal" is.
    const idle = await every(
      probeIntervalMs,
      40,
      () => false,
      () => probe(client, 'idle'),
    )
    const normalMs = Math.max(
      20,
      2 *
        percentile(
          idle.map((p) => p.ms),
          99,
        ),
    )
    const reducer = await riskReducer(client, `rr${seed}`)
    // 2. The overload: the pacer, the risk-reducing client and the probe at once.
    let loadDone = false
    let probesUntil = Infinity
    const reducing = every(reducerIntervalMs, 10_000, () => loadDone, reducer.next)
    const probes = every(
      probeIntervalMs,
      100_000,
      () => epochMs() > probesUntil,
      () => probe(client, 'probe'),
    )
    log(`overload: ${rate} writes/s (${factor}× ${Math.round(mixCapacity)}) for ${seconds} s`)
    const pacerSpec: PacerSpec = {
      targets: { a: node.url() },
      rate,
      seconds,
      adminToken: node.adminToken,
      accounts: ids,
      withdrawers: accounts,
      tag: `ov${seed}`,
      inFlightMax: 4_096,
    }
    const paced = (
      await runScript<PacerResult>('pacer.ts', pacerSpec, seconds * 1000 + 120_000, tmpDir)
    ).result
    loadDone = true
    const loadEndMs = Math.max(...paced.writes.map((w) => w.sentAtMs))
    probesUntil = epochMs() + 5_000
    const [reduced, probed] = await Promise.all([reducing, probes])
    // 3. Every acknowledged write is in the ledger; no refused one is.
    const present = await ledgerIds(client, accounts)
    const entryId = (w: PacedWrite) => `${w.kind}/${w.accountId}/${w.id}`
    const acked = paced.writes.filter((w) => is2xx(w.status))
    const refused = paced.writes.filter((w) => w.status === 429 || w.status === 503)
    const report = {
      seed,
      capacity: Object.fromEntries(
        Object.entries(capacity).map(([kind, r]) => [
          kind,
          { perSecond: Math.round(r.okPerSecond), p50Ms: r.latencyMs.p50, p99Ms: r.latencyMs.p99 },
        ]),
      ),
      offered: {
        perSecond: rate,
        seconds,
        writes: paced.writes.length + paced.failed + paced.skipped,
        achievedPerSecond: round(paced.writes.length / seconds),
      },
      statuses: Object.fromEntries(
        ['deposit', 'withdrawal'].map((kind) => [
          kind,
          byStatus(paced.writes.filter((w) => w.kind === kind)),
        ]),
      ),
      failed: paced.failed,
      failures: paced.failures,
      pacerLateMsMax: round(paced.lateMsMax),
      skipped: paced.skipped,
      admittedMs: latency(acked.map((w) => w.ackedAtMs - w.sentAtMs)),
      refusedMs: latency(refused.map((w) => w.ackedAtMs - w.sentAtMs)),
      ackedWrites: acked.length,
      ackedMissing: acked.filter((w) => !present.has(entryId(w))).length,
      refusedPresent: refused.filter((w) => present.has(entryId(w))).length,
      riskReducing: Object.fromEntries(
        ['cancel', 'reduce_only'].map((kind) => {
          const mine = reduced.filter((r) => r.kind === kind)
          return [kind, { statuses: byStatus(mine), ...latency(mine.map((r) => r.ms)) }]
        }),
      ),
      probesDuringLoad: byStatus(probed.filter((p) => p.sentAtMs <= loadEndMs)),
      normalMs: round(normalMs),
      recoveredAfterMs: recovery(probed, loadEndMs, normalMs),
    }
    console.log(JSON.stringify(report, null, 2))
    return report.ackedMissing === 0 && report.refusedPresent === 0 ? 0 : 1
  } finally {
    marks.stop()
    await node.stop()
    await rm(tmpDir, { recursive: true, force: true })
  }
}

const probe = (client: ApiClient, tag: string) =>
  timed('probe', () =>
    client.admin('POST', '/v1/admin/deposits', {
      depositId: `${tag}-${crypto.randomUUID()}`,
      accountId: 'ov-0',
      asset: 'USD',
      amount: '0.01',
      signedAt: Date.now(),
    }),
  )

/** Ms from the load's last write to the first of `normalRun` probes in a row that were normal. */
function recovery(probes: Timed[], loadEndMs: number, normalMs: number): number | null {
  const after = probes.filter((p) => p.sentAtMs > loadEndMs)
  for (let i = 0; i + normalRun <= after.length; i++) {
    const run = after.slice(i, i + normalRun)
    if (run.every((p) => is2xx(p.status) && p.ms <= normalMs))
      return round(after[i]!.sentAtMs - loadEndMs)
  }
  return null
}

runMain('overload', usage, main)
