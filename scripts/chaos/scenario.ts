// One chaos run, start to verdict: a fresh mesh behind proxies, accounts, the seeded workload and
// nemesis for `duration`, a final heal, quiescence, convergence (timed), the final state of every
// node, the checkers, and a results folder holding history.jsonl, final.json, plan.json,
// summary.json, summary.txt and every node's log. Shared by `npm run chaos`, `npm run chaos:soak`
// and the node tests.

import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { usdDecimals } from '../../src/constants'
import { settlementNodeOf } from '../../src/domain/escrow'
import { readCatalog } from '../../src/instruments'
import { apiClient } from '../../test/support/api-client'
import { disagreement } from '../lib/mesh-status'
import { fork, seededRandom } from '../lib/random'
import { runCheckers, type CheckInput, type CheckResult } from './checkers'
import { startCluster, type Cluster } from './cluster'
import type { AccountRead, FinalState, NodeFinal } from './final-state'
import { historyWriter, readHistory, type HistoryWriter, type PhaseEvent } from './history'
import { joinerOf, planFaults, startNemesis, type Fault, type FaultKind } from './nemesis'
import { markFeed, perform, sleep, startWorkload, type Account } from './workload'

export type ChaosOptions = {
  seed: number
  durationS: number
  nodes: number
  faults: FaultKind[]
  /** As given on the command line, for the replay command. */
  faultsText: string
  shards: number
  accounts: number
  clients: number
  /** Folder the run's results folder is made in. */
  out: string
  keepData: boolean
  convergeTimeoutS: number
  requestTimeoutMs: number
  /** Percent of operations that withdraw 80-100% of what the node says is withdrawable. */
  drainPercent: number
  /** Settlement epoch length on every node (0: no settlement, so no liquidations, C9 n/a). */
  settleEveryMs: number
  /** Epoch checkpoint length of the shard documents (0: none, history is never folded). */
  checkpointEveryMs: number
}

export type RunResult = {
  dir: string
  results: CheckResult[]
  passed: boolean
  convergeMs: number | null
  relinkMs: number[]
  /** What the proxies did: connections refused, swallowed, reset; frames duplicated, reordered. */
  proxies: Record<string, number>
  plan: Fault[]
  /** Planned faults that started (one skipped, e.g. a wipe whose drain timed out, is not). */
  faultsStarted: number
  counts: Record<string, number>
  replay: string
}

const nodeIds = 'abcdefghijklmnopqrstuvwxyz'
const homes = () => [...readCatalog(undefined).values()].map((i) => i.spec.homeNode)
const initialDeposit = '10000'
/**
 * Accounts besides the shared ones that trade near their margin limit, one always long and one
 * always short, so a swing of the mark either way brings one below maintenance margin.
 */
const leveragedSides = ['buy', 'sell'] as const
const leveragedDeposit = '100'
const startMarks: Record<string, string> = { 'BTC-PERP': '60000', 'ETH-PERP': '3000' }

export const replayCommand = (o: ChaosOptions) =>
  `npm run chaos -- --seed ${o.seed} --duration ${o.durationS} --nodes ${o.nodes} ` +
  `--faults ${o.faultsText} --shards ${o.shards} --accounts ${o.accounts} --clients ${o.clients} ` +
  `--drain ${o.drainPercent} --settle-every ${o.settleEveryMs} --checkpoint-every ${o.checkpointEveryMs}`

