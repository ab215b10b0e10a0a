// The client SDK against a real two-node mesh: with node a stopped, a deposit and a withdrawal
// sent to [a, b] fail over to b with the request ids they were first sent with, and each takes
// effect once: after a restarts and the mesh converges, both nodes' ledgers hold one entry each,
// and sending the same calls again replays them.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClient, type ApiKey } from '../../src/client'
import { depositAt } from './support/funding'
import { startMesh, type Mesh } from './support/mesh'

describe('the SDK fails over from a stopped node with the same request id', () => {
  let mesh: Mesh
  let key: ApiKey
  const accountId = 'sdk-failover'

  /** A client that prefers node a and falls back to b. */
  const clientOf = () =>
    createClient({
      nodes: [mesh.node('a').url(), mesh.node('b').url()],
      adminToken: mesh.adminToken,
      apiKey: key,
      attemptTimeoutMs: 5_000,
    })

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b'] })
    await mesh.converge('start')
    key = await mesh.client('a').fundedAccount(accountId, '0', ['read', 'withdraw'])
    // Rights to withdraw at b come from a deposit recorded at b (escrow).
    await depositAt(mesh, 'b', { accountId, key }, '100', 'sdk-at-b')
    await mesh.converge('funded')
    await mesh.node('a').kill()
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  it('deposits and withdraws through b, each once', async () => {
    const deposit = await clientOf().admin.deposit({
      accountId,
      amount: '40',
      depositId: 'sdk-dep',
    })
    expect(deposit).toEqual(
      expect.objectContaining({ node: mesh.node('b').url(), attempts: 2, replayed: false }),
    )
    expect(deposit.value).toEqual(expect.objectContaining({ depositId: 'sdk-dep', node: 'b' }))

    const withdrawal = await clientOf().trading.withdraw({ amount: '30', withdrawalId: 'sdk-wd' })
    expect(withdrawal).toEqual(expect.objectContaining({ node: mesh.node('b').url(), attempts: 2 }))
    expect(withdrawal.value.reflects.node).toBe('b')

    // The same calls again (a retry by the application): replayed, nothing new written.
    const again = clientOf()
    const replayedDeposit = await again.admin.deposit({
      accountId,
      amount: '40',
      depositId: 'sdk-dep',
    })
    const replayedWithdrawal = await again.trading.withdraw({
      amount: '30',
      withdrawalId: 'sdk-wd',
    })
    expect(replayedDeposit.replayed).toBe(true)
    expect(replayedWithdrawal.replayed).toBe(true)
    expect(replayedWithdrawal.value.createdAt).toBe(withdrawal.value.createdAt)

    await mesh.node('a').restart()
    await mesh.converge('a restarted')
    for (const id of ['a', 'b']) {
      const client = createClient({ nodes: [mesh.node(id).url()], apiKey: key })
      const ledger = await client.trading.ledger({ limit: 100 })
      const ids = ledger.value.entries.map((entry) => entry.id)
      expect(
        ids.filter((entry) => entry.endsWith('/sdk-dep')),
        id,
      ).toHaveLength(1)
      expect(
        ids.filter((entry) => entry.endsWith('/sdk-wd')),
        id,
      ).toHaveLength(1)
      const account = await client.trading.account()
      expect(account.value.collateral, id).toBe('110')
      expect(account.value.reflects.node).toBe(id)
    }
  })
})
