// Matcher leases on real nodes (three processes; BTC-PERP's home is a, candidates a, b, c):
// - at start the home holds the lease, and every node names it as the holder;
// - the home is killed: once it has been silent for the failover timeout, b (the next candidate)
//   holds a higher term, granted by b and c, and c names b;
// - the home returns: it does not fail back on its own, b keeps the lease and a names b
//   (failback, the operator's action, is tested with trading below).

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { LeaseStatus } from '../../src/mesh/lease-agent'
import type { ApiKey } from '../support/api-client'
import { fundTraders, postMarks, untilFill, type Traders } from './support/crossing'
import { startMesh, waitFor, type Mesh } from './support/mesh'
import { signalGroup } from '../../scripts/lib/node-process'

/** Each node's view of BTC-PERP's lease, from its mesh status. */
async function leaseAt(mesh: Mesh, id: string): Promise<LeaseStatus> {
  const reply = await mesh.client(id).admin('GET', '/v1/mesh/status')
  expect(reply.status, `mesh status of ${id}`).toBe(200)
  const body = reply.body as { documents: { shard: string; lease?: LeaseStatus }[] }
  const market = body.documents.find((doc) => doc.shard.endsWith('market/BTC-PERP'))
  expect(market?.lease, `${id} reports the lease of BTC-PERP`).toBeDefined()
  return market!.lease!
}

/**
 * Waits until every node of `ids` names one of `holders` as the holder, the same one, and only
 * that one says it is holding.
 */
const holderEverywhere = (mesh: Mesh, ids: string[], ...holders: string[]) =>
  waitFor(
    `${holders.join(' or ')} holds BTC-PERP's lease as ${ids.join(', ')} see it`,
    async () => {
      const views = await Promise.all(ids.map((id) => leaseAt(mesh, id)))
      const holder = views[0]!.holder
      const agreed =
        holder !== null &&
        holders.includes(holder) &&
        views.every((view, i) => view.holder === holder && view.holding === (ids[i] === holder))
      return agreed ? views : undefined
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  )

describe('matcher leases move to the next candidate when the home dies, and stay there', () => {
  let mesh: Mesh

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
    const [atA] = await holderEverywhere(mesh, ['a', 'b', 'c'], 'a')
    expect(atA!.candidates).toEqual(['a', 'b', 'c'])
    expect(atA!.term).toBeGreaterThanOrEqual(1)

    await mesh.node('a').kill()
    const killedAt = performance.now()
    const [atB] = await holderEverywhere(mesh, ['b', 'c'], 'b')
    const movedMs = performance.now() - killedAt
    console.log(`lease of BTC-PERP moved to b ${movedMs.toFixed(0)} ms after a was killed`)
    expect(atB!.term).toBeGreaterThan(1)
    expect(atB!.ready).toBe(true)

    await mesh.node('a').restart()
    const [, afterReturn] = await holderEverywhere(mesh, ['a', 'b', 'c'], 'b')
    // b keeps the lease. Its term may have grown once: a returning a that campaigned before it
    // heard b is refused, and b moves above the term a asked for (no pre-vote: docs/failover.md).
    expect(afterReturn!.term).toBeGreaterThanOrEqual(atB!.term)
  })
})

// Trading through a failover (three nodes; orders enter at c, which forwards them to the lease
// holder): a steady flow of crossing orders runs while the home a is killed (F7), paused with
// SIGSTOP past its lease (F8) and resumed, or cut off into a minority by the TCP proxies (F1),
// where it answers order entry 503 retryable, not executed, once its lease ran out. Orders in
// flight get clear answers (2xx, or a retryable 503/504); once b holds the lease, orders fill
// again; a paused a wakes with its lease expired on its own clock and takes nothing. Once a is
// back, b keeps the lease until an operator fails back to a (the admin endpoint, asked at c);
// orders then fill at a. After the mesh converges, every node shows the same book, the same state
// of every order, no order filled beyond its size, and positions that net to zero.
type Fault = {
  does: string
  proxied: boolean
  stop: (mesh: Mesh) => Promise<void> | void
  /** While a is down or cut off (b matching): what a answers, if anything. */
  meanwhile?: (mesh: Mesh, traders: Traders) => Promise<void>
  recover: (mesh: Mesh) => Promise<void> | void
}
const faults: Record<string, Fault> = {
  kill: {
    does: 'is killed',
    proxied: false,
    stop: (mesh) => mesh.node('a').kill(),
    recover: async (mesh) => {
      await mesh.node('a').restart()
      await postMarks(mesh, ['a'])
    },
  },
  pause: {
    does: 'is paused past its lease',
    proxied: false,
    stop: (mesh) => signalGroup(mesh.node('a').pid(), 'SIGSTOP'),
    recover: (mesh) => signalGroup(mesh.node('a').pid(), 'SIGCONT'),
  },
  partition: {
    does: 'is cut off into a minority',
    proxied: true,
    stop: (mesh) => mesh.isolate('a'),
    meanwhile: async (mesh, traders) => {
      await waitFor('a lets its lease run out', async () =>
        (await leaseAt(mesh, 'a')).holding ? undefined : true,
      )
      const reply = await mesh.client('a').signed(traders.alice, 'POST', '/v1/orders', {
        clientOrderId: 'minority-a',
        instrument: 'BTC-PERP',
        side: 'sell',
        type: 'limit',
        price: '60000',
        size: '0.01',
      })
      expect(reply.status, JSON.stringify(reply.body)).toBe(503)
      expect(reply.body.error).toMatchObject({ retryable: true, executionStatus: 'not_executed' })
      const read = await mesh.client('a').signed(traders.alice, 'GET', '/v1/orders?status=open')
      expect(read.status).toBe(200)
      const ids = (read.body.orders as { clientOrderId: string }[]).map((o) => o.clientOrderId)
      expect(ids, 'the minority took no order').not.toContain('minority-a')
    },
    recover: (mesh) => mesh.healAll(),
  },
}

