// C10 measured: the share of withdrawals a node refuses for lack of its local escrow rights
// (503 insufficient_local_rights) when the account's total rights would have sufficed, per grant
// policy (all named policies in one run, one after another, each on a fresh mesh), on a real
// 3-node mesh (one process per node, a TCP proxy on every link). Every account
// is funded by a deposit recorded on node a (the operator's node), so a holds all its rights at
// first; each account then withdraws mostly at its own home node (a, b or c by account) and now
// and then at another. Three phases: connected; c cut off from a and b (proxies refuse); healed.
// A refusal counts as "would have sufficed" when the amount was within the account's total
// rights (its deposits less the withdrawals approved so far, which this single client tracks).
// Not a test: figures for docs/escrow.md; also the suite's `escrow` section.
//
//   npx tsx scripts/bench/escrow.ts [--seed 1] [--accounts 12] [--phase-seconds 30]
//     [--interval-ms 50] [--away 0.15] [--policies demand,shortfall,all]
//   npm run bench -- --only escrow

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { grantPolicies, type GrantPolicy } from '../../src/domain/escrow'
import { apiClient, type ApiKey } from '../../test/support/api-client'
import { startCluster, type Cluster } from '../chaos/cluster'
import { integerOption, parseOptions, runMain, UsageError } from '../lib/cli'
import { integerBetween, pick, seededRandom } from '../lib/random'
import type { Options, SectionResult } from './context'
import { log, round, sleep } from './harness'

const usage = `usage: npx tsx scripts/bench/escrow.ts [--seed 1] [--accounts 12] [--phase-seconds 30] [--interval-ms 50] [--away 0.15] [--policies demand,shortfall,all]`

const ids = ['a', 'b', 'c']
const depositUsd = 10_000
const phases = ['connected', 'c isolated', 'healed'] as const
type Phase = (typeof phases)[number]

type Account = { accountId: string; key: ApiKey; home: string; totalUsd: number }
type Outcome = {
  phase: Phase
  /** The account's home node, and whether the request went there. */
  home: string
  atHome: boolean
  status: number
  code: string | null
  sufficed: boolean
}

type Settings = {
  seed: number
  accounts: number
  phaseSeconds: number
  intervalMs: number
  away: number
  policies: GrantPolicy[]
}

/** Funds every account at node a and waits until each node reads it. */
async function fundAccounts(cluster: Cluster, count: number): Promise<Account[]> {
  const accounts: Account[] = []
  for (let i = 0; i < count; i++) {
    const accountId = `escrow-${i}`
    const key = await cluster
      .admin('a')
      .fundedAccount(accountId, String(depositUsd), ['read', 'withdraw'])
    accounts.push({ accountId, key, home: ids[i % ids.length]!, totalUsd: depositUsd })
  }
  for (const id of ids) {
    const client = apiClient(fetch, cluster.directUrl(id), cluster.adminToken)
    for (const account of accounts) {
      for (let tries = 0; ; tries++) {
        const read = await client.signed(account.key, 'GET', '/v1/account')
        if (read.status === 200 && read.body.collateral === String(depositUsd)) break
        if (tries > 600) throw new Error(`${id} never read ${account.accountId}: ${read.status}`)
        await sleep(100)
      }
    }
  }
  return accounts
}

/** Cuts or heals every link between c and the others, both ways. */
function isolateC(cluster: Cluster, cut: boolean): void {
  for (const other of ['a', 'b']) {
    for (const link of [cluster.link(other, 'c'), cluster.link('c', other)]) {
      if (cut) link.cut()
      else link.heal()
    }
  }
}

/** One phase of paced withdrawals, one at a time, each at its account's home or another node. */
async function runPhase(
  cluster: Cluster,
  accounts: Account[],
  phase: Phase,
  settings: Settings,
  random: () => number,
): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  const clients = new Map(
    ids.map((id) => [id, apiClient(fetch, cluster.directUrl(id), cluster.adminToken)]),
  )
  const endAt = Date.now() + settings.phaseSeconds * 1000
  for (let n = 0; Date.now() < endAt; n++) {
    const account = pick(random, accounts)
    const atHome = random() >= settings.away
    const node = atHome
      ? account.home
      : pick(
          random,
          ids.filter((id) => id !== account.home),
        )
    const amount = integerBetween(random, 1, 5)
    const reply = await clients.get(node)!.signed(account.key, 'POST', '/v1/withdrawals', {
      withdrawalId: `${phase.replace(' ', '-')}-${n}`,
      asset: 'USD',
      amount: String(amount),
    })
    const error = reply.body?.error
    // C10's other half: a rights refusal is a clear 503 the client may retry.
    const clear = reply.status === 503 && error?.retryable === true
    const code =
      reply.status === 201
        ? null
        : error?.code === 'insufficient_local_rights' && !clear
          ? 'insufficient_local_rights_unclear'
          : (error?.code ?? 'no_envelope')
    outcomes.push({
      phase,
      home: account.home,
      atHome,
      status: reply.status,
      code,
      sufficed: amount <= account.totalUsd,
    })
    if (reply.status === 201) account.totalUsd -= amount
    await sleep(settings.intervalMs)
  }
  return outcomes
}

