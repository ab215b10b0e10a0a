// The operator's command line, built on the client SDK (src/client):
//
//   npx clearmesh status [--node URL]...
//   npx clearmesh deposit --account ID --amount USD [--id DEPOSIT_ID] [--durability quorum]
//   npx clearmesh account create --account ID [--scopes read,trade,withdraw]
//   npx clearmesh account show                   (with an API key: --key-id/--key-secret)
//   npx clearmesh halt instrument BTC-PERP --reason "..." [--mode halted|cancel_only|reduce_only]
//   npx clearmesh halt venue|withdrawals --reason "..."
//   npx clearmesh resume instrument BTC-PERP|venue|withdrawals [--reason "..."]
//   npx clearmesh snapshot export|restore ...    (scripts/snapshot.ts, with progress)
//   npx clearmesh soak ...                       (scripts/chaos/soak.ts, with progress)
//
// The node URLs and the admin token are those `npm start` prints.

import { fileURLToPath } from 'node:url'
import { disagreement, parseMeshStatus } from './lib/mesh-status'
import { parseOptions, runMain, UsageError } from './lib/cli'
import { runWithProgress } from './lib/progress'
import {
  ClearmeshError,
  createClient,
  staleness,
  type AdminOperations,
  type ApiKey,
  type BreakerRequest,
  type MeshStatus,
} from '../src/client'

const usage = `usage: clearmesh <command> [options]
  status                       every node's documents, links and lag, findings, breakers, and
                               whether the nodes agree
  deposit                      --account <id> --amount <USD> [--id <deposit id>] [--durability quorum]
  account create               --account <id> [--scopes read,trade,withdraw]: the account and a key
  account show                 the summary of the account of an API key (--key-id, --key-secret)
  halt <target> --reason <r>   target: instrument <symbol> | venue | withdrawals
                               [--mode halted|cancel_only|reduce_only] (default halted)
  resume <target>              the target back to normal [--reason <r>]
  snapshot export|restore ...  npm run snapshot, with a progress line
                               (its options: npm run snapshot -- --help)
  soak ...                     npm run chaos:soak, with a progress line
                               (its options: npm run chaos:soak -- --help)
options and their environment variables:
  --node <url>          a node; repeat it, or give several comma-separated (CLEARMESH_NODE);
                        default http://127.0.0.1:8787. Calls fail over between them.
  --token <token>       the admin token (CLEARMESH_ADMIN_TOKEN)
  --key-id, --key-secret  an API key (CLEARMESH_KEY_ID, CLEARMESH_KEY_SECRET)
  --json                print the answers as JSON`