for (const [fault, { does, proxied, stop, meanwhile, recover }] of Object.entries(faults)) {
  describe(`trading resumes on the next candidate when the home ${does} under a steady flow`, () => {
    let mesh: Mesh
    let traders: Traders
    const placed: { key: ApiKey; orderId: string }[] = []

    beforeAll(async () => {
      mesh = await startMesh({ ids: ['a', 'b', 'c'], shards: 2, proxied })
      await mesh.converge('start')
      traders = await fundTraders(mesh, 'c')
    })

    afterEach((context) => {
      if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
    })

    afterAll(async () => {
      if (fault === 'pause') signalGroup(mesh.node('a').pid(), 'SIGCONT')
      await mesh?.stop()
    })

    it(`fills again at b after a ${does}, then at a after a failback, and every node agrees`, async () => {
      const through = await untilFill(mesh, traders, 0, placed)
      await stop(mesh)
      const resumed = await untilFill(mesh, traders, through.next, placed)
      console.log(`${fault}: first fill by the new matcher ${resumed.ms.toFixed(0)} ms after`)
      let n = resumed.next
      for (let i = 0; i < 5; i++) n = (await untilFill(mesh, traders, n, placed)).next

      await meanwhile?.(mesh, traders)

      await recover(mesh)
      // The returning home does not take the lease back, and holds none of its own.
      const [, atB] = await holderEverywhere(mesh, ['a', 'b', 'c'], 'b')
      for (let i = 0; i < 3; i++) n = (await untilFill(mesh, traders, n, placed)).next

      // Failback, asked at c: b releases, a campaigns for a higher term and matches again.
      const failback = await mesh
        .client('c')
        .admin('POST', '/v1/admin/markets/BTC-PERP/failback', { node: 'a' })
      expect(failback.status, JSON.stringify(failback.body)).toBe(202)
      expect(failback.body).toMatchObject({ target: 'a', holder: 'b', outcome: 'asked_holder' })
      const [atA] = await holderEverywhere(mesh, ['a', 'b', 'c'], 'a')
      expect(atA!.term).toBeGreaterThan(atB!.term)
      for (let i = 0; i < 3; i++) n = (await untilFill(mesh, traders, n, placed)).next
      await mesh.converge('after the failback', { timeoutMs: 60_000 })
      await expectAgreement(mesh, traders, placed)
    })
  })
}

/** Every node shows the same book and orders; none filled beyond its size; positions net zero. */
async function expectAgreement(
  mesh: Mesh,
  traders: Traders,
  placed: { key: ApiKey; orderId: string }[],
): Promise<void> {
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
      [traders.alice, traders.bob].map(async (key) => {
        const reply = await mesh.client(id).signed(key, 'GET', '/v1/positions')
        const position = (reply.body.positions as { instrument: string; size: string }[]).find(
          (p) => p.instrument === 'BTC-PERP',
        )
        return Number(position?.size ?? '0')
      }),
    )
    expect(sizes[0]! + sizes[1]!, `positions net to zero on ${id}`).toBeCloseTo(0, 9)
  }
}

// A holder cut off with its lease still running takes an order into a step no majority can
// confirm: the client gets 504 outcome_unknown, and a retry of the same client order id must not
// be answered 201 from that node's own view of the step, which the next term fences (chaos soak
// seed 7006 found such an acknowledged order missing after the heal). The retry is answered only
// by the lease holder; after the heal every node agrees on what became of the order.
describe('a cut-off holder never acknowledges its unconfirmed step on a retry', () => {
  let mesh: Mesh
  let traders: Traders

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b', 'c'], shards: 2, proxied: true })
    await mesh.converge('start')
    traders = await fundTraders(mesh, 'a')
    await holderEverywhere(mesh, ['a', 'b', 'c'], 'a')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  it('answers the retry 504 while cut off, and what every node agrees on after the heal', async () => {
    const order = {
      clientOrderId: 'unconfirmed-a',
      instrument: 'BTC-PERP',
      side: 'sell',
      type: 'limit',
      price: '60500',
      size: '0.01',
    }
    const place = () => mesh.client('a').signed(traders.alice, 'POST', '/v1/orders', order)
    mesh.isolate('a')
    const first = await place()
    expect(first.status, JSON.stringify(first.body)).toBe(504)
    expect(first.body.error).toMatchObject({ code: 'outcome_unknown', retryable: true })
    const retried = await place()
    expect(retried.status, JSON.stringify(retried.body)).toBe(504)
    expect(retried.body.error).toMatchObject({ executionStatus: 'unknown', retryable: true })

    mesh.healAll()
    // b took the lease while a was cut off; a, campaigning meanwhile, comes back with a higher
    // term (no pre-vote) and may win it back once b's promises run out: either is a holder.
    await holderEverywhere(mesh, ['a', 'b', 'c'], 'b', 'a')
    const settled = await waitFor('the retry is answered by the holder', async () => {
      const reply = await place()
      return reply.status === 201 ? reply : undefined
    })
    await mesh.converge('after the heal', { timeoutMs: 60_000 })
    const orderId = settled.body.orderId as string
    for (const id of mesh.ids) {
      const view = await mesh.client(id).signed(traders.alice, 'GET', `/v1/orders/${orderId}`)
      expect(view.status, `${orderId} on ${id}`).toBe(200)
      expect(view.body.status, `${orderId} on ${id}`).toBe(settled.body.status)
    }
  })
})
