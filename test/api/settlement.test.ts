// The settlement reconciler through the operator's API, against numbers worked by hand
// (BTC-PERP: 10% / 5% margin, 2 bp maker and 5 bp taker fees, 1% liquidation fee, funding capped
// at 0.05% an epoch): an account below maintenance margin is liquidated once, at the mark,
// against the insurance fund; open positions pay or receive funding; settling the epoch again
// answers the same settlement; the reconciler's audits find nothing in what it did.

import { beforeAll, describe, expect, it } from 'vitest'
import { api, newAccount, setUpApiTests, type ApiKey } from './helpers'

let markTs = Date.now()
const mark = (price: string) =>
  api.admin('POST', '/v1/admin/marks', { instrument: 'BTC-PERP', price, ts: ++markTs })
const settle = (epoch: number) =>
  api.admin('POST', '/v1/admin/settlements', { instrument: 'BTC-PERP', epoch })
const limit = (clientOrderId: string, side: string, price: string, size: string) => ({
  clientOrderId,
  instrument: 'BTC-PERP',
  side,
  type: 'limit',
  price,
  size,
})

setUpApiTests()

describe('settlement', () => {
  let alice: { accountId: string; key: ApiKey }
  let bob: { accountId: string; key: ApiKey }
  let carol: { accountId: string; key: ApiKey }
  const account = async (who: { key: ApiKey }) =>
    (await api.signed(who.key, 'GET', '/v1/account')).body

  beforeAll(async () => {
    alice = await newAccount('1000', ['read', 'trade'], 'alice')
    bob = await newAccount('100000', ['read', 'trade'], 'bob')
    carol = await newAccount('100000', ['read', 'trade'], 'carol')
    expect((await mark('60000')).status).toBe(200)
    const place = async (who: { key: ApiKey }, body: object) => {
      const reply = await api.signed(who.key, 'POST', '/v1/orders', body)
      expect(reply.status, JSON.stringify(reply.body)).toBe(201)
    }
    // Alice goes long 0.1 at 60000 from bob (taker fee 3, maker fee 1.2).
    await place(bob, limit('b1', 'sell', '60000', '0.1'))
    await place(alice, { ...limit('a1', 'buy', '60000', '0.1'), timeInForce: 'IOC' })
  })

  it('refuses an unknown instrument and a malformed epoch, settling nothing', async () => {
    const unknown = await api.admin('POST', '/v1/admin/settlements', {
      instrument: 'DOGE-PERP',
      epoch: 1,
    })
    expect(unknown.status).toBe(400)
    expect(unknown.body.error.code).toBe('unknown_instrument')
    const fractional = await api.admin('POST', '/v1/admin/settlements', {
      instrument: 'BTC-PERP',
      epoch: 1.5,
    })
    expect(fractional.status).toBe(400)
    expect(fractional.body.error.code).toBe('validation_failed')
  })

  it('liquidates an account below maintenance margin, and pays funding, once', async () => {
    // At 52500 alice's equity is 997 − 750 = 247, under her 262.5 maintenance margin.
    expect((await mark('52500')).status).toBe(200)
    expect(await account(alice)).toMatchObject({ equity: '247', maintenanceMargin: '262.5' })
    // Carol quotes around the mark: mid 52750 is 0.48% over it, so funding hits the 0.05% cap.
    for (const [id, side, price] of [
      ['c1', 'buy', '52000'],
      ['c2', 'sell', '53500'],
    ]) {
      const reply = await api.signed(
        carol.key,
        'POST',
        '/v1/orders',
        limit(id!, side!, price!, '0.01'),
      )
      expect(reply.status).toBe(201)
    }

    const settled = await settle(7)
    expect(settled.status, JSON.stringify(settled.body)).toBe(200)
    expect(settled.body).toMatchObject({
      instrument: 'BTC-PERP',
      epoch: 7,
      mark: '52500',
      fundingRate: '0.0005',
      liquidated: [alice.accountId],
      fundingPayments: 2, // the fund (now long 0.1) pays bob (short 0.1) 2.625
    })

    // Alice: closed at the mark (−750 realized) and charged 1% of 5250 into the fund.
    const liquidated = await account(alice)
    expect(liquidated).toMatchObject({
      collateral: '194.5',
      unrealizedPnl: '0',
      initialMargin: '0',
      maintenanceMargin: '0',
    })
    const positions = await api.signed(alice.key, 'GET', '/v1/positions')
    expect(positions.body.positions.filter((p: { size: string }) => p.size !== '0')).toEqual([])
    // Bob: 100000 − 1.2 maker fee + 2.625 funding received; still short 0.1.
    expect((await account(bob)).collateral).toBe('100001.425')
    const ledger = await api.signed(bob.key, 'GET', '/v1/ledger')
    expect(ledger.body.entries.filter((e: { kind: string }) => e.kind === 'funding')).toHaveLength(
      1,
    )

    // The same epoch again: the same settlement, nothing taken twice.
    const again = await settle(7)
    expect(again.status).toBe(200)
    expect(again.body).toEqual(settled.body)
    expect((await account(alice)).collateral).toBe('194.5')
    expect((await account(bob)).collateral).toBe('100001.425')

    // The settlement's audits find nothing: fills, the liquidation and funding keep I3-I7.
    const audited = await api.admin('POST', '/v1/admin/audits')
    expect(audited.status).toBe(200)
    const found = audited.body.documents.flatMap((d: { violations: unknown[] }) => d.violations)
    expect(found).toEqual([])
  })

  it('refuses to settle on a stale or missing mark', async () => {
    const stale = await api.admin('POST', '/v1/admin/marks', {
      instrument: 'BTC-PERP',
      price: '52500',
      ts: Date.now() - 3_600_000,
    })
    expect(stale.status).toBe(200)
    // An older mark is ignored, so the latest is still fresh: settling works.
    expect((await settle(8)).status).toBe(200)
    const noMark = await api.admin('POST', '/v1/admin/settlements', {
      instrument: 'ETH-PERP',
      epoch: 8,
    })
    expect(noMark.status).toBe(503)
    expect(noMark.body.error).toMatchObject({ code: 'mark_unavailable', retryable: true })
  })
})
