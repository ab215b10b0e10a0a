// The reconciler's audits inside the Workers runtime, against violations planted the way a
// hostile peer would: a crafted Yjs update taken as a peer's update is (remote checks, durable
// apply; here through the snapshot restore route, which takes bytes exactly so). Entries that
// pass every per-entry check still break the invariants the audits fold: a withdrawal whose cash
// goes to the fee account (I6), under another request's id (I3), approved by a node that holds
// no rights (I4); a grant of rights the granting node never had (I4); an order the matcher takes
// a second time (I3, I7). Each is recorded once as a finding with its evidence, shown in
// GET /v1/mesh/status, repairs nothing, and halts the affected account's withdrawals while
// another account of the same documents withdraws.

import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { readCatalog } from '../../src/instruments'
import { checksum } from '../../src/replica/checksum'
import * as market from '../../src/state/market-doc'
import * as marketState from '../../src/state/market-state'
import { shardOf } from '../../src/state/shard-of'
import {
  accountOf,
  api,
  base,
  bindings,
  expectError,
  fetcher,
  setUpApiTests,
  shardCount,
  uid,
} from './helpers'

setUpApiTests()

const auth = { authorization: `Bearer ${bindings.ADMIN_TOKEN}` }
const btc = readCatalog(bindings.INSTRUMENTS).get('BTC-PERP')!

/** Applies `forge`'s change to a copy of document `doc` (`shard/<n>`, `market/<symbol>`). */
async function plant(doc: string, forge: (copy: Y.Doc) => void) {
  const exported = await fetcher(`${base}/v1/admin/snapshots/${doc}`, { headers: auth })
  expect(exported.status).toBe(200)
  const copy = new Y.Doc()
  Y.applyUpdate(copy, new Uint8Array(await exported.arrayBuffer()))
  const vector = Y.encodeStateVector(copy)
  forge(copy)
  const update = Y.encodeStateAsUpdate(copy, vector)
  const restored = await fetcher(`${base}/v1/admin/snapshots/${doc}`, {
    method: 'POST',
    headers: {
      ...auth,
      'content-type': 'application/octet-stream',
      'x-snapshot-checksum': checksum(update),
    },
    body: update,
  })
  expect(restored.status, await restored.clone().text()).toBe(200)
}

/** The findings `GET /v1/mesh/status` shows for document `doc`. */
async function findingsOf(doc: string): Promise<any[]> {
  const status = await api.admin('GET', '/v1/mesh/status')
  expect(status.status).toBe(200)
  return status.body.documents.find((d: any) => d.shard === `a/${doc}`).findings
}

/** Two funded accounts of one shard. */
async function neighbours(prefix: string) {
  const ids = Array.from({ length: 64 }, () => uid(prefix))
  const shard = shardOf(ids[0]!, shardCount)
  const [victim, other] = ids.filter((id) => shardOf(id, shardCount) === shard)
  const keys = [await api.fundedAccount(victim!, '100'), await api.fundedAccount(other!, '100')]
  return {
    doc: `shard/${shard}`,
    victim: { accountId: victim!, key: keys[0]! },
    other: { accountId: other!, key: keys[1]! },
  }
}

const withdraw = (key: any, amount: string) =>
  api.signed(key, 'POST', '/v1/withdrawals', { withdrawalId: uid('wd'), asset: 'USD', amount })

