// Markets share the durable core: a market replica whose newest stored step is damaged keeps what
// verifies, refuses to serve its book and to take orders while it repairs, and once a peer's state
// is in (applied here by hand: this runtime node has no peers) it reloads, replays every step
// through the matcher, reaches the stored decisions and matches again.

import { evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as durable from '../../src/replica/durable-doc'
import type { MarketReplica } from '../../src/replica/market-replica'
import { marketChecks } from '../../src/state/remote-checks'
import { api, marketReplica, setUpApiTests, type ApiKey } from '../api/helpers'
import { operatorCheck } from './helpers'

setUpApiTests()

const symbol = 'BTC-PERP'
const order = (key: ApiKey, body: Record<string, unknown>) =>
  api.signed(key, 'POST', '/v1/orders', { instrument: symbol, type: 'limit', ...body })

/** Every row of the market's log, bytes included. */
const storedLog = (stub: DurableObjectStub<MarketReplica>) =>
  runInDurableObject(stub, (_instance: MarketReplica, state) =>
    state.storage.sql
      .exec<{ seq: number; body: ArrayBuffer }>('SELECT seq, body FROM update_log ORDER BY seq')
      .toArray()
      .map((row) => ({ seq: row.seq, body: new Uint8Array(row.body) })),
  )

describe('a damaged market', () => {
  it('refuses while repairing, then replays its steps and matches again', async () => {
    const alice = await api.fundedAccount('alice-mr', '100000')
    const bob = await api.fundedAccount('bob-mr', '100000')
    expect(
      (
        await api.admin('POST', '/v1/admin/marks', {
          instrument: symbol,
          price: '60000',
          ts: Date.now(),
        })
      ).status,
    ).toBe(200)
    const sell = { side: 'sell', price: '60000', size: '0.5' }
    expect((await order(bob, { clientOrderId: 'b1', ...sell })).status).toBe(201)
    const buy = { clientOrderId: 'a1', side: 'buy', price: '60000', size: '0.2' }
    expect((await order(alice, buy)).body).toMatchObject({ status: 'filled' })
    const rest = { clientOrderId: 'b2', side: 'sell', price: '61000', size: '0.3' }
    expect((await order(bob, rest)).status).toBe(201)
    const book = (await api.plain('GET', `/v1/book/${symbol}`)).body
    const stub = marketReplica(symbol)
    const before = await stub.status()
    const rows = await storedLog(stub)

    // The newest step's update zeroed, as the partition harness's `corrupt` does.
    const newest = rows.at(-1)!
    await runInDurableObject(stub, (_instance: MarketReplica, state) => {
      state.storage.sql.exec(
        'UPDATE update_log SET body = zeroblob(length(body)) WHERE seq = ?',
        newest.seq,
      )
    })
    await evictDurableObject(stub)
    expect((await stub.status()).repair).toMatchObject({
      state: 'repairing',
      damage: { where: 'update_log', seq: newest.seq },
    })
    const refused = await api.plain('GET', `/v1/book/${symbol}`)
    expect(refused.status).toBe(503)
    expect(refused.body.error).toMatchObject({ code: 'shard_damaged', retryable: true })
    const refusedOrder = await order(alice, {
      clientOrderId: 'a2',
      side: 'buy',
      price: '61000',
      size: '0.3',
    })
    expect(refusedOrder.status).toBe(503)

    // A peer holding every step answers the repairing market's state vector.
    const peer = new Y.Doc()
    for (const row of rows) Y.applyUpdate(peer, row.body)
    const report = await runInDurableObject(stub, (_instance: MarketReplica, state) => {
      const held = durable.open(
        before.shard,
        state.storage,
        () => undefined,
        marketChecks(operatorCheck(), ['a', 'b']),
      )
      held.peersToRepair = 1
      if (!held.state.ok) throw new Error('the repairing market is loaded')
      durable.applyRemote(
        held,
        'peer:b',
        Y.encodeStateAsUpdate(peer, Y.encodeStateVector(held.state.doc)),
      )
      return durable.peerSynced(held, 'b')
    })
    expect(report).toMatchObject({ peers: ['b'], outcomes: { undecodable: 1 } })
    await evictDurableObject(stub)

    // Reloaded, it replayed every step and reached the stored decisions.
    const after = await stub.status()
    expect(after).toMatchObject({
      damage: null,
      divergence: null,
      nextSeq: before.nextSeq,
      contentDigest: before.contentDigest,
      repair: { state: 'repaired', peers: ['b'] },
    })
    expect((await api.plain('GET', `/v1/book/${symbol}`)).body).toEqual({
      ...book,
      reflects: expect.anything(),
    })
    const retried = await order(alice, {
      clientOrderId: 'a2',
      side: 'buy',
      price: '61000',
      size: '0.3',
    })
    expect(retried.body).toMatchObject({ status: 'filled', filledSize: '0.3' })
  })
})
