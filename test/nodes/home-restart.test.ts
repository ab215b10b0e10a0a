// A home node that starts with less than its peers hold (wiped here) must not match before it has
// caught up: its next step would take a sequence number that already holds another step on the
// peers, and the two histories could never merge (found by the chaos soak, seed 5017: a wipe of
// the home node). Three real nodes; BTC-PERP is matched on a:
// - a is wiped while c is down: it syncs from b only, fewer peers than a repair needs, so its
//   matcher refuses orders 503 market_syncing (not executed) — from a client at a and forwarded
//   from b alike;
// - c comes back: a has synced with enough peers, takes the retried order, and every node ends
//   with one history of steps.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { ApiKey } from '../support/api-client'
import { postMarks } from './support/crossing'
import { startMesh, waitFor, type Mesh } from './support/mesh'

describe('a wiped home node matches only once it has caught up from its peers', () => {
  let mesh: Mesh
  let alice: ApiKey

  const order = (node: string, clientOrderId: string) =>
    mesh.client(node).signed(alice, 'POST', '/v1/orders', {
      clientOrderId,
      instrument: 'BTC-PERP',
      side: 'sell',
      type: 'limit',
      price: '60500',
      size: '0.01',
    })

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b', 'c'] })
    await mesh.converge('start')
    // Funded at a and b, where it trades (escrow: a node spends the rights its deposits gave it).
    alice = await mesh.client('a').fundedAccount('alice', '10000', ['read', 'trade'])
    const atB = await mesh.client('b').admin('POST', '/v1/admin/deposits', {
      depositId: 'alice-at-b',
      accountId: 'alice',
      asset: 'USD',
      amount: '10000',
      signedAt: Date.now(),
    })
    expect(atB.status).toBe(201)
    await postMarks(mesh, mesh.ids)
    await mesh.converge('funded')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  it('refuses to match while wiped and partly synced, then takes the retry with one history', async () => {
    for (let i = 0; i < 3; i++) expect((await order('a', `before-${i}`)).status).toBe(201)
    await mesh.converge('steps everywhere')

    await mesh.node('c').kill()
    await mesh.node('a').wipe()
    // a catches up from b; its marks were wiped with it.
    await waitFor('a holds alice again', async () =>
      (await mesh.client('a').signed(alice, 'GET', '/v1/account')).status === 200
        ? true
        : undefined,
    )
    await postMarks(mesh, ['a', 'b'])
    for (const [node, id] of [
      ['a', 'while-syncing-a'],
      ['b', 'while-syncing-b'],
    ] as const) {
      // b forwards once its link to a is back, and a matches only once it holds the lease again
      // (a wiped grantor grants nothing for one lease); until then both refuse, just as retryably.
      const refused = await waitFor(`${node} hears a's matcher`, async () => {
        const reply = await order(node, id)
        const code = reply.body.error?.code
        return code === 'home_node_unreachable' || code === 'not_home_node' ? undefined : reply
      })
      expect(refused.status, `order at ${node}`).toBe(503)
      expect(refused.body.error).toMatchObject({
        code: 'market_syncing',
        retryable: true,
        executionStatus: 'not_executed',
      })
    }

    await mesh.node('c').restart()
    await postMarks(mesh, mesh.ids)
    const taken = await waitFor('a matches again', async () => {
      const reply = await order('a', 'while-syncing-a')
      return reply.status === 201 ? reply : undefined
    })
    expect(taken.body).toMatchObject({ status: 'open' })
    await mesh.converge('after the home node caught up', { timeoutMs: 30_000 })
    for (const id of mesh.ids) {
      const open = await mesh.client(id).signed(alice, 'GET', '/v1/orders?status=open')
      expect(open.status).toBe(200)
      const ids = (open.body.orders as { clientOrderId: string }[]).map((o) => o.clientOrderId)
      expect(ids.sort(), `open orders on ${id}`).toEqual([
        'before-0',
        'before-1',
        'before-2',
        'while-syncing-a',
      ])
    }
  })
})
