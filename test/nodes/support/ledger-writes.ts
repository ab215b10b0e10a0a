// Writes driven against a node with their outcome recorded, and the checks that an acknowledged
// write survived: the client-side half of checker C2 (lost acknowledged writes) for one node.

import type { ApiClient, ApiKey, Reply } from '../../support/api-client'

export type Account = { accountId: string; key: ApiKey }

export type WriteKind = 'deposit' | 'withdrawal'

/**
 * acked: a 2xx came back. refused: a definite 4xx (nothing was written). unknown: no answer or a
 * 5xx; the write may or may not have taken effect, but never partly.
 */
export type Outcome = 'acked' | 'refused' | 'unknown'

export type Write = {
  kind: WriteKind
  accountId: string
  requestId: string
  /** Decimal string as sent. */
  amount: string
  outcome?: Outcome
  status?: number
}

/** The ledger entry id a write creates (src/domain/ledger.ts transferId). */
export const entryId = (write: Write) => `${write.kind}/${write.accountId}/${write.requestId}`

/** Exact micro-USD of a decimal string such as "-12.5". */
export function micros(amount: string): bigint {
  const match = /^(-?)([0-9]+)(?:\.([0-9]{1,6}))?$/.exec(amount)
  if (match === null) throw new Error(`not a USD decimal: ${amount}`)
  const units = BigInt(match[2]!) * 1_000_000n + BigInt((match[3] ?? '').padEnd(6, '0'))
  return match[1] === '-' ? -units : units
}

export { seededRandom } from '../../../scripts/lib/random'

export const testSeed = (): number =>
  process.env.CLEARMESH_TEST_SEED !== undefined
    ? Number(process.env.CLEARMESH_TEST_SEED)
    : Math.floor(Math.random() * 2 ** 31)

const requestTimeoutMs = 20_000

/** Sends one write, once, and records what came back. */
export async function send(
  client: ApiClient,
  account: Account,
  write: Write,
): Promise<Reply | undefined> {
  let reply: Reply | undefined
  try {
    reply = await withTimeout(
      write.kind === 'deposit'
        ? client.admin('POST', '/v1/admin/deposits', {
            depositId: write.requestId,
            accountId: write.accountId,
            asset: 'USD',
            amount: write.amount,
            signedAt: Date.now(),
          })
        : client.signed(account.key, 'POST', '/v1/withdrawals', {
            withdrawalId: write.requestId,
            asset: 'USD',
            amount: write.amount,
          }),
    )
  } catch {
    reply = undefined // connection refused, reset or timed out: no answer
  }
  write.status = reply?.status
  write.outcome =
    // 503 says not executed; only no answer or another 5xx leaves the outcome unknown.
    reply === undefined || (reply.status >= 500 && reply.status !== 503)
      ? 'unknown'
      : reply.status >= 200 && reply.status < 300
        ? 'acked'
        : 'refused'
  return reply
}

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('request timed out')), requestTimeoutMs).unref(),
    ),
  ])
}

export type LedgerEntry = { id: string; kind: string; amount: string; ts: number; node: string }

