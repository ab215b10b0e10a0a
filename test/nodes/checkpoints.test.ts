// Epoch checkpoints on three real nodes whose links run through TCP proxies: the writer (a, the
// settlement node) cuts a checkpoint while c is cut off; a and b acknowledge it but nothing is
// compacted while c has not; after the heal c acknowledges, every node compacts the folded
// history, balances and ledgers stay exact, and the documents converge.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { ApiKey } from '../support/api-client'
import { startMesh, waitFor, type Mesh } from './support/mesh'

describe('epoch checkpoints across three nodes', () => {
  let mesh: Mesh
  let key: ApiKey
  const accountId = 'folded'

  const checkpointOf = async (node: string, epoch: number | null = null, step = false) => {
    const reply = step
      ? await mesh.client(node).admin('POST', '/v1/admin/shards/0/checkpoint', { epoch })
      : await mesh.client(node).admin('GET', '/v1/admin/shards/0/checkpoint')
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    return reply.body
  }

  const ledgerOf = async (node: string) => {
    const reply = await mesh.client(node).signed(key, 'GET', '/v1/ledger?limit=500')
    expect(reply.status).toBe(200)
    return (reply.body.entries as { kind: string; amount: string }[]).map((e) => [e.kind, e.amount])
  }

  const collateralOf = async (node: string) =>
    (await mesh.client(node).signed(key, 'GET', '/v1/account')).body.collateral

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b', 'c'], shards: 1, proxied: true })
    key = await mesh.client('a').fundedAccount(accountId, '100', ['read', 'withdraw'])
    for (let i = 0; i < 10; i++) {
      const reply = await mesh.client('a').admin('POST', '/v1/admin/deposits', {
        depositId: `d${i}`,
        accountId,
        asset: 'USD',
        amount: '1',
        signedAt: Date.now(),
      })
      expect(reply.status, JSON.stringify(reply.body)).toBe(201)
    }
    await mesh.converge('history')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  it('compacts on every node only once every node acknowledged; balances are unchanged', async () => {
    const before = { collateral: await collateralOf('a'), ledger: await ledgerOf('a') }
    expect(before.collateral).toBe('110')
    expect(before.ledger).toHaveLength(11)

    mesh.isolate('c')
    const written = await checkpointOf('a', 1, true)
    expect(written.step).toMatchObject({ written: 1, acknowledged: 1 })
    await waitFor('b acknowledges', async () => {
      const state = await checkpointOf('a')
      return state.latest?.epoch === 1 && (await checkpointOf('b')).latest?.epoch === 1
        ? true
        : undefined
    })
    await checkpointOf('b', null, true)
    // c has not acknowledged: nothing is in force, nothing compacted, on either side.
    for (const node of ['a', 'b']) {
      expect((await checkpointOf(node)).inForce).toBeNull()
      expect(await ledgerOf(node)).toEqual(before.ledger)
    }
    // The writer takes no next cut while the last one waits for c.
    expect((await checkpointOf('a', 2, true)).step.written).toBeNull()

    mesh.healAll()
    await waitFor(
      'in force and compacted on every node',
      async () => {
        for (const node of mesh.ids) {
          const state = await checkpointOf(node)
          if (state.inForce?.epoch !== 1 || (await ledgerOf(node)).length !== 1) return undefined
        }
        return true
      },
      { timeoutMs: 60_000 },
    )
    for (const node of mesh.ids) {
      const state = await checkpointOf(node)
      expect(state.acks.map((ack: { node: string }) => ack.node).sort()).toEqual(['a', 'b', 'c'])
      expect(await collateralOf(node)).toBe(before.collateral)
      expect(await ledgerOf(node)).toEqual([['opening_balance', '110']])
    }
    await mesh.converge('compacted')

    // A retry of a folded deposit id replays on any node; a new deposit counts once.
    const retry = await mesh.client('b').admin('POST', '/v1/admin/deposits', {
      depositId: 'd0',
      accountId,
      asset: 'USD',
      amount: '1',
      signedAt: Date.now(),
    })
    expect(retry.status, JSON.stringify(retry.body)).toBe(201)
    expect(retry.headers.get('Idempotent-Replayed')).toBe('true')
    expect(retry.body).toMatchObject({ depositId: 'd0', node: 'a' })
    expect(await collateralOf('b')).toBe('110')
  })
})
