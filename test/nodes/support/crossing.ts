// A steady flow of crossing orders for failover runs (test/nodes/failover.test.ts and the bench's
// failover section): alice sells and bob buys 0.01 BTC-PERP at 60000, both entering at one node,
// which forwards them to whichever node holds the matcher lease.

import { expect } from 'vitest'
import { markFutureMsMax } from '../../../src/constants'
import type { ApiKey } from '../../support/api-client'
import { depositAt } from './funding'
import type { Mesh } from './mesh'

export type Traders = { alice: ApiKey; bob: ApiKey; at: string }

/** Marks live outside the documents, on each node: every node named gets a fresh one. */
export async function postMarks(mesh: Mesh, ids: string[]): Promise<void> {
  const ts = Date.now() + markFutureMsMax - 1_000
  for (const id of ids) {
    const reply = await mesh
      .client(id)
      .admin('POST', '/v1/admin/marks', { instrument: 'BTC-PERP', price: '60000', ts })
    expect(reply.status, `mark on ${id}`).toBe(200)
  }
}

/** Two accounts funded at node `at` (escrow: a node spends what deposits there gave it). */
export async function fundTraders(mesh: Mesh, at: string): Promise<Traders> {
  const alice = await mesh.client(mesh.ids[0]!).fundedAccount('alice', '0', ['read', 'trade'])
  const bob = await mesh.client(mesh.ids[0]!).fundedAccount('bob', '0', ['read', 'trade'])
  await depositAt(mesh, at, { accountId: 'alice', key: alice }, '100000', `alice-at-${at}`)
  await depositAt(mesh, at, { accountId: 'bob', key: bob }, '100000', `bob-at-${at}`)
  await postMarks(mesh, mesh.ids)
  await mesh.converge('funded')
  return { alice, bob, at }
}

/**
 * One crossing pair, number `n`; each taken order is added to `placed`, every other answer must be
 * a retryable refusal (503) or outcome unknown (504). Resolves whether either order filled at once.
 */
export async function cross(
  mesh: Mesh,
  traders: Traders,
  n: number,
  placed: { key: ApiKey; orderId: string }[],
): Promise<boolean> {
  const client = mesh.client(traders.at)
  const body = (side: 'buy' | 'sell', id: string) => ({
    clientOrderId: id,
    instrument: 'BTC-PERP',
    side,
    type: 'limit',
    price: '60000',
    size: '0.01',
  })
  const ask = await client.signed(traders.alice, 'POST', '/v1/orders', body('sell', `ask-${n}`))
  const bid = await client.signed(traders.bob, 'POST', '/v1/orders', body('buy', `bid-${n}`))
  for (const [key, reply] of [
    [traders.alice, ask],
    [traders.bob, bid],
  ] as const) {
    if (reply.status === 201 || reply.status === 200)
      placed.push({ key, orderId: reply.body.orderId })
    else expect([503, 504], JSON.stringify(reply.body)).toContain(reply.status)
  }
  // Either side may be the one that fills: an order of an earlier pair whose other side was
  // refused rests, and the next pair's first order fills against it.
  return [ask, bid].some((reply) => reply.status === 201 && reply.body.filledSize !== '0')
}

/** Pause between crossing pairs: a steady 20 orders a second, well within an API key's rate. */
const crossEveryMs = 100

/**
 * Ms from `since` until a crossing pair fills, crossing from number `n` on (one pair every
 * `crossEveryMs`, so the figure resolves to that); throws past 30 s.
 */
export async function untilFill(
  mesh: Mesh,
  traders: Traders,
  n: number,
  placed: { key: ApiKey; orderId: string }[],
  since = performance.now(),
): Promise<{ ms: number; next: number }> {
  for (let i = n; ; i++) {
    if (await cross(mesh, traders, i, placed)) return { ms: performance.now() - since, next: i + 1 }
    if (performance.now() - since > 30_000) throw new Error('no fill within 30 s')
    await new Promise((resolve) => setTimeout(resolve, crossEveryMs))
  }
}
