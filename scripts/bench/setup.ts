// Preparing nodes for a bench run through their public API: funded accounts with API keys, fresh
// mark prices (kept fresh for as long as a run lasts), resting orders cancelled between runs, and
// waiting until a mesh agrees.

import { readCatalog } from '../../src/instruments'
import { disagreement, parseMeshStatus, type DocDigest } from '../lib/mesh-status'
import type { ApiClient } from '../../test/support/api-client'
import type { SignedAccount } from './load'
import { sleep } from './harness'

/** The instrument every order workload trades, and where its mark is held. */
export const benchInstrument = 'BTC-PERP'
export const benchMark = '60000'

export function orderGrid() {
  const spec = readCatalog(undefined).get(benchInstrument)!.spec
  return {
    instrument: benchInstrument,
    markTicks: Math.round(Number(benchMark) / Number(spec.tickSize)),
    tickSize: spec.tickSize,
    lotSize: spec.lotSize,
  }
}

function expectStatus(reply: { status: number; body: unknown }, statuses: number[], what: string) {
  if (!statuses.includes(reply.status)) {
    throw new Error(`${what}: ${reply.status} ${JSON.stringify(reply.body)}`)
  }
  return reply.body as any
}

/** Runs `work` over `items`, at most `width` at a time. */
export async function pooled<T>(items: T[], width: number, work: (item: T) => Promise<void>) {
  let next = 0
  const lane = async () => {
    while (next < items.length) await work(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane))
}

/**
 * Creates `count` accounts `<prefix>-<i>` on one node, each with a key of every scope and
 * `deposit` USD. Replays are fine: an account that exists keeps its id, and gets a new key.
 */
export async function fundAccounts(
  client: ApiClient,
  prefix: string,
  count: number,
  deposit = '1000000',
): Promise<SignedAccount[]> {
  const accounts: SignedAccount[] = []
  await pooled(
    Array.from({ length: count }, (_, i) => `${prefix}-${i}`),
    8,
    async (accountId) => {
      expectStatus(
        await client.admin('POST', '/v1/admin/accounts', { accountId }),
        [200, 201],
        accountId,
      )
      const key = expectStatus(
        await client.admin('POST', `/v1/admin/accounts/${accountId}/keys`, {
          scopes: ['read', 'trade', 'withdraw'],
        }),
        [201],
        `${accountId} key`,
      )
      expectStatus(
        await client.admin('POST', '/v1/admin/deposits', {
          depositId: `fund-${accountId}`,
          accountId,
          asset: 'USD',
          amount: deposit,
          signedAt: Date.now(),
        }),
        [200, 201],
        `${accountId} deposit`,
      )
      accounts.push({ accountId, keyId: key.keyId, secret: key.secret })
    },
  )
  return accounts.sort((a, b) => (a.accountId < b.accountId ? -1 : 1))
}

/** Posts the bench mark to every node now and every 5 s (marks go stale after 30 s). */
export function keepMarksFresh(clients: (() => ApiClient)[]): {
  stop(): void
  ready: Promise<void>
} {
  const post = () =>
    Promise.all(
      clients.map(async (client) => {
        const reply = await client().admin('POST', '/v1/admin/marks', {
          instrument: benchInstrument,
          price: benchMark,
          ts: Date.now(),
        })
        expectStatus(reply, [200], 'mark')
      }),
    )
  const timer = setInterval(() => void post().catch(() => undefined), 5_000)
  return { stop: () => clearInterval(timer), ready: post().then(() => undefined) }
}

/** Cancels every resting bench order of these accounts, so the next run starts on an empty book. */
export async function cancelResting(client: ApiClient, accounts: SignedAccount[]): Promise<void> {
  await pooled(accounts, 8, async (account) => {
    const path = `/v1/orders?instrument=${benchInstrument}`
    expectStatus(await client.signed(account, 'DELETE', path), [200, 202], 'cancel all')
  })
}

/** Every node's documents, from GET /v1/mesh/status. */
export async function meshStatus(
  client: ApiClient,
): Promise<{ docs: Map<string, DocDigest>; body: any }> {
  const reply = await client.admin('GET', '/v1/mesh/status')
  const body = expectStatus(reply, [200], 'mesh status')
  return { docs: parseMeshStatus(body), body }
}

/** Polls the mesh status of `clients` until every document agrees; resolves with the ms it took. */
export async function agreed(
  clients: Record<string, ApiClient>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<number> {
  const startedAt = performance.now()
  const ids = Object.keys(clients)
  let last = ''
  for (;;) {
    try {
      const views = await Promise.all(ids.map(async (id) => (await meshStatus(clients[id]!)).docs))
      last = disagreement(ids, views)
      if (last === '') return performance.now() - startedAt
    } catch (error) {
      last = String(error)
    }
    if (performance.now() - startedAt > timeoutMs) {
      throw new Error(`no agreement among ${ids.join(',')} after ${timeoutMs} ms\n${last}`)
    }
    await sleep(intervalMs)
  }
}

/** Bytes each node received on its links, over every document (one end of each link counts). */
export async function linkBytesIn(clients: Record<string, ApiClient>): Promise<number> {
  let total = 0
  for (const client of Object.values(clients)) {
    const { body } = await meshStatus(client)
    for (const document of body.documents as any[]) {
      for (const link of (document.links ?? []) as any[]) {
        if (link.state === 'up' && link.role === 'node') total += Number(link.bytesIn ?? 0)
      }
    }
  }
  return total
}
