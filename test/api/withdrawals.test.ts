// Client withdrawals: approval within what is withdrawable, request ids (body withdrawalId or the
// Idempotency-Key header), replays and conflicts, and reading one's own withdrawals only.

import { describe, expect, it } from 'vitest'
import {
  accountOf,
  accountShardOf,
  api,
  expectReflects,
  expectRejectedUnchanged,
  newAccount,
  setUpApiTests,
  shardFingerprints,
  uid,
  withdraw,
} from './helpers'

setUpApiTests()

describe('approval', () => {
  it('approves a withdrawal and answers with what it reflects', async () => {
    const { accountId, key } = await newAccount('100')
    const withdrawalId = uid('wd')
    const before = Date.now()
    const reply = await api.signed(key, 'POST', '/v1/withdrawals', {
      withdrawalId,
      asset: 'USD',
      amount: '40.50',
    })
    expect(reply.status, JSON.stringify(reply.body)).toBe(201)
    expect(reply.headers.get('idempotent-replayed')).toBeNull()
    expect(reply.body).toEqual({
      withdrawalId,
      accountId,
      asset: 'USD',
      amount: '40.5',
      status: 'approved',
      createdAt: expect.any(Number),
      node: 'a',
      reflects: expect.any(Object),
    })
    expectReflects(reply.body.reflects, { from: before })
    const account = await accountOf(key)
    expect(account.collateral).toBe('59.5')
    expect(account.withdrawable).toBe('59.5')
  })

  it('refuses more than is withdrawable with 422 insufficient_funds and approves exactly that', async () => {
    const { key } = await newAccount('100.000001')
    const refused = await expectRejectedUnchanged(
      () =>
        api.signed(key, 'POST', '/v1/withdrawals', {
          withdrawalId: uid('wd'),
          asset: 'USD',
          amount: '100.000002',
        }),
      { status: 422, code: 'insufficient_funds' },
    )
    expect(refused.body.error.message).toContain('100.000001')
    expect((await accountOf(key)).withdrawable).toBe('100.000001')

    const exact = await withdraw(key, '100.000001')
    expect(exact.body.amount).toBe('100.000001')
    const emptied = await accountOf(key)
    expect(emptied.collateral).toBe('0')
    expect(emptied.withdrawable).toBe('0')

    await expectRejectedUnchanged(
      () =>
        api.signed(key, 'POST', '/v1/withdrawals', {
          withdrawalId: uid('wd'),
          asset: 'USD',
          amount: '0.000001',
        }),
      { status: 422, code: 'insufficient_funds' },
    )
  })

  it('refuses any withdrawal from an account without deposits', async () => {
    const { key } = await newAccount('0')
    await expectRejectedUnchanged(
      () =>
        api.signed(key, 'POST', '/v1/withdrawals', {
          withdrawalId: uid('wd'),
          asset: 'USD',
          amount: '1',
        }),
      { status: 422, code: 'insufficient_funds' },
    )
  })
})

