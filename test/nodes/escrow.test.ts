// Escrow (I4) and exactly-once (I3) on three real nodes whose links run through TCP proxies:
// - a node without rights refuses a withdrawal 503 insufficient_local_rights and asks its peers;
//   the grant (the default policy's, weighted by recent demand) arrives and the retry goes through;
// - with c cut off, both sides keep withdrawing from one account and together never overdraw it;
// - one withdrawal id taken on both sides of the cut debits once after the heal, and the merge is
//   recorded as a finding with both copies as evidence;
// - the settlement node (a) pays out gains above its rights only while it reaches a majority: cut
//   off past the grace, it spends its own rights alone, says so in reads, and resumes at the heal.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { majorityLostGraceMs, markFutureMsMax } from '../../src/constants'
import type { ApiKey } from '../support/api-client'
import { micros } from './support/ledger-writes'
import { startMesh, waitFor, type Mesh } from './support/mesh'

describe('escrow of free collateral across nodes', () => {
  let mesh: Mesh
  const keys = new Map<string, ApiKey>()
  const figures: Record<string, number | string> = {}

  const deposit = (node: string, accountId: string, depositId: string, amount: string) =>
    mesh.client(node).admin('POST', '/v1/admin/deposits', {
      depositId,
      accountId,
      asset: 'USD',
      amount,
      signedAt: Date.now(),
    })

  const withdraw = (node: string, accountId: string, withdrawalId: string, amount: string) =>
    mesh.client(node).signed(keys.get(accountId)!, 'POST', '/v1/withdrawals', {
      withdrawalId,
      asset: 'USD',
      amount,
    })

  const account = async (node: string, accountId: string) => {
    const reply = await mesh.client(node).signed(keys.get(accountId)!, 'GET', '/v1/account')
    expect(reply.status).toBe(200)
    return reply.body
  }

  /** Every withdrawal in the account's ledger as one node sees it. */
  const withdrawals = async (node: string, accountId: string) => {
    const reply = await mesh
      .client(node)
      .signed(keys.get(accountId)!, 'GET', '/v1/ledger?limit=500')
    return (
      reply.body.entries as { id: string; kind: string; amount: string; node: string }[]
    ).filter((entry) => entry.kind === 'withdrawal')
  }

  const untilCutOff = (node: string, peers: string[]) =>
    waitFor(`${node} cut off`, async () => {
      const docs = [...(await mesh.digests(node)).values()]
      const up = docs.flatMap((doc) =>
        doc.links.filter((link) => link.state === 'up' && peers.includes(link.peer)),
      )
      return up.length === 0 ? true : undefined
    })

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b', 'c'], proxied: true })
    for (const accountId of ['granted', 'split', 'twice']) {
      keys.set(
        accountId,
        await mesh.client('a').fundedAccount(accountId, '0', ['read', 'withdraw']),
      )
    }
    await mesh.converge('accounts')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    console.log(`escrow figures: ${JSON.stringify(figures)}`)
    await mesh?.stop()
  })

  it('refuses past local rights, asks the peers, and serves the retry once granted', async () => {
    expect((await deposit('a', 'granted', 'd1', '100')).status).toBe(201)
    await mesh.converge('deposit at a')
    expect((await account('b', 'granted')).rights).toEqual({
      byNode: { a: '100' },
      usableHere: '0',
      majorityContact: true,
    })

    const refused = await withdraw('b', 'granted', 'w1', '30')
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('1')
    expect(refused.body.error).toMatchObject({
      code: 'insufficient_local_rights',
      retryable: true,
      executionStatus: 'not_executed',
    })
    const askedAt = performance.now()
    // Under the default policy (demand) a, which has spent none of the account lately, grants
    // b the shortfall and all the rest; b sees it once it has replicated back.
    await waitFor('b holds granted rights', async () => {
      const rights = (await account('b', 'granted')).rights
      return rights.usableHere === '100' ? rights : undefined
    })
    figures.grantMs = Math.round(performance.now() - askedAt)
    const retried = await withdraw('b', 'granted', 'w1', '30')
    expect(retried.status).toBe(201)
    await mesh.converge('after the granted withdrawal')
    expect((await account('c', 'granted')).rights.byNode).toEqual({ a: '0', b: '70' })
    expect((await account('c', 'granted')).collateral).toBe('70')
  })

  it('never overdraws an account both sides of a cut withdraw from', async () => {
    expect((await deposit('a', 'split', 'd-a', '60')).status).toBe(201)
    expect((await deposit('c', 'split', 'd-c', '60')).status).toBe(201)
    await mesh.converge('split deposits')

    mesh.isolate('c')
    await untilCutOff('c', ['a', 'b'])
    // Each side tries to take the whole 120, 10 at a time, alternating nodes on the majority side.
    const attempts = Array.from({ length: 12 }, (_, i) => i)
    const majority = await Promise.all(
      attempts.map((i) => withdraw(i % 2 === 0 ? 'a' : 'b', 'split', `maj-${i}`, '10')),
    )
    const minority = await Promise.all(
      attempts.map((i) => withdraw('c', 'split', `min-${i}`, '10')),
    )
    const approved = [...majority, ...minority].filter((reply) => reply.status === 201).length
    const refusals = [...majority, ...minority]
      .filter((reply) => reply.status !== 201)
      .map((reply) => reply.body.error.code)
    for (const code of refusals)
      expect(['insufficient_local_rights', 'insufficient_funds']).toContain(code)
    figures.splitApproved = approved
    figures.splitRefusedForRights = refusals.filter((c) => c === 'insufficient_local_rights').length

    mesh.healAll()
    await mesh.converge('after the split withdrawals')
    for (const node of mesh.ids) {
      const seen = await account(node, 'split')
      // Ledger amounts are signed from the account's side: a withdrawal is negative.
      const total = (await withdrawals(node, 'split')).reduce(
        (sum, w) => sum - micros(w.amount),
        0n,
      )
      // Never more than was deposited: the collateral stays at or above zero everywhere.
      expect(total).toBeLessThanOrEqual(micros('120'))
      expect(micros(seen.collateral)).toBeGreaterThanOrEqual(0n)
      expect(micros(seen.collateral)).toBe(micros('120') - total)
      for (const rights of Object.values(seen.rights.byNode as Record<string, string>)) {
        expect(micros(rights)).toBeGreaterThanOrEqual(0n)
      }
    }
  })

  it('debits a withdrawal id taken on both sides of a cut once, and records the merge', async () => {
    expect((await deposit('a', 'twice', 'd-a', '50')).status).toBe(201)
    expect((await deposit('c', 'twice', 'd-c', '50')).status).toBe(201)
    await mesh.converge('twice deposits')

    mesh.isolate('c')
    await untilCutOff('c', ['a', 'b'])
    const onA = await withdraw('a', 'twice', 'w-same', '20')
    const onC = await withdraw('c', 'twice', 'w-same', '20')
    expect([onA.status, onC.status]).toEqual([201, 201])

    mesh.healAll()
    await mesh.converge('after the doubled id')
    for (const node of mesh.ids) {
      expect((await withdrawals(node, 'twice')).map((w) => [w.id, w.amount])).toEqual([
        ['withdrawal/twice/w-same', '-20'],
      ])
      expect((await account(node, 'twice')).collateral).toBe('80')
    }
    const finding = await waitFor('the merge is recorded', async () => {
      for (const doc of (await mesh.client('b').admin('GET', '/v1/mesh/status')).body.documents) {
        const found = (doc.findings ?? []).find(
          (f: { id: string }) => f.id === 'merged/withdrawal/twice/w-same',
        )
        if (found !== undefined) return found
      }
      return undefined
    })
    expect(finding).toMatchObject({ kind: 'merged_copy', invariant: 'I3', accountId: 'twice' })
    expect(new Set([finding.evidence.kept.node, finding.evidence.dropped.node])).toEqual(
      new Set(['a', 'c']),
    )
    // A retry of the same id anywhere replays the surviving copy.
    const retried = await withdraw('b', 'twice', 'w-same', '20')
    expect(retried.status).toBe(201)
    expect(retried.headers.get('idempotent-replayed')).toBe('true')
  })

  it('stops paying gains above the rights on the settlement node cut off from a majority', async () => {
    for (const accountId of ['gainer', 'loser']) {
      keys.set(accountId, await mesh.client('a').fundedAccount(accountId, '10000'))
    }
    const mark = (price: string) =>
      mesh.client('a').admin('POST', '/v1/admin/marks', {
        instrument: 'BTC-PERP',
        price,
        // As fresh as the node accepts, so it stays fresh through the cut.
        ts: Date.now() + markFutureMsMax - 1_000,
      })
    const order = (accountId: string, side: 'buy' | 'sell', price: string) =>
      mesh.client('a').signed(keys.get(accountId)!, 'POST', '/v1/orders', {
        clientOrderId: `gains-${side}-${price}`,
        instrument: 'BTC-PERP',
        side,
        type: 'limit',
        price,
        size: '0.1',
      })
    // gainer buys 0.1 at 60000 and sells it at 70000: 1000 of realized gains, less fees, on top
    // of the 10000 its deposit gave a in rights; loser takes the other side both times.
    expect((await mark('60000')).status).toBe(200)
    expect((await order('loser', 'sell', '60000')).status).toBe(201)
    expect((await order('gainer', 'buy', '60000')).body).toMatchObject({ status: 'filled' })
    expect((await mark('70000')).status).toBe(200)
    expect((await order('gainer', 'sell', '70000')).status).toBe(201)
    expect((await order('loser', 'buy', '70000')).body).toMatchObject({ status: 'filled' })
    const before = await account('a', 'gainer')
    expect(micros(before.collateral)).toBeGreaterThan(micros('10900'))
    // Spendable at the settlement node: all of it, gains included; elsewhere none (no rights).
    expect(before.rights).toMatchObject({ usableHere: before.collateral, majorityContact: true })
    expect((await account('b', 'gainer')).rights.usableHere).toBe('0')

    const cutAt = performance.now()
    mesh.isolate('a')
    const cut = await waitFor(
      'a knows it is cut off from a majority',
      async () => {
        const rights = (await account('a', 'gainer')).rights
        return rights.majorityContact === false ? rights : undefined
      },
      { timeoutMs: majorityLostGraceMs + 30_000, intervalMs: 200 },
    )
    figures.majorityLostMs = Math.round(performance.now() - cutAt)
    expect(cut.usableHere).toBe('10000')
    const refused = await withdraw('a', 'gainer', 'w-gains', '10100')
    expect(refused.status).toBe(503)
    expect(refused.body.error).toMatchObject({
      code: 'insufficient_local_rights',
      executionStatus: 'not_executed',
    })

    mesh.healAll()
    await waitFor('a back in contact', async () => {
      const rights = (await account('a', 'gainer')).rights
      return rights.majorityContact === true ? rights : undefined
    })
    expect((await withdraw('a', 'gainer', 'w-gains', '10100')).status).toBe(201)
    await mesh.converge('after the gains withdrawal')
  })
})
