// Matcher leases on real nodes (three processes; BTC-PERP's home is a, candidates a, b, c):
// - at start the home holds the lease, and every node names it as the holder;
// - the home is killed: once it has been silent for the failover timeout, b (the next candidate)
//   holds a higher term, granted by b and c, and c names b;
// - the home returns: it does not fail back on its own, b keeps the lease and a names b.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { markFutureMsMax } from '../../src/constants'
import type { LeaseStatus } from '../../src/mesh/lease-agent'
import type { ApiKey } from '../support/api-client'
import { depositAt } from './support/funding'
import { startMesh, waitFor, type Mesh } from './support/mesh'

/** Marks live outside the documents, on each node: every node named gets a fresh one. */
async function postMarks(mesh: Mesh, ids: string[]) {
  const ts = Date.now() + markFutureMsMax - 1_000
  for (const id of ids) {
    const reply = await mesh
      .client(id)
      .admin('POST', '/v1/admin/marks', { instrument: 'BTC-PERP', price: '60000', ts })
    expect(reply.status, `mark on ${id}`).toBe(200)
  }
}

describe('matcher leases move to the next candidate when the home dies, and stay there', () => {
  let mesh: Mesh

  /** Each node's view of BTC-PERP's lease, from its mesh status. */
  const leaseAt = async (id: string): Promise<LeaseStatus> => {
    const reply = await mesh.client(id).admin('GET', '/v1/mesh/status')
    expect(reply.status, `mesh status of ${id}`).toBe(200)
    const body = reply.body as { documents: { shard: string; lease?: LeaseStatus }[] }
    const market = body.documents.find((doc) => doc.shard.endsWith('market/BTC-PERP'))
    expect(market?.lease, `${id} reports the lease of BTC-PERP`).toBeDefined()
    return market!.lease!
  }

  const holderEverywhere = (ids: string[], holder: string) =>
    waitFor(
      `${holder} holds BTC-PERP's lease as ${ids.join(', ')} see it`,
      async () => {
        const views = await Promise.all(ids.map(leaseAt))
        const agreed = views.every(
          (view, i) => view.holder === holder && view.holding === (ids[i] === holder),
        )
        return agreed ? views : undefined
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    )

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b', 'c'], shards: 2 })
    await mesh.converge('start')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  it('has the home hold the lease, then b a higher term after the home dies, with no failback', async () => {
    const [atA] = await holderEverywhere(['a', 'b', 'c'], 'a')
    expect(atA!.candidates).toEqual(['a', 'b', 'c'])
    expect(atA!.term).toBeGreaterThanOrEqual(1)

    await mesh.node('a').kill()
    const killedAt = performance.now()
    const [atB] = await holderEverywhere(['b', 'c'], 'b')
    const movedMs = performance.now() - killedAt
    console.log(`lease of BTC-PERP moved to b ${movedMs.toFixed(0)} ms after a was killed`)
    expect(atB!.term).toBeGreaterThan(1)
    expect(atB!.ready).toBe(true)

    await mesh.node('a').restart()
    const [, afterReturn] = await holderEverywhere(['a', 'b', 'c'], 'b')
    expect(afterReturn!.term).toBe(atB!.term)
  })
})

// Trading through a failover (three nodes; orders enter at c, which forwards them to the lease
// holder): a steady flow of crossing orders runs while the home a is killed. Orders in flight get
// clear answers (2xx, or a retryable 503/504); once b holds the lease, orders fill again; after a
// returns and the mesh converges, every node shows the same book, the same state of every order,
// no order filled beyond its size, and positions that net to zero.
describe('trading resumes on the next candidate when the home dies under a steady order flow', () => {
  let mesh: Mesh
  let alice: ApiKey
  let bob: ApiKey
  const placed: { key: ApiKey; orderId: string }[] = []

  const cross = async (n: number) => {
    const at = mesh.client('c')
    const body = (side: 'buy' | 'sell', id: string) => ({
      clientOrderId: id,
      instrument: 'BTC-PERP',
      side,
      type: 'limit',
      price: '60000',
      size: '0.01',
    })
    const ask = await at.signed(alice, 'POST', '/v1/orders', body('sell', `ask-${n}`))
    const bid = await at.signed(bob, 'POST', '/v1/orders', body('buy', `bid-${n}`))
    for (const [key, reply] of [
      [alice, ask],
      [bob, bid],
    ] as const) {
      if (reply.status === 201 || reply.status === 200)
        placed.push({ key, orderId: reply.body.orderId })
      else expect([503, 504], JSON.stringify(reply.body)).toContain(reply.status)
    }
    return bid.status === 201 && bid.body.filledSize === '0.01'
  }

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b', 'c'], shards: 2 })
    await mesh.converge('start')
    alice = await mesh.client('a').fundedAccount('alice', '0', ['read', 'trade'])
    bob = await mesh.client('a').fundedAccount('bob', '0', ['read', 'trade'])
    await depositAt(mesh, 'c', { accountId: 'alice', key: alice }, '100000', 'alice-at-c')
    await depositAt(mesh, 'c', { accountId: 'bob', key: bob }, '100000', 'bob-at-c')
    await postMarks(mesh, mesh.ids)
    await mesh.converge('funded')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  it('fills again at b after a is killed, and every node agrees after a returns', async () => {
    let n = 0
    await waitFor('a first fill through a', async () => ((await cross(n++)) ? true : undefined))
    await mesh.node('a').kill()
    const killedAt = performance.now()
    let firstFillMs: number | undefined
    while (firstFillMs === undefined) {
      if (await cross(n++)) firstFillMs = performance.now() - killedAt
      expect(performance.now() - killedAt, 'trading resumed within 30 s').toBeLessThan(30_000)
    }
    console.log(`first fill by the new matcher ${firstFillMs.toFixed(0)} ms after a was killed`)
    for (let i = 0; i < 5; i++) await cross(n++)

    await mesh.node('a').restart()
    await postMarks(mesh, ['a'])
    await mesh.converge('after the home returned', { timeoutMs: 60_000 })
    const books = await Promise.all(
      mesh.ids.map(async (id) => (await mesh.client(id).plain('GET', '/v1/book/BTC-PERP')).body),
    )
    for (const book of books)
      expect({ bids: book.bids, asks: book.asks }).toEqual({
        bids: books[0].bids,
        asks: books[0].asks,
      })
    for (const { key, orderId } of placed) {
      const views = await Promise.all(
        mesh.ids.map(async (id) => {
          const reply = await mesh.client(id).signed(key, 'GET', `/v1/orders/${orderId}`)
          expect(reply.status, `${orderId} on ${id}`).toBe(200)
          return reply.body
        }),
      )
      for (const view of views) {
        expect(view.status).toBe(views[0].status)
        expect(view.filledSize).toBe(views[0].filledSize)
        expect(Number(view.filledSize)).toBeLessThanOrEqual(Number(view.size))
      }
    }
    for (const id of mesh.ids) {
      const sizes = await Promise.all(
        [alice, bob].map(async (key) => {
          const reply = await mesh.client(id).signed(key, 'GET', '/v1/positions')
          const position = (reply.body.positions as { instrument: string; size: string }[]).find(
            (p) => p.instrument === 'BTC-PERP',
          )
          return Number(position?.size ?? '0')
        }),
      )
      expect(sizes[0]! + sizes[1]!, `positions net to zero on ${id}`).toBeCloseTo(0, 9)
    }
  })
})