async function measurePolicy(policy: GrantPolicy, settings: Settings): Promise<Outcome[]> {
  const root = await mkdtemp(join(tmpdir(), `clearmesh-escrow-${policy}-`))
  const random = seededRandom(settings.seed)
  const cluster = await startCluster({ ids, shards: 4, root, random, grantPolicy: policy })
  try {
    await Promise.all(ids.map((id) => cluster.start(id)))
    const accounts = await fundAccounts(cluster, settings.accounts)
    const outcomes: Outcome[] = []
    for (const phase of phases) {
      isolateC(cluster, phase === 'c isolated')
      log(`${policy}: ${phase}`)
      outcomes.push(...(await runPhase(cluster, accounts, phase, settings, random)))
    }
    return outcomes
  } finally {
    await cluster.stop()
    await rm(root, { recursive: true, force: true })
  }
}

const percent = (part: number, whole: number) =>
  whole === 0 ? '-' : `${round((100 * part) / whole, 1)}%`

/** One row per policy and phase: requests, approved, refused for local rights (all, home, away). */
function rows(policy: GrantPolicy, outcomes: Outcome[]): string[][] {
  return phases.map((phase) => {
    const of = outcomes.filter((o) => o.phase === phase)
    const rights = (list: Outcome[]) =>
      list.filter((o) => o.code === 'insufficient_local_rights' && o.sufficed).length
    const home = of.filter((o) => o.atHome)
    // Accounts homed at a hold their rights at home from the start; the others must be granted.
    const homeAtA = home.filter((o) => o.home === 'a')
    const homeElsewhere = home.filter((o) => o.home !== 'a')
    const away = of.filter((o) => !o.atHome)
    const other = of.filter((o) => o.status !== 201 && o.code !== 'insufficient_local_rights')
    return [
      policy,
      phase,
      String(of.length),
      String(of.filter((o) => o.status === 201).length),
      `${rights(of)} (${percent(rights(of), of.length)})`,
      percent(rights(home), home.length),
      percent(rights(homeAtA), homeAtA.length),
      percent(rights(homeElsewhere), homeElsewhere.length),
      percent(rights(away), away.length),
      other.length === 0
        ? '0'
        : `${other.length} (${[...new Set(other.map((o) => o.code))].join(', ')})`,
    ]
  })
}

async function main(argv: string[]): Promise<number> {
  const values = parseOptions(argv, {
    seed: { type: 'string', default: '1' },
    accounts: { type: 'string', default: '12' },
    'phase-seconds': { type: 'string', default: '30' },
    'interval-ms': { type: 'string', default: '50' },
    away: { type: 'string', default: '0.15' },
    policies: { type: 'string', default: grantPolicies.join(',') },
  })
  const policies = values.policies.split(',') as GrantPolicy[]
  if (policies.some((policy) => !grantPolicies.includes(policy))) {
    throw new UsageError(`--policies: each of ${grantPolicies.join(', ')}`)
  }
  const away = Number(values.away)
  if (!(away >= 0 && away <= 1)) throw new UsageError('--away is a share between 0 and 1')
  const settings: Settings = {
    seed: integerOption('--seed', values.seed, 0, 2 ** 31),
    accounts: integerOption('--accounts', values.accounts, 1, 1000),
    phaseSeconds: integerOption('--phase-seconds', values['phase-seconds'], 1, 3600),
    intervalMs: integerOption('--interval-ms', values['interval-ms'], 0, 60_000),
    away,
    policies,
  }
  const table = await measure(settings)
  console.log(`\n${describe(settings)}\n`)
  console.log(`| ${header.join(' | ')} |\n| ${header.map(() => '---').join(' | ')} |`)
  for (const row of table) console.log(`| ${row.join(' | ')} |`)
  return 0
}

const header = [
  'policy',
  'phase',
  'requests',
  'approved',
  'refused for local rights',
  'at home',
  'home a',
  'home b, c',
  'away',
  'other refusals',
]

const describe = (settings: Settings) =>
  `seed ${settings.seed}, ${settings.accounts} accounts, ${settings.phaseSeconds} s a phase, ` +
  `one request every ${settings.intervalMs} ms + its answer, ${settings.away * 100}% away from home`

/** Every policy's rows, each policy on a fresh mesh. */
async function measure(settings: Settings): Promise<string[][]> {
  const table: string[][] = []
  for (const policy of settings.policies) {
    table.push(...rows(policy, await measurePolicy(policy, settings)))
  }
  return table
}

/** The suite's section (`npm run bench -- --only escrow`): the default scenario, one run. */
export async function runEscrow(options: Options): Promise<SectionResult> {
  const settings: Settings = {
    seed: 1,
    accounts: 12,
    phaseSeconds: options.mode === 'quick' ? 10 : 30,
    intervalMs: 50,
    away: 0.15,
    policies: [...grantPolicies],
  }
  const table = await measure(settings)
  return {
    tables: [
      { title: `Escrow refusals (C10): ${describe(settings)}`, columns: header, rows: table },
    ],
    figures: { settings, rows: table },
    findings: ['one run per policy (not a median): the share depends on the seeded workload'],
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) runMain('escrow', usage, main)