const options = {
  node: { type: 'string', multiple: true },
  token: { type: 'string' },
  'key-id': { type: 'string' },
  'key-secret': { type: 'string' },
  account: { type: 'string' },
  amount: { type: 'string' },
  id: { type: 'string' },
  durability: { type: 'string' },
  scopes: { type: 'string' },
  reason: { type: 'string' },
  mode: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const

type Values = ReturnType<typeof parseOptions<typeof options>>

/** Splits `argv` into the leading words (command, target) and the options after them. */
function split(argv: string[]): { words: string[]; values: Values } {
  const first = argv.findIndex((arg) => arg.startsWith('-'))
  const words = first === -1 ? argv : argv.slice(0, first)
  return { words, values: parseOptions(first === -1 ? [] : argv.slice(first), options) }
}

function nodesOf(values: Values): string[] {
  const given = values.node ?? (process.env.CLEARMESH_NODE ?? '').split(',')
  const nodes = given
    .flatMap((node) => node.split(','))
    .map((node) => node.trim())
    .filter(Boolean)
  for (const node of nodes) {
    if (!/^https?:\/\/[^/]+/.test(node))
      throw new UsageError(`--node ${node} is not an http(s) URL`)
  }
  return nodes.length > 0 ? nodes : ['http://127.0.0.1:8787']
}

function required(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new UsageError(`give ${what}`)
  return value
}

const adminToken = (values: Values) =>
  required(
    values.token ?? process.env.CLEARMESH_ADMIN_TOKEN,
    'the admin token: --token or CLEARMESH_ADMIN_TOKEN',
  )

function admin(values: Values, nodes = nodesOf(values)): AdminOperations {
  return createClient({ nodes, adminToken: adminToken(values) }).admin
}

function output(values: Values, value: unknown, text: string): void {
  console.log(values.json ? JSON.stringify(value, null, 2) : text)
}

async function status(values: Values): Promise<number> {
  const nodes = nodesOf(values)
  // One client per node, without failover: each node's own view is what is asked for.
  const views = await Promise.all(
    nodes.map(async (node): Promise<NodeView> => {
      const client = admin(values, [node])
      try {
        const [mesh, breakers] = await Promise.all([client.meshStatus(), client.breakers()])
        return { node, mesh: mesh.value, breakers: breakers.value }
      } catch (error) {
        if (error instanceof ClearmeshError) return { node, error }
        throw error
      }
    }),
  )
  if (values.json) {
    console.log(JSON.stringify(views, null, 2))
  } else {
    for (const view of views) console.log(describeNode(view))
  }
  const reached = views.flatMap((view) => ('error' in view ? [] : [view.mesh]))
  const differs = disagreement(
    reached.map((mesh) => mesh.node),
    reached.map((mesh) => parseMeshStatus(mesh)),
  )
  if (!values.json && reached.length > 1) {
    console.log(
      differs === '' ? `the ${reached.length} nodes agree` : `the nodes differ:\n${differs}`,
    )
  }
  return reached.length === views.length ? 0 : 1
}

type NodeView =
  | {
      node: string
      mesh: MeshStatus
      breakers: { withdrawals: string; instruments: Record<string, string> }
    }
  | { node: string; error: ClearmeshError }

function describeNode(view: NodeView): string {
  if ('error' in view) return `${view.node}: no status (${view.error.code}: ${view.error.message})`
  const { mesh, breakers } = view
  const docs = mesh.documents
  const lines = [
    `node ${mesh.node} at ${view.node}: ${docs.length} documents, peers ${mesh.peers.join(', ') || 'none'}`,
  ]
  const pending = docs.filter((doc) => doc.pending).map((doc) => doc.shard)
  const damaged = docs.filter((doc) => doc.damage !== null).map((doc) => doc.shard)
  if (pending.length > 0) lines.push(`  pending structs: ${pending.join(', ')}`)
  if (damaged.length > 0) lines.push(`  damaged: ${damaged.join(', ')}`)
  for (const peer of mesh.peers) {
    const links = docs.flatMap((doc) => doc.links.filter((link) => link.peer === peer))
    const up = links.filter((link) => link.state === 'up')
    const behind = Math.max(0, ...up.map((link) => link.behind ?? 0))
    const backlog = up.reduce((sum, link) => sum + (link.unacknowledged ?? 0), 0)
    lines.push(
      `  link ${peer}: ${up.length}/${links.length} up, behind ${behind}, unacknowledged ${backlog}`,
    )
  }
  const findings = docs.flatMap((doc) => doc.findings)
  lines.push(`  findings: ${findings.length}`)
  for (const finding of findings.slice(-5)) {
    lines.push(`    ${finding.invariant} ${finding.kind}: ${finding.message}`)
  }
  const restricted = Object.entries(breakers.instruments).filter(([, mode]) => mode !== 'normal')
  lines.push(
    `  breakers: withdrawals ${breakers.withdrawals}; ` +
      (restricted.length === 0
        ? 'every instrument normal'
        : restricted.map(([symbol, mode]) => `${symbol} ${mode}`).join(', ')),
  )
  return lines.join('\n')
}

async function deposit(values: Values): Promise<number> {
  const durability = values.durability
  if (durability !== undefined && durability !== 'local' && durability !== 'quorum') {
    throw new UsageError('--durability is local or quorum')
  }
  const answer = await admin(values).deposit({
    accountId: required(values.account, '--account <id>'),
    amount: required(values.amount, '--amount <USD>'),
    ...(values.id !== undefined && { depositId: values.id }),
    ...(durability !== undefined && { durability }),
  })
  const { value } = answer
  output(
    values,
    value,
    `deposit ${value.depositId}: ${value.amount} USD to ${value.accountId} on node ${value.node}` +
      (answer.replayed ? ' (recorded before: replayed)' : ''),
  )
  return 0
}

async function account(words: string[], values: Values): Promise<number> {
  const [action] = words
  if (action === 'create') {
    const client = admin(values)
    const accountId = required(values.account, '--account <id>')
    const record = await client.createAccount(accountId)
    const scopes = (values.scopes ?? 'read,trade,withdraw').split(',')
    const key = await client.createKey(accountId, { scopes: scopes as ['read'] })
    output(
      values,
      { account: record.value, key: key.value },
      `account ${accountId}${record.replayed ? ' (existed)' : ''}\n` +
        `key id:     ${key.value.keyId}\nkey secret: ${key.value.secret}   (shown once)\n` +
        `scopes:     ${key.value.scopes.join(', ')}`,
    )
    return 0
  }
  if (action === 'show') {
    const apiKey: ApiKey = {
      keyId: required(
        values['key-id'] ?? process.env.CLEARMESH_KEY_ID,
        'an API key: --key-id or CLEARMESH_KEY_ID',
      ),
      secret: required(
        values['key-secret'] ?? process.env.CLEARMESH_KEY_SECRET,
        "the key's secret: --key-secret or CLEARMESH_KEY_SECRET",
      ),
    }
    const { value } = await createClient({ nodes: nodesOf(values), apiKey }).trading.account()
    const seen = staleness(value.reflects)
    output(
      values,
      value,
      [
        `account ${value.accountId} (node ${seen.node}, read ${seen.ageMs} ms ago` +
          `${seen.pending ? ', pending structs' : ''})`,
        `  collateral ${value.collateral}  equity ${value.equity}  unrealized ${value.unrealizedPnl}`,
        `  initial margin ${value.initialMargin}  maintenance ${value.maintenanceMargin}  ratio ${value.marginRatio}`,
        `  available ${value.availableBalance}  withdrawable ${value.withdrawable}  usable here ${value.rights.usableHere}`,
      ].join('\n'),
    )
    return 0
  }
  throw new UsageError('account create or account show?')
}

/** `instrument <symbol>`, `venue` or `withdrawals` as a breaker's scope. */
function target(words: string[]): Pick<BreakerRequest, 'scope' | 'instrument'> {
  const [scope, instrument, ...extra] = words
  if (scope === 'instrument' && instrument !== undefined && extra.length === 0) {
    return { scope, instrument }
  }
  if ((scope === 'venue' || scope === 'withdrawals') && instrument === undefined) return { scope }
  throw new UsageError('the target is: instrument <symbol> | venue | withdrawals')
}

async function breaker(words: string[], values: Values, halting: boolean): Promise<number> {
  const scope = target(words)
  const mode = halting ? (values.mode ?? 'halted') : 'normal'
  if (!['halted', 'cancel_only', 'reduce_only', 'normal'].includes(mode)) {
    throw new UsageError('--mode is halted, cancel_only or reduce_only')
  }
  const reason = halting
    ? required(values.reason, '--reason <why>')
    : (values.reason ?? 'resumed by the operator')
  const { value } = await admin(values).setBreaker({
    ...scope,
    mode: mode as BreakerRequest['mode'],
    reason,
  })
  const what = value.scope === 'instrument' ? `instrument ${value.instrument}` : value.scope
  output(
    values,
    value,
    `${what}: ${value.mode} (recorded on node ${value.node}; every node obeys it once replicated)`,
  )
  return 0
}

/** A script of the repo by its path from here, so the command works from any folder. */
const script = (path: string) => fileURLToPath(new URL(path, import.meta.url))

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  // Delegated whole: their options are theirs (each has its own --help).
  if (command === 'snapshot') {
    return runWithProgress(script('./snapshot.ts'), rest, (line) => /^\d+\/\d+ /.test(line))
  }
  if (command === 'soak') {
    return runWithProgress(script('./chaos/soak.ts'), rest, (line) =>
      line.startsWith('=== soak run'),
    )
  }
  const { words, values } = split(rest)
  try {
    if (command === 'status' && words.length === 0) return await status(values)
    if (command === 'deposit' && words.length === 0) return await deposit(values)
    if (command === 'account') return await account(words, values)
    if (command === 'halt') return await breaker(words, values, true)
    if (command === 'resume') return await breaker(words, values, false)
  } catch (error) {
    if (!(error instanceof ClearmeshError)) throw error
    console.error(
      `clearmesh: ${error.code}: ${error.message}` +
        (error.status === 0
          ? ''
          : ` (HTTP ${error.status}${error.node ? ` from ${error.node}` : ''})`),
    )
    return 1
  }
  throw new UsageError(
    command === undefined ? 'which command?' : `unknown command ${argv.join(' ')}`,
  )
}

runMain('clearmesh', usage, main)
