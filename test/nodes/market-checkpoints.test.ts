// Market checkpoints on three real nodes whose links run through TCP proxies: the matcher (a)
// settles an epoch while c is cut off and writes the market's checkpoint with the settle step;
// a and b acknowledge it, nothing is compacted while c has not; after the heal c acknowledges,
// every node deletes the folded steps, and positions, orders and fills read the same as before,
// after more trading, and after a node restarts from its compacted document.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { ApiKey } from '../support/api-client'
import { cross, fundTraders, postMarks, type Traders } from './support/crossing'
import { startMesh, waitFor, type Mesh } from './support/mesh'

describe('market checkpoints across three nodes', () => {
  let mesh: Mesh
  let traders: Traders
  const placed: { key: ApiKey; orderId: string }[] = []

  const checkpointOf = async (node: string) => {
    const reply = await mesh.client(node).admin('GET', '/v1/admin/markets/BTC-PERP/checkpoint')
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    return reply.body
  }

  const metricsOf = async (node: string) =>
    String((await mesh.client(node).admin('GET', '/metrics')).body)

  const settle = (node: string, epoch: number) =>
    mesh.client(node).admin('POST', '/v1/admin/settlements', { instrument: 'BTC-PERP', epoch })

  /** What a trader reads of the market on `node`: positions, its orders, its fills. */
  const readsOf = async (node: string) => {
    const client = mesh.client(node)
    const read = async (key: ApiKey, path: string) => {
      const reply = await client.signed(key, 'GET', path)
      expect(reply.status, `${node} ${path}: ${JSON.stringify(reply.body)}`).toBe(200)
      // Where and when the read was answered differs by node; what it says must not.
      const { reflects: _reflects, ...body } = reply.body
      return body
    }
    const views = []
    for (const { key, orderId } of placed) {
      const order = await read(key, `/v1/orders/${orderId}`)
      views.push([orderId, order.status, order.filledSize])
    }
    return {
      positions: await Promise.all(
        [traders.alice, traders.bob].map((k) => read(k, '/v1/positions')),
      ),
      fills: await Promise.all(
        [traders.alice, traders.bob].map(async (k) => (await read(k, '/v1/fills')).fills),
      ),
      orders: views,
    }
  }

  beforeAll(async () => {
    mesh = await startMesh({
      ids: ['a', 'b', 'c'],
      shards: 2,
      proxied: true,
      checkpointEveryMs: 2_000,
    })
    traders = await fundTraders(mesh, 'a')
    for (let n = 0; n < 4; n++) await cross(mesh, traders, n, placed)
    await mesh.converge('traded')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  it('compacts the steps on every node only once every node acknowledged; reads are unchanged', async () => {
    expect(placed.length).toBeGreaterThanOrEqual(6)
    const before = await readsOf('a')
    const stepsBefore = (await checkpointOf('a')).stepsHeld as number
    expect(stepsBefore).toBeGreaterThanOrEqual(placed.length)

    mesh.isolate('c')
    await postMarks(mesh, ['a'])
    const settled = await settle('a', 1)
    expect(settled.status, JSON.stringify(settled.body)).toBe(200)
    await waitFor('a and b acknowledge', async () => {
      const state = await checkpointOf('a')
      return state.latest?.epoch === 1 && state.latest.acknowledgedBy.length === 2
        ? state
        : undefined
    })
    // c has not acknowledged: nothing is in force, nothing compacted, on either side.
    for (const node of ['a', 'b']) {
      const state = await checkpointOf(node)
      expect(state.inForce).toBeNull()
      expect(state.stepsHeld).toBe(stepsBefore + 1)
    }
    // Operators see it waiting.
    expect(await metricsOf('a')).toContain(
      'clearmesh_checkpoint_waiting{doc="market/BTC-PERP"} 1\n',
    )

    mesh.healAll()
    await waitFor(
      'in force and compacted on every node',
      async () => {
        for (const node of mesh.ids) {
          const state = await checkpointOf(node)
          if (state.inForce?.epoch !== 1 || state.stepsHeld !== 0) return undefined
        }
        return true
      },
      { timeoutMs: 30_000 },
    )
    await mesh.converge('compacted')
    for (const node of mesh.ids) expect(await readsOf(node)).toEqual(before)
    const metrics = await metricsOf('c')
    expect(metrics).toContain('clearmesh_checkpoint_waiting{doc="market/BTC-PERP"} 0\n')
    expect(metrics).toContain('clearmesh_checkpoint_in_force_epoch{doc="market/BTC-PERP"} 1\n')
    // The settlement is still answered as it was; an earlier epoch can no longer be settled.
    expect((await settle('a', 1)).body).toEqual(settled.body)
    const folded = await settle('a', 0)
    expect(folded.status).toBe(422)
    expect(folded.body.error.code).toBe('epoch_folded')
  })

  it('goes on trading from the checkpoint, and a restarted node reads the same', async () => {
    for (let n = 10; n < 12; n++) await cross(mesh, traders, n, placed)
    await mesh.converge('traded after the checkpoint')
    const after = await readsOf('a')
    expect(after.fills[0].length).toBeGreaterThan(0)
    await mesh.node('b').kill()
    await mesh.node('b').restart()
    await mesh.converge('b restarted')
    expect(await readsOf('b')).toEqual(after)
    expect(await readsOf('c')).toEqual(after)
    // The reconciler's audits judge the steps after the checkpoint from its figures: clean.
    const audits = await mesh.client('b').admin('POST', '/v1/admin/audits')
    expect(audits.status, JSON.stringify(audits.body)).toBe(200)
    const market = audits.body.documents.find((d: { doc: string }) =>
      d.doc.endsWith('/market/BTC-PERP'),
    )
    expect(market).toMatchObject({ judged: true, violations: [] })
  })

  it('writes and replicates a checkpoint larger than one stored value', async () => {
    // 200 resting orders a side: the checkpoint keeps each one's book entry and view.
    const rest = async (key: ApiKey, side: 'buy' | 'sell', i: number) => {
      const price = String(side === 'buy' ? 59_000 - i : 61_000 + i)
      const reply = await mesh.client('a').signed(key, 'POST', '/v1/orders', {
        clientOrderId: `rest-${side}-${i}`,
        instrument: 'BTC-PERP',
        side,
        type: 'limit',
        price,
        size: '0.001',
      })
      expect(reply.status, JSON.stringify(reply.body)).toBe(201)
    }
    for (let i = 0; i < 190; i++) {
      await Promise.all([rest(traders.alice, 'sell', i), rest(traders.bob, 'buy', i)])
    }
    await postMarks(mesh, ['a'])
    const settled = await settle('a', 2)
    expect(settled.status, JSON.stringify(settled.body)).toBe(200)
    await waitFor(
      'the large checkpoint in force and compacted on every node',
      async () => {
        for (const node of mesh.ids) {
          const state = await checkpointOf(node)
          if (state.inForce?.epoch !== 2 || state.stepsHeld !== 0) return undefined
        }
        return true
      },
      { timeoutMs: 60_000 },
    )
    await mesh.converge('large checkpoint')
    const book = async (node: string) =>
      (await mesh.client(node).plain('GET', '/v1/book/BTC-PERP?levels=100')).body
    const onA = await book('a')
    expect([onA.bids.length, onA.asks.length]).toEqual([100, 100])
    for (const node of ['b', 'c'])
      expect(await book(node)).toMatchObject({ bids: onA.bids, asks: onA.asks })
  })
})