describe("the reconciler's audits", () => {
  it('records cash moved outside deposits and withdrawals, a stray id and rights never given, and halts that account only', async () => {
    const { doc, victim, other } = await neighbours('cash')
    const planted = {
      id: `withdrawal/${victim.accountId}/planted`,
      kind: 'withdrawal',
      from: victim.accountId,
      to: '@fees',
      amount: '30',
      ts: Date.now(),
      node: 'z',
      requestDigest: 'planted',
    }
    const stray = {
      ...planted,
      id: `withdrawal/${other.accountId}x/stray`,
      to: '@external',
      amount: '1',
      node: 'a',
    }
    await plant(doc, (copy) => {
      copy.getMap('transfers').set(planted.id, planted)
      copy.getMap('transfers').set(stray.id, stray)
    })
    const audited = await api.admin('POST', '/v1/admin/audits')
    expect(audited.status).toBe(200)
    const report = audited.body.documents.find((d: any) => d.doc === `a/${doc}`)
    expect(report.judged).toBe(true)
    const shown = await findingsOf(doc)
    const scope = `violation/I6/${doc}`
    expect(shown).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: `${scope}/${planted.id}/${victim.accountId}`,
          kind: 'violation',
          invariant: 'I6',
          accountId: victim.accountId,
          node: 'a',
          evidence: expect.objectContaining({ transfer: planted }),
        }),
        expect.objectContaining({
          id: `violation/I3/${doc}/${stray.id}/${victim.accountId}`,
          evidence: { transfer: stray },
        }),
        expect.objectContaining({
          id: `violation/I4/${doc}/${victim.accountId}/z/${victim.accountId}`,
          evidence: expect.objectContaining({
            rights: '-30',
            withdrawals: [{ id: planted.id, amount: '30' }],
          }),
        }),
      ]),
    )
    // The metrics and the dashboard count them by kind and invariant.
    const metrics = await api.admin('GET', '/metrics')
    expect(metrics.body).toMatch(
      /clearmesh_findings\{[^}]*kind="violation"[^}]*invariant="I4"[^}]*\} [1-9]/,
    )
    const dashboard = await api.admin('GET', '/v1/admin/dashboard')
    expect(JSON.stringify(dashboard.body)).toContain(`violation/I6/${doc}/${planted.id}`)
    // Auditing again records nothing new: each finding is one entry.
    await api.admin('POST', '/v1/admin/audits')
    expect((await findingsOf(doc)).length).toBe(shown.length)
    // Nothing repaired: the planted entries still count.
    expect((await accountOf(victim.key)).collateral).toBe('69')
    expectError(await withdraw(victim.key, '1'), {
      status: 503,
      code: 'withdrawals_halted',
      retryable: true,
    })
    expect((await withdraw(other.key, '10')).status).toBe(201)
  })

  it('records a grant of rights its node never held', async () => {
    const { doc, victim, other } = await neighbours('grant')
    const grant = {
      id: `grant/${victim.accountId}/planted`,
      accountId: victim.accountId,
      from: 'y',
      to: 'a',
      amount: '50',
      ts: Date.now(),
    }
    await plant(doc, (copy) => copy.getMap('grants').set(grant.id, grant))
    await api.admin('POST', '/v1/admin/audits')
    const finding = (await findingsOf(doc)).find(
      (f) => f.id === `violation/I4/${doc}/${victim.accountId}/y/${victim.accountId}`,
    )
    expect(finding).toMatchObject({
      accountId: victim.accountId,
      message: `node y spent rights to ${victim.accountId}'s cash it never received: its rights fold below zero`,
      evidence: { rights: '-50', grants: [{ id: grant.id, to: 'a', amount: '50' }] },
    })
    expectError(await withdraw(victim.key, '1'), {
      status: 503,
      code: 'withdrawals_halted',
      retryable: true,
    })
    expect((await withdraw(other.key, '10')).status).toBe(201)
  })

  it('records an order the matcher took twice when the epoch settles, and halts its account', async () => {
    const maker = await api.fundedAccount(uid('maker'), '100000')
    const makerId = (await accountOf(maker)).accountId as string
    const taker = await api.fundedAccount(uid('taker'), '100000')
    const markTs = Date.now()
    expect(
      (
        await api.admin('POST', '/v1/admin/marks', {
          instrument: 'BTC-PERP',
          price: '60000',
          ts: markTs,
        })
      ).status,
    ).toBe(200)
    const order = (side: string, clientOrderId: string, timeInForce = 'GTC') => ({
      clientOrderId,
      instrument: 'BTC-PERP',
      side,
      type: 'limit',
      price: '60000',
      size: '0.001',
      timeInForce,
    })
    expect((await api.signed(maker, 'POST', '/v1/orders', order('sell', 'm1'))).status).toBe(201)
    expect((await api.signed(taker, 'POST', '/v1/orders', order('buy', 't1', 'IOC'))).status).toBe(
      201,
    )
    // The maker's filled order taken again: the step the matcher itself would write for it, so
    // the market replays it without diverging; only the audit sees the order id twice.
    let duplicated = ''
    await plant('market/BTC-PERP', (copy) => {
      const state = marketState.replay(btc, copy, { retentionMs: 0, members: [] })
      const first = [...state.orders.values()].find((view) => view.input.accountId === makerId)!
      duplicated = first.input.orderId
      const step = marketState.take(
        state,
        { ...first.input, price: '61000', receivedAt: Date.now() },
        { ts: Date.now(), node: 'z' },
        state.term,
      )
      market.steps(copy).set(market.stepKeyOf(state.term, step.seq), step)
    })
    const settled = await api.admin('POST', '/v1/admin/settlements', {
      instrument: 'BTC-PERP',
      epoch: 7,
    })
    expect(settled.status, JSON.stringify(settled.body)).toBe(200)
    const shown = await findingsOf('market/BTC-PERP')
    expect(shown).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: `violation/I3/market/BTC-PERP/${duplicated}/${makerId}`,
          accountId: makerId,
          evidence: expect.objectContaining({
            order: expect.objectContaining({ orderId: duplicated }),
          }),
        }),
        expect.objectContaining({
          id: `violation/I7/market/BTC-PERP/${duplicated}/${makerId}`,
          message: expect.stringMatching(/accepted after it was filled/),
        }),
      ]),
    )
    // Nothing else: the genuine fill, its fees and realized PnL pass every audit.
    expect(
      shown
        .filter((f: any) => f.kind === 'violation')
        .map((f: any) => f.invariant)
        .sort(),
    ).toEqual(['I3', 'I7'])
    expectError(await withdraw(maker, '1'), {
      status: 503,
      code: 'withdrawals_halted',
      retryable: true,
    })
    expect((await withdraw(taker, '10')).status).toBe(201)
  })
})
