// F2 as a blackhole: c's links run through proxies that silently drop every byte (no reset, no close
// reaches either end), as a middlebox that lost its flow state would. Heartbeats must find the dead
// links; both sides keep serving; the redials made while the network swallows them must not hang
// forever, so that after the heal every node converges with every acknowledged write.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { depositAt } from './support/funding'
import { startMesh, waitFor, type Mesh } from './support/mesh'
import { checkLedgers, send, type Account, type Write } from './support/ledger-writes'

const writesPerSide = 20

describe('a blackholed node is detected and converges after the heal', () => {
  let mesh: Mesh
  const accounts = new Map<string, Account>()
  const writes: Write[] = []
  const figures: Record<string, number> = {}

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b', 'c'], proxied: true })
    await mesh.converge('start')
    for (const accountId of ['bh-ab', 'bh-c']) {
      const key = await mesh.client('a').fundedAccount(accountId, '1000', ['read', 'withdraw'])
      accounts.set(accountId, { accountId, key })
      writes.push({
        kind: 'deposit',
        accountId,
        requestId: `initial-${accountId}`,
        amount: '1000',
        outcome: 'acked',
      })
      // Escrow: a node withdraws within the rights its own deposits gave it; fund each node.
      for (const node of ['b', 'c']) {
        writes.push(
          await depositAt(mesh, node, { accountId, key }, '1000', `initial-${accountId}-${node}`),
        )
      }
    }
    await mesh.converge('accounts')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    console.log(`mesh-blackhole figures: ${JSON.stringify(figures)}`)
    await mesh?.stop()
  })

  const upLinks = async (id: string) =>
    [...(await mesh.digests(id)).values()].flatMap((doc) =>
      doc.links.filter((link) => link.state === 'up').map((link) => `${doc.doc}:${link.peer}`),
    )

  it('finds the dead links by heartbeat, redials after the heal and loses no write', async () => {
    const blackholedAt = performance.now()
    mesh.isolate('c', 'blackhole')
    // No socket closes: only the heartbeat timeout can tell either side.
    await waitFor('c drops its silent links', async () =>
      (await upLinks('c')).length === 0 ? true : undefined,
    )
    for (const id of ['a', 'b']) {
      await waitFor(`${id} drops its silent links to c`, async () =>
        (await upLinks(id)).some((link) => link.endsWith(':c')) ? undefined : true,
      )
    }
    figures.deadLinksFoundMs = Math.round(performance.now() - blackholedAt)

    for (let n = 0; n < writesPerSide; n++) {
      for (const [nodeId, accountId] of [
        ['a', 'bh-ab'],
        ['c', 'bh-c'],
      ] as const) {
        const write: Write = {
          kind: n % 2 === 0 ? 'deposit' : 'withdrawal',
          accountId,
          requestId: `${nodeId}-${n}`,
          amount: `${n + 1}.5`,
        }
        writes.push(write)
        await send(mesh.client(nodeId), accounts.get(accountId)!, write)
        expect(write.outcome, `${write.requestId}: ${write.status}`).toBe('acked')
      }
    }
    // a and b have redialled c into the blackhole: those dials get no answer, ever.
    await waitFor('a and b redial into the blackhole', async () =>
      ['a', 'b'].every((id) => mesh.proxy(id, 'c').stats().swallowed > 0) ? true : undefined,
    )

    const healedAt = performance.now()
    mesh.healAll()
    figures.blackholeMs = Math.round(healedAt - blackholedAt)
    figures.convergeAfterHealMs = await mesh.converge('heal after a blackhole', {
      timeoutMs: 20_000,
    })
    for (const id of mesh.ids) {
      const check = await checkLedgers(mesh.client(id), [...accounts.values()], writes)
      expect(check.problems, `node ${id}`).toEqual([])
    }
  })
})
