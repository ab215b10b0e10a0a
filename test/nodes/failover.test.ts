// Matcher leases on real nodes (three processes; BTC-PERP's home is a, candidates a, b, c):
// - at start the home holds the lease, and every node names it as the holder;
// - the home is killed: once it has been silent for the failover timeout, b (the next candidate)
//   holds a higher term, granted by b and c, and c names b;
// - the home returns: it does not fail back on its own, b keeps the lease and a names b.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { LeaseStatus } from '../../src/mesh/lease-agent'
import { startMesh, waitFor, type Mesh } from './support/mesh'

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
