// Writes that need more than the node they reach, on three real nodes whose links run through TCP
// proxies. BTC-PERP is matched on node a:
// - an order sent to b or c is forwarded to a and answered with a's decision; with a cut off it is
//   refused 503 not_executed and takes nothing;
// - a cancel is recorded where it arrives: with a cut off, b answers 202 cancel_requested, and the
//   order is cancelled once the heal brings the request to a;
// - a `quorum` deposit is answered once a majority of nodes holds it; on a minority side it is
//   answered 504 unknown, stays durable there, and reaches every node after the heal.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { markFutureMsMax } from '../../src/constants'
import type { ApiKey } from '../support/api-client'
import { depositAt } from './support/funding'
import { startMesh, waitFor, type Mesh } from './support/mesh'

describe('orders forwarded to the home node, cancels recorded where they arrive, quorum writes', () => {
  let mesh: Mesh
  let alice: ApiKey
  let bob: ApiKey
  const figures: Record<string, number> = {}

  const order = (clientOrderId: string, side: 'buy' | 'sell', price: string, size: string) => ({
    clientOrderId,
    instrument: 'BTC-PERP',
    side,
    type: 'limit',
    price,
    size,
  })

  /** Polls `node`'s view of an order until it has `status`. */
  const untilStatus = (node: string, key: ApiKey, orderId: string, status: string) =>
    waitFor(`order ${orderId} ${status} on ${node}`, async () => {
      const reply = await mesh.client(node).signed(key, 'GET', `/v1/orders/${orderId}`)
      return reply.status === 200 && reply.body.status === status ? reply.body : undefined
    })

  /**
   * Waits until `node`'s links to `peers` are all down (`up: false`) or all up, for every
   * document. Digests can agree while a link is still redialling (a bridge relays), and an order
   * is forwarded only over a live link to its home node.
   */
  const untilLinks = (node: string, peers: string[], up: boolean) =>
    waitFor(`${node} links to ${peers.join(',')} ${up ? 'up' : 'down'}`, async () => {
      const docs = [...(await mesh.digests(node)).values()]
      const links = docs.flatMap((doc) => doc.links.filter((link) => peers.includes(link.peer)))
      return links.every((link) => (link.state === 'up') === up) ? true : undefined
    })
  const untilCutOff = (node: string, peers: string[]) => untilLinks(node, peers, false)

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b', 'c'], proxied: true })
    await mesh.converge('start')
    // Funded where they trade: a node spends only the rights its deposits gave it (escrow).
    alice = await mesh.client('a').fundedAccount('alice', '0', ['read', 'trade'])
    bob = await mesh.client('a').fundedAccount('bob', '0', ['read', 'trade'])
    await depositAt(mesh, 'b', { accountId: 'alice', key: alice }, '100000', 'alice-at-b')
    await depositAt(mesh, 'c', { accountId: 'bob', key: bob }, '100000', 'bob-at-c')
    // Marks live on each node (the risk check runs where the order arrives).
    const ts = Date.now() + markFutureMsMax - 1_000
    for (const id of mesh.ids) {
      const reply = await mesh
        .client(id)
        .admin('POST', '/v1/admin/marks', { instrument: 'BTC-PERP', price: '60000', ts })
      expect(reply.status).toBe(200)
    }
    await mesh.converge('accounts')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    console.log(`mesh-routing figures: ${JSON.stringify(figures)}`)
    await mesh?.stop()
  })

  it('forwards orders from b and c to a, which matches them; every node then shows the fill', async () => {
    const ask = await mesh
      .client('b')
      .signed(alice, 'POST', '/v1/orders', order('r1', 'sell', '60100', '0.5'))
    expect(ask.status).toBe(201)
    expect(ask.body).toMatchObject({ status: 'open', remainingSize: '0.5' })
    const startedAt = performance.now()
    const bid = await mesh
      .client('c')
      .signed(bob, 'POST', '/v1/orders', order('r2', 'buy', '60100', '0.2'))
    figures.forwardedOrderMs = Math.round(performance.now() - startedAt)
    expect(bid.status).toBe(201)
    expect(bid.body).toMatchObject({
      status: 'filled',
      filledSize: '0.2',
      averageFillPrice: '60100',
    })
    await mesh.converge('after forwarded fill')
    for (const id of mesh.ids) {
      const fills = await mesh.client(id).signed(bob, 'GET', '/v1/fills')
      expect(fills.status).toBe(200)
      expect(fills.body.fills).toHaveLength(1)
      const book = await mesh.client(id).plain('GET', '/v1/book/BTC-PERP')
      expect(book.body.asks).toEqual([{ price: '60100', size: '0.3', orders: 1 }])
    }
    // A retry at a third node of the same client order id replays a's decision, nothing new.
    const retried = await mesh
      .client('a')
      .signed(bob, 'POST', '/v1/orders', order('r2', 'buy', '60100', '0.2'))
    expect(retried.status).toBe(201)
    expect(retried.headers.get('idempotent-replayed')).toBe('true')
    expect(retried.body.orderId).toBe(bid.body.orderId)
  })

  it('refuses orders while a is cut off, records cancels, and applies them after the heal', async () => {
    const resting = await mesh
      .client('b')
      .signed(alice, 'POST', '/v1/orders', order('r3', 'sell', '60200', '0.1'))
    expect(resting.status).toBe(201)
    const orderId = resting.body.orderId as string
    await mesh.converge('resting order everywhere')

    mesh.isolate('a')
    await untilCutOff('b', ['a'])
    const refused = await mesh
      .client('b')
      .signed(alice, 'POST', '/v1/orders', order('r4', 'sell', '60300', '0.1'))
    expect(refused.status).toBe(503)
    expect(refused.body.error).toMatchObject({
      code: 'home_node_unreachable',
      retryable: true,
      executionStatus: 'not_executed',
    })
    // Not executed means nothing taken: the same client order id is free for the retry.
    const unknown = await mesh.client('b').signed(alice, 'GET', '/v1/orders?clientOrderId=r4')
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.code).toBe('not_found')

    const cancel = await mesh.client('b').signed(alice, 'DELETE', `/v1/orders/${orderId}`)
    expect(cancel.status).toBe(202)
    expect(cancel.body).toMatchObject({ orderId, status: 'cancel_requested', node: 'b' })
    expect(cancel.body.order).toMatchObject({ status: 'open' })
    // a has not seen it: the order still rests there.
    expect((await mesh.client('a').signed(alice, 'GET', `/v1/orders/${orderId}`)).body.status).toBe(
      'open',
    )

    const healedAt = performance.now()
    mesh.healAll()
    await untilStatus('a', alice, orderId, 'cancelled')
    figures.cancelAppliedAfterHealMs = Math.round(performance.now() - healedAt)
    await untilStatus('b', alice, orderId, 'cancelled')
    await mesh.converge('after the cancel')
    await untilLinks('b', ['a'], true)

    // The retried order goes through now that a is reachable again.
    const retried = await mesh
      .client('b')
      .signed(alice, 'POST', '/v1/orders', order('r4', 'sell', '60300', '0.1'))
    expect(retried.body).toMatchObject({ status: 'open' })
    expect(retried.status).toBe(201)
  })

  it('answers quorum writes once a majority holds them, and 504 unknown on a minority side', async () => {
    const deposit = (depositId: string) => ({
      depositId,
      accountId: 'alice',
      asset: 'USD',
      amount: '10',
      signedAt: Date.now(),
      durability: 'quorum',
    })
    const startedAt = performance.now()
    const whole = await mesh.client('a').admin('POST', '/v1/admin/deposits', deposit('q1'))
    figures.quorumDepositMs = Math.round(performance.now() - startedAt)
    expect(whole.status).toBe(201)

    mesh.isolate('c')
    await untilCutOff('c', ['a', 'b'])
    const minority = await mesh.client('c').admin('POST', '/v1/admin/deposits', deposit('q2'))
    expect(minority.status).toBe(504)
    expect(minority.body.error).toMatchObject({
      code: 'quorum_timeout',
      retryable: true,
      executionStatus: 'unknown',
    })
    const majority = await mesh.client('b').admin('POST', '/v1/admin/deposits', deposit('q3'))
    expect(majority.status).toBe(201)

    mesh.healAll()
    await mesh.converge('after the quorum split')
    // The minority's write was durable on c all along: after the heal every node holds it, and
    // the client's retry of the same id replays it, now answered by a majority.
    const retried = await mesh.client('c').admin('POST', '/v1/admin/deposits', deposit('q2'))
    expect(retried.status).toBe(201)
    expect(retried.headers.get('idempotent-replayed')).toBe('true')
    for (const id of mesh.ids) {
      const ledger = await mesh.client(id).signed(alice, 'GET', '/v1/ledger')
      const ids = (ledger.body.entries as { id: string }[]).map((entry) => entry.id)
      expect(ids.filter((entry) => /q[123]$/.test(entry))).toHaveLength(3)
    }
  })
})
