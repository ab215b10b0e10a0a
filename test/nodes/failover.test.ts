// Matcher leases on real nodes (three processes; BTC-PERP's home is a, candidates a, b, c):
// - at start the home holds the lease, and every node names it as the holder;
// - the home is killed: once it has been silent for the failover timeout, b (the next candidate)
//   holds a higher term, granted by b and c, and c names b;
// - the home returns: it does not fail back on its own, b keeps the lease and a names b.

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

/** Waits until every node of `ids` names `holder`, and only `holder` says it is holding. */
const holderEverywhere = (mesh: Mesh, ids: string[], holder: string) =>
  waitFor(
    `${holder} holds BTC-PERP's lease as ${ids.join(', ')} see it`,
    async () => {
      const views = await Promise.all(ids.map((id) => leaseAt(mesh, id)))
      const agreed = views.every(
        (view, i) => view.holder === holder && view.holding === (ids[i] === holder),
      )
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
    expect(afterReturn!.term).toBe(atB!.term)
  })
})

// Trading through a failover (three nodes; orders enter at c, which forwards them to the lease
// holder): a steady flow of crossing orders runs while the home a is killed (F7), or paused with
// SIGSTOP past its lease (F8) and resumed. Orders in flight get clear answers (2xx, or a
// retryable 503/504); once b holds the lease, orders fill again; a paused a wakes with its lease
// expired on its own clock and takes nothing. After a is back and the mesh converges, every node
// shows the same book, the same state of every order, no order filled beyond its size, and
// positions that net to zero.
const faults = {
  kill: { does: 'is killed', stop: (mesh: Mesh) => mesh.node('a').kill() },
  pause: {
    does: 'is paused past its lease',
    stop: async (mesh: Mesh) => signalGroup(mesh.node('a').pid(), 'SIGSTOP'),
  },
}

for (const [fault, { does, stop }] of Object.entries(faults)) {
  describe(`trading resumes on the next candidate when the home ${does} under a steady flow`, () => {
    let mesh: Mesh
    let traders: Traders
    const placed: { key: ApiKey; orderId: string }[] = []

    beforeAll(async () => {
      mesh = await startMesh({ ids: ['a', 'b', 'c'], shards: 2 })
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

    it(`fills again at b after a ${does}, and every node agrees once a is back`, async () => {
      const through = await untilFill(mesh, traders, 0, placed)
      await stop(mesh)
      const resumed = await untilFill(mesh, traders, through.next, placed)
      console.log(`${fault}: first fill by the new matcher ${resumed.ms.toFixed(0)} ms after`)
      let n = resumed.next
      for (let i = 0; i < 5; i++) n = (await untilFill(mesh, traders, n, placed)).next

      if (fault === 'kill') {
        await mesh.node('a').restart()
        await postMarks(mesh, ['a'])
      } else signalGroup(mesh.node('a').pid(), 'SIGCONT')
      // The returning home does not take the lease back, and holds none of its own.
      await holderEverywhere(mesh, ['a', 'b', 'c'], 'b')
      for (let i = 0; i < 3; i++) n = (await untilFill(mesh, traders, n, placed)).next
      await mesh.converge('after the home returned', { timeoutMs: 60_000 })
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