describe('request ids', () => {
  it('replays the same withdrawalId and payload with Idempotent-Replayed, debiting once', async () => {
    const { key } = await newAccount('100')
    const body = { withdrawalId: uid('wd'), asset: 'USD', amount: '30' }
    const first = await api.signed(key, 'POST', '/v1/withdrawals', body)
    expect(first.status).toBe(201)
    const fingerprints = await shardFingerprints()

    const replay = await api.signed(key, 'POST', '/v1/withdrawals', body)
    expect(replay.status).toBe(201)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    const { reflects: firstReflects, ...stored } = first.body
    const { reflects: replayReflects, ...replayed } = replay.body
    expect(replayed).toEqual(stored)
    expect(accountShardOf(replayReflects)).toEqual(accountShardOf(firstReflects))

    // The same amount spelled differently is the same payload.
    const respelled = await api.signed(key, 'POST', '/v1/withdrawals', { ...body, amount: '30.00' })
    expect(respelled.status).toBe(201)
    expect(respelled.headers.get('idempotent-replayed')).toBe('true')
    expect(respelled.body.amount).toBe('30')

    expect(await shardFingerprints()).toEqual(fingerprints)
    expect((await accountOf(key)).collateral).toBe('70')
  })

  it('replays even after the funds are gone (the stored answer, not a new decision)', async () => {
    const { key } = await newAccount('50')
    const body = { withdrawalId: uid('wd'), asset: 'USD', amount: '50' }
    expect((await api.signed(key, 'POST', '/v1/withdrawals', body)).status).toBe(201)
    const replay = await api.signed(key, 'POST', '/v1/withdrawals', body)
    expect(replay.status).toBe(201)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect((await accountOf(key)).collateral).toBe('0')
  })

  it('refuses the same withdrawalId with another amount with 409 idempotency_conflict', async () => {
    const { key } = await newAccount('100')
    const body = { withdrawalId: uid('wd'), asset: 'USD', amount: '30' }
    expect((await api.signed(key, 'POST', '/v1/withdrawals', body)).status).toBe(201)
    await expectRejectedUnchanged(
      () => api.signed(key, 'POST', '/v1/withdrawals', { ...body, amount: '31' }),
      { status: 409, code: 'idempotency_conflict' },
    )
    // A conflict is a conflict even when the new amount exceeds what is withdrawable.
    await expectRejectedUnchanged(
      () => api.signed(key, 'POST', '/v1/withdrawals', { ...body, amount: '1000' }),
      { status: 409, code: 'idempotency_conflict' },
    )
    expect((await accountOf(key)).collateral).toBe('70')
  })

  it('takes the request id from the Idempotency-Key header alone', async () => {
    const { key } = await newAccount('100')
    const withdrawalId = uid('idem')
    const headers = { 'Idempotency-Key': withdrawalId }
    const first = await api.signed(
      key,
      'POST',
      '/v1/withdrawals',
      { asset: 'USD', amount: '10' },
      headers,
    )
    expect(first.status, JSON.stringify(first.body)).toBe(201)
    expect(first.body.withdrawalId).toBe(withdrawalId)

    const replay = await api.signed(
      key,
      'POST',
      '/v1/withdrawals',
      { asset: 'USD', amount: '10' },
      headers,
    )
    expect(replay.status).toBe(201)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    // The header and the body field name the same request id.
    const viaBody = await api.signed(key, 'POST', '/v1/withdrawals', {
      withdrawalId,
      asset: 'USD',
      amount: '10',
    })
    expect(viaBody.status).toBe(201)
    expect(viaBody.headers.get('idempotent-replayed')).toBe('true')
    await expectRejectedUnchanged(
      () => api.signed(key, 'POST', '/v1/withdrawals', { asset: 'USD', amount: '11' }, headers),
      { status: 409, code: 'idempotency_conflict' },
    )
    const read = await api.signed(key, 'GET', `/v1/withdrawals/${withdrawalId}`)
    expect(read.status).toBe(200)
    expect(read.body.amount).toBe('10')
    expect((await accountOf(key)).collateral).toBe('90')
  })

  it('accepts the header and body id when they agree', async () => {
    const { key } = await newAccount('100')
    const withdrawalId = uid('wd')
    const reply = await api.signed(
      key,
      'POST',
      '/v1/withdrawals',
      { withdrawalId, asset: 'USD', amount: '5' },
      { 'Idempotency-Key': withdrawalId },
    )
    expect(reply.status).toBe(201)
    expect(reply.body.withdrawalId).toBe(withdrawalId)
  })

  it('refuses a header and body id that disagree with 400 validation_failed', async () => {
    const { key } = await newAccount('100')
    await expectRejectedUnchanged(
      () =>
        api.signed(
          key,
          'POST',
          '/v1/withdrawals',
          { withdrawalId: uid('wd'), asset: 'USD', amount: '5' },
          { 'Idempotency-Key': uid('other') },
        ),
      { status: 400, code: 'validation_failed' },
    )
    expect((await accountOf(key)).collateral).toBe('100')
  })

  it('refuses a withdrawal without any request id with 400 missing_request_id', async () => {
    const { key } = await newAccount('100')
    await expectRejectedUnchanged(
      () => api.signed(key, 'POST', '/v1/withdrawals', { asset: 'USD', amount: '5' }),
      { status: 400, code: 'missing_request_id' },
    )
  })

  it('refuses a malformed Idempotency-Key with 400 validation_failed', async () => {
    const { key } = await newAccount('100')
    for (const idempotencyKey of ['has space', 'a.b', '-lead', 'x'.repeat(65)]) {
      await expectRejectedUnchanged(
        () =>
          api.signed(
            key,
            'POST',
            '/v1/withdrawals',
            { asset: 'USD', amount: '5' },
            { 'Idempotency-Key': idempotencyKey },
          ),
        { status: 400, code: 'validation_failed' },
      )
    }
  })

  it("request ids are per account: another account's id is a new withdrawal of one's own", async () => {
    const alice = await newAccount('100', undefined, 'alice')
    const bob = await newAccount('100', undefined, 'bob')
    const withdrawalId = uid('shared')
    await withdraw(alice.key, '10', withdrawalId)
    const bobs = await withdraw(bob.key, '20', withdrawalId)
    expect(bobs.headers.get('idempotent-replayed')).toBeNull()
    expect(bobs.body.accountId).toBe(bob.accountId)
    expect((await accountOf(alice.key)).collateral).toBe('90')
    expect((await accountOf(bob.key)).collateral).toBe('80')
  })
})