/** Every entry of the account's ledger, following the cursor page by page. */
export async function readLedger(client: ApiClient, account: Account): Promise<LedgerEntry[]> {
  const entries: LedgerEntry[] = []
  let cursor: string | null = null
  for (let page = 0; page < 1_000; page++) {
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`
    const reply = await client.signed(account.key, 'GET', `/v1/ledger?limit=500${query}`)
    if (reply.status !== 200)
      throw new Error(`ledger: ${reply.status} ${JSON.stringify(reply.body)}`)
    entries.push(...(reply.body.entries as LedgerEntry[]))
    cursor = reply.body.nextCursor as string | null
    if (cursor === null) return entries
  }
  throw new Error('ledger: more than 1000 pages')
}

export async function readAccount(client: ApiClient, account: Account) {
  const reply = await client.signed(account.key, 'GET', '/v1/account')
  if (reply.status !== 200)
    throw new Error(`account: ${reply.status} ${JSON.stringify(reply.body)}`)
  return reply.body as { collateral: string; reflects: { shards: { shard: string }[] } }
}

export type LedgerCheck = {
  /** Problems found; empty when every rule holds. */
  problems: string[]
  /** Unknown writes found present / absent. */
  unknownPresent: number
  unknownAbsent: number
  balances: Map<string, bigint>
  /** Ids of every entry found. */
  presentIds: string[]
}

/**
 * Checks one node's ledgers against the recorded writes: every acked write present with its exact
 * amount, every refused write absent, every unknown write present with its exact amount or absent,
 * no entry nobody asked for, and collateral equal to the sum of the entries.
 */
export async function checkLedgers(
  client: ApiClient,
  accounts: Account[],
  writes: Write[],
): Promise<LedgerCheck> {
  const problems: string[] = []
  const check: LedgerCheck = {
    problems,
    unknownPresent: 0,
    unknownAbsent: 0,
    balances: new Map(),
    presentIds: [],
  }
  const expected = new Map(writes.map((write) => [entryId(write), write]))
  for (const account of accounts) {
    const entries = await readLedger(client, account)
    const byId = new Map(entries.map((entry) => [entry.id, entry]))
    check.presentIds.push(...byId.keys())
    if (byId.size !== entries.length) problems.push(`${account.accountId}: duplicate ledger ids`)
    for (const entry of entries) {
      if (!expected.has(entry.id))
        problems.push(`${account.accountId}: unexpected entry ${entry.id}`)
    }
    for (const write of writes.filter((w) => w.accountId === account.accountId)) {
      const entry = byId.get(entryId(write))
      const signed = write.kind === 'deposit' ? micros(write.amount) : -micros(write.amount)
      if (entry !== undefined && micros(entry.amount) !== signed) {
        problems.push(`${entryId(write)}: amount ${entry.amount}, sent ${write.amount}`)
      }
      if (write.outcome === 'acked' && entry === undefined) {
        problems.push(`${entryId(write)}: acknowledged (${write.status}) but missing`)
      }
      if (write.outcome === 'refused' && entry !== undefined) {
        problems.push(`${entryId(write)}: refused (${write.status}) but present`)
      }
      if (write.outcome === 'unknown') {
        if (entry === undefined) check.unknownAbsent++
        else check.unknownPresent++
      }
    }
    const sum = entries.reduce((total, entry) => total + micros(entry.amount), 0n)
    const summary = await readAccount(client, account)
    if (micros(summary.collateral) !== sum) {
      problems.push(
        `${account.accountId}: collateral ${summary.collateral} != ledger sum ${sum}e-6`,
      )
    }
    if (sum < 0n) problems.push(`${account.accountId}: negative balance ${sum}e-6`)
    check.balances.set(account.accountId, sum)
  }
  return check
}

/** Admin view of every shard; problems lists any damaged shard or one holding pending structs. */
export async function checkShards(client: ApiClient) {
  const reply = await client.admin('GET', '/v1/admin/shards')
  if (reply.status !== 200) throw new Error(`shards: ${reply.status} ${JSON.stringify(reply.body)}`)
  const shards = reply.body.shards as ShardStatus[]
  const problems = shards.flatMap((shard) => [
    ...(shard.damage === null ? [] : [`${shard.shard} damaged: ${JSON.stringify(shard.damage)}`]),
    ...(shard.pending ? [`${shard.shard} holds pending structs`] : []),
  ])
  return { shards, problems }
}

export type ShardStatus = {
  shard: string
  damage: { where: string; reason: string; seq?: number } | null
  storage: {
    logRows: number
    logBytes: number
    lastSeq: number
    snapshot: { generation: number; uptoSeq: number; chunkCount: number; bytes: number } | null
  }
  stateVectorDigest: string | null
  contentDigest: string | null
  pending: boolean
}