export async function runScenario(
  options: ChaosOptions,
  log: (line: string) => void = console.log,
): Promise<RunResult> {
  const ids = nodeIds.slice(0, options.nodes).split('')
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const dir = resolve(options.out, `seed-${options.seed}-${stamp}`)
  await mkdir(join(dir, 'logs'), { recursive: true })
  const random = seededRandom(options.seed)
  // The node every instrument is matched on, and the one that spends realized gains, stay.
  const anchored = [...homes(), settlementNodeOf(ids)]
  const plan = planFaults(options.faults, ids, options.durationS * 1_000, fork(random), anchored)
  const joiner = joinerOf(plan)
  await writeFile(join(dir, 'plan.json'), JSON.stringify({ options, plan }, null, 2))
  log(
    `chaos: seed ${options.seed}, ${ids.length} nodes, ${plan.length} faults planned; results in ${dir}`,
  )
  const history = historyWriter(join(dir, 'history.jsonl'))
  const cluster = await startCluster({
    ids,
    shards: options.shards,
    root: join(dir, 'data'),
    logDir: join(dir, 'logs'),
    random: fork(random),
    absent: joiner === undefined ? [] : [joiner],
    settleEveryMs: options.settleEveryMs,
    checkpointEveryMs: options.checkpointEveryMs,
  })
  const stopOnSignal = () => void cluster.stop().finally(() => process.exit(130))
  process.once('SIGINT', stopOnSignal)
  try {
    const run = await drive(options, cluster, history, plan, random, log)
    await history.close()
    const results = runCheckers({ history: history.events, final: run.final })
    const passed = results.every((result) => result.valid)
    const counts = countOutcomes(history)
    const result: RunResult = {
      dir,
      results,
      passed,
      convergeMs: run.final.convergence.ms,
      relinkMs: run.relinkMs,
      proxies: run.proxies,
      plan,
      faultsStarted: history.events.filter((e) => e.type === 'nemesis' && e.f === 'start').length,
      counts,
      replay: replayCommand(options),
    }
    await writeFile(join(dir, 'final.json'), JSON.stringify(run.final))
    await writeFile(join(dir, 'summary.json'), JSON.stringify(result, null, 2))
    await writeFile(join(dir, 'summary.txt'), summaryText(result))
    return result
  } finally {
    process.removeListener('SIGINT', stopOnSignal)
    await cluster.stop()
    const failed = await readFile(join(dir, 'summary.json'), 'utf8')
      .then((text) => !(JSON.parse(text) as RunResult).passed)
      .catch(() => true)
    if (!options.keepData && !failed) await rm(join(dir, 'data'), { recursive: true, force: true })
  }
}

async function drive(
  options: ChaosOptions,
  cluster: Cluster,
  history: HistoryWriter,
  plan: Fault[],
  random: () => number,
  log: (line: string) => void,
): Promise<{ final: FinalState; relinkMs: number[]; proxies: Record<string, number> }> {
  const phase = (name: PhaseEvent['name'], value?: Record<string, unknown>) =>
    history.append({ type: 'phase', t: history.now(), name, ...(value !== undefined && { value }) })
  const startedAt = performance.now()
  const startMs = await Promise.all(cluster.members().map((id) => cluster.start(id)))
  log(`chaos: ${startMs.length} nodes serving (${startMs.join(', ')} ms)`)
  const instruments = [...readCatalog(undefined).values()]
  const feed = markFeed(cluster, instruments, startMarks, fork(random))
  await Promise.all(cluster.members().map((id) => feed.post(id)))
  const accounts = await createAccounts(options, cluster, history)
  const shared = accounts.slice(0, options.accounts)
  const leveraged = accounts.slice(options.accounts).map((account, i) => ({
    account,
    side: leveragedSides[i]!,
    deposit: BigInt(leveragedDeposit) * 10n ** BigInt(usdDecimals),
  }))
  phase('setup', { accounts: accounts.length, ms: Math.round(performance.now() - startedAt) })
  const converged = await converge(cluster, 120_000)
  if (!converged.converged)
    throw new Error(`the mesh did not converge after setup: ${converged.detail}`)

  phase('workload')
  feed.start()
  const workload = startWorkload({
    cluster,
    history,
    accounts: shared,
    leveraged,
    instruments,
    processes: options.clients,
    random: fork(random),
    requestTimeoutMs: options.requestTimeoutMs,
    attemptsMax: 3,
    thinkMs: [50, 250],
    drainShare: options.drainPercent / 100,
    marks: feed,
  })
  const nemesis = startNemesis({
    cluster,
    history,
    plan,
    onNodeBack: (id) => feed.post(id),
    log,
  })
  const workloadStartedAt = performance.now()
  await Promise.all([sleep(options.durationS * 1_000), nemesis.finished])
  const overrunMs = Math.round(performance.now() - workloadStartedAt - options.durationS * 1_000)
  if (overrunMs > 1_000) log(`chaos: the fault plan ran ${overrunMs} ms past --duration`)
  await nemesis.stop()
  cluster.healNetwork()
  const healedAt = performance.now()
  phase('heal')
  await workload.stop()
  await feed.stop()
  phase('quiescent', { msAfterHeal: Math.round(performance.now() - healedAt) })
  const convergence = await converge(cluster, options.convergeTimeoutS * 1_000, healedAt)
  phase(convergence.converged ? 'converged' : 'not-converged', { ms: convergence.ms })
  log(
    convergence.converged
      ? `chaos: converged ${convergence.ms} ms after the heal`
      : `chaos: NOT converged ${options.convergeTimeoutS} s after the heal`,
  )
  const nodes = await readSettledFinal(cluster, accounts, convergence.converged)
  phase('final')
  return {
    final: {
      nodes,
      instruments: instruments.map((i) => i.spec),
      accounts: accounts.map((a) => a.accountId),
      convergence,
    },
    relinkMs: nemesis.relinkMs,
    proxies: proxyTotals(cluster),
  }
}