describe("another account's ids", () => {
  it('a withdrawal body cannot name an account: accountId is an unknown field (400)', async () => {
    const alice = await newAccount('100', undefined, 'alice')
    const mallory = await newAccount('100', undefined, 'mallory')
    await expectRejectedUnchanged(
      () =>
        api.signed(mallory.key, 'POST', '/v1/withdrawals', {
          withdrawalId: uid('wd'),
          accountId: alice.accountId,
          asset: 'USD',
          amount: '10',
        }),
      { status: 400, code: 'validation_failed' },
    )
    expect((await accountOf(alice.key)).collateral).toBe('100')
    expect((await accountOf(mallory.key)).collateral).toBe('100')
  })
})

describe('reading withdrawals', () => {
  it('reads back a withdrawal with what it reflects', async () => {
    const { accountId, key } = await newAccount('100')
    const written = await withdraw(key, '12.345678')
    const before = Date.now()
    const read = await api.signed(key, 'GET', `/v1/withdrawals/${written.body.withdrawalId}`)
    expect(read.status).toBe(200)
    const { reflects, ...withdrawal } = read.body
    const { reflects: _written, ...stored } = written.body
    expect(withdrawal).toEqual(stored)
    expect(withdrawal.accountId).toBe(accountId)
    expectReflects(reflects, { from: before })
    // Nothing was written since, so both answers reflect the same shard state.
    expect(accountShardOf(reflects)).toEqual(accountShardOf(written.body.reflects))
  })

  it('answers an unknown withdrawal id with 404', async () => {
    const { key } = await newAccount('100')
    await expectRejectedUnchanged(() => api.signed(key, 'GET', `/v1/withdrawals/${uid('none')}`), {
      status: 404,
      code: 'not_found',
    })
  })

  it("answers another account's withdrawal id with 404, as if it did not exist", async () => {
    const alice = await newAccount('100', undefined, 'alice')
    const mallory = await newAccount('100', undefined, 'mallory')
    const written = await withdraw(alice.key, '10')
    const probe = await expectRejectedUnchanged(
      () => api.signed(mallory.key, 'GET', `/v1/withdrawals/${written.body.withdrawalId}`),
      { status: 404, code: 'not_found' },
    )
    const unknown = await api.signed(mallory.key, 'GET', `/v1/withdrawals/${uid('none')}`)
    expect(unknown.status).toBe(404)
    expect(probe.body.error.message).not.toContain(alice.accountId)
  })

  it('refuses a malformed withdrawal id in the path with 400 validation_failed', async () => {
    const { key } = await newAccount('100')
    for (const id of ['a.b', '-x', 'x'.repeat(65), '%20x']) {
      await expectRejectedUnchanged(() => api.signed(key, 'GET', `/v1/withdrawals/${id}`), {
        status: 400,
        code: 'validation_failed',
      })
    }
  })
})