/**
 * Accounts with an API key of every scope and an initial deposit, recorded in the history: the
 * shared ones (`acct-<n>`), then the leveraged ones (`lev-<n>`) with a small deposit.
 */
async function createAccounts(
  options: ChaosOptions,
  cluster: Cluster,
  history: HistoryWriter,
): Promise<Account[]> {
  const accounts: Account[] = []
  for (let i = 0; i < options.accounts + leveragedSides.length; i++) {
    const shared = i < options.accounts
    const accountId = shared ? `acct-${i}` : `lev-${i - options.accounts}`
    const amount = shared ? initialDeposit : leveragedDeposit
    const node = cluster.members()[i % cluster.members().length]!
    const admin = cluster.admin(node, 30_000)
    const created = await admin.admin('POST', '/v1/admin/accounts', { accountId })
    if (created.status !== 201)
      throw new Error(`create ${accountId}: ${JSON.stringify(created.body)}`)
    const key = await admin.admin('POST', `/v1/admin/accounts/${accountId}/keys`, {
      scopes: ['read', 'trade', 'withdraw'],
    })
    if (key.status !== 201) throw new Error(`key of ${accountId}: ${JSON.stringify(key.body)}`)
    const account = { accountId, key: { keyId: key.body.keyId, secret: key.body.secret } }
    accounts.push(account)
    const deposit = await perform(
      { cluster, history, requestTimeoutMs: 30_000, attemptsMax: 3 },
      { process: 0, random: () => 0, stopping: () => false },
      account,
      { f: 'deposit', requestId: `initial-${accountId}`, accountId, amount },
      node,
    )
    if (deposit.type !== 'ok') throw new Error(`initial deposit of ${accountId}: ${deposit.status}`)
  }
  return accounts
}

/** Polls every member's mesh status until all documents agree; times it from `since`. */
async function converge(cluster: Cluster, timeoutMs: number, since = performance.now()) {
  let detail = ''
  for (;;) {
    try {
      const members = cluster.members()
      const views = await Promise.all(members.map((id) => cluster.meshStatus(id, 10_000)))
      detail = disagreement(members, views)
      if (detail === '')
        return { converged: true, ms: Math.round(performance.now() - since), timeoutMs, detail }
    } catch (error) {
      detail = String(error)
    }
    if (performance.now() - since > timeoutMs)
      return { converged: false, ms: null, timeoutMs, detail }
    await sleep(100)
  }
}

/** Final reads tried at most, when settle steps keep landing during the reading. */
const finalReadTriesMax = 10

/**
 * Every member's final state (a node that left is not judged: what it acknowledged must be on the
 * others, C2). Epochs keep settling after the heal, until the marks go stale: a settle step landing
 * while a node is read would set its accounts apart from its documents, or one node apart from the
 * others, so the mesh is read again, converged first, until no document changed during a reading.
 */
async function readSettledFinal(
  cluster: Cluster,
  accounts: Account[],
  converged: boolean,
): Promise<NodeFinal[]> {
  for (let tries = 1; ; tries++) {
    const members = cluster.members()
    const nodes = await Promise.all(members.map((id) => readFinal(cluster, id, accounts)))
    if (!converged || tries === finalReadTriesMax) return nodes
    const after = await Promise.all(
      members.map((id) => cluster.meshStatus(id, 10_000).catch(() => new Map())),
    )
    const unchanged = nodes.every((node, i) =>
      [...after[i]!].every(
        ([name, digest]) => node.docs[name]?.contentDigest === digest.contentDigest,
      ),
    )
    if (unchanged) return nodes
    await converge(cluster, 30_000)
  }
}

/** What one node holds: digests, every document's entries, every account as its API reads it. */
async function readFinal(cluster: Cluster, id: string, accounts: Account[]): Promise<NodeFinal> {
  let status
  try {
    status = await cluster.meshStatus(id, 30_000)
  } catch (error) {
    return { node: id, error: String(error).slice(0, 300), docs: {}, accounts: {} }
  }
  const docs: NodeFinal['docs'] = {}
  for (const [name, digest] of status) {
    docs[name] = {
      stateVectorDigest: digest.stateVectorDigest,
      contentDigest: digest.contentDigest,
      pending: digest.pending,
      damaged: digest.damaged,
      ...(digest.damaged && { damage: digest.damage }),
    }
    try {
      docs[name]!.content = await cluster.readDocument(id, name, digest.stateVectorDigest)
    } catch (error) {
      docs[name]!.contentError = String(error).slice(0, 300)
    }
  }
  const client = apiClient(
    (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(30_000) }),
    cluster.directUrl(id),
    cluster.adminToken,
  )
  const reads: Record<string, AccountRead> = {}
  for (const account of accounts) {
    const summary = await client.signed(account.key, 'GET', '/v1/account').catch((e) => e as Error)
    const positions = await client
      .signed(account.key, 'GET', '/v1/positions')
      .catch((e) => e as Error)
    const read: AccountRead = {}
    if (!(summary instanceof Error) && summary.status === 200)
      read.collateral = summary.body.collateral
    if (!(positions instanceof Error) && positions.status === 200)
      read.positions = Object.fromEntries(
        (positions.body.positions as { instrument: string; size: string }[]).map((p) => [
          p.instrument,
          p.size,
        ]),
      )
    const failed = [summary, positions].find((r) => r instanceof Error || r.status !== 200)
    if (failed !== undefined)
      read.error =
        failed instanceof Error
          ? String(failed)
          : `${failed.status} ${JSON.stringify(failed.body).slice(0, 200)}`
    reads[account.accountId] = read
  }
  return { node: id, docs, accounts: reads }
}

/** Sums every proxy's counters (links and client ports). */
function proxyTotals(cluster: Cluster): Record<string, number> {
  const totals: Record<string, number> = {}
  const proxies = [...cluster.links(), ...cluster.ids.map((id) => cluster.node(id).clientProxy)]
  for (const proxy of proxies) {
    const { open: _open, ...stats } = proxy.stats()
    for (const [name, value] of Object.entries(stats)) totals[name] = (totals[name] ?? 0) + value
  }
  return totals
}

function countOutcomes(history: HistoryWriter): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const event of history.events) {
    if (event.type === 'ok' || event.type === 'fail' || event.type === 'info') {
      const key = `${event.op.f}.${event.type}`
      counts[key] = (counts[key] ?? 0) + 1
    }
  }
  return counts
}

/** The summary table: one line per checker, its verdict, error count and figures or first error. */
export function summaryTable(results: readonly CheckResult[]): string {
  const lines = ['check  result  errors  name / figures / first error']
  for (const r of results) {
    const figures = Object.entries(r.figures)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')
    lines.push(
      `${r.id.padEnd(5)}  ${r.status.padEnd(6)}  ${String(r.errorCount).padStart(6)}  ${r.name}`,
    )
    if (figures !== '') lines.push(`${''.padEnd(22)}${figures}`)
    if (r.note !== undefined) lines.push(`${''.padEnd(22)}note: ${r.note}`)
    if (r.firstError !== null) {
      for (const [type, group] of Object.entries(r.errors))
        lines.push(`${''.padEnd(22)}${type} ×${group.count}: ${group.first.slice(0, 300)}`)
    }
  }
  return lines.join('\n')
}

export function summaryText(result: RunResult): string {
  const counts = Object.entries(result.counts)
    .sort()
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
  return [
    summaryTable(result.results),
    '',
    `operations: ${counts}`,
    `proxies: ${Object.entries(result.proxies)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    `faults (${result.faultsStarted} of ${result.plan.length} run): ${result.plan.map((f) => `${f.kind}${f.node ? `(${f.node})` : ''}@${(f.at / 1000).toFixed(1)}s`).join(' ')}`,
    `converged after the final heal: ${result.convergeMs === null ? 'never' : `${result.convergeMs} ms`}; ` +
      `links back after each heal: ${result.relinkMs.join(', ') || '-'} ms`,
    `verdict: ${result.passed ? 'PASS' : 'FAIL'}`,
    ...(result.passed
      ? []
      : [`replay: ${result.replay}`, `check again: npm run chaos -- --check ${result.dir}`]),
    `results: ${result.dir}`,
  ].join('\n')
}

/** The history and final state of a results folder, to check again. */
export async function loadRun(dir: string): Promise<CheckInput> {
  const final = JSON.parse(await readFile(join(dir, 'final.json'), 'utf8')) as FinalState
  return { history: readHistory(join(dir, 'history.jsonl')), final }
}
