// Operator API: accounts, API keys, deposits and revocation behind the admin bearer token.

import { describe, expect, it } from 'vitest'
import { signRequest } from '../../src/api/signing'
import {
  accountOf,
  api,
  bindings,
  expectRejectedUnchanged,
  newAccount,
  newKey,
  sendRaw,
  setUpApiTests,
  shardFingerprints,
  uid,
} from './helpers'

setUpApiTests()

describe('admin token', () => {
  const routes: [string, string, unknown][] = [
    ['POST', '/v1/admin/accounts', { accountId: 'never-created' }],
    ['POST', '/v1/admin/accounts/never-created/keys', { scopes: ['read'] }],
    [
      'POST',
      '/v1/admin/deposits',
      { depositId: 'd', accountId: 'x', asset: 'USD', amount: '1', signedAt: Date.now() },
    ],
    ['DELETE', '/v1/admin/keys/never-created.00000000000000000000', undefined],
    ['GET', '/v1/admin/shards', undefined],
  ]

  it.each(routes)(
    '%s %s without a token is 401 missing_admin_token',
    async (method, path, body) => {
      await expectRejectedUnchanged(() => api.plain(method, path, body), {
        status: 401,
        code: 'missing_admin_token',
      })
    },
  )

  it.each(routes)(
    '%s %s with a wrong token is 401 invalid_admin_token',
    async (method, path, body) => {
      await expectRejectedUnchanged(
        () => api.plain(method, path, body, { authorization: `Bearer ${bindings.ADMIN_TOKEN}x` }),
        { status: 401, code: 'invalid_admin_token' },
      )
    },
  )

  it('refuses a token in another scheme, an empty bearer and a token prefix', async () => {
    for (const authorization of [
      `Basic ${bindings.ADMIN_TOKEN}`,
      'Bearer ',
      bindings.ADMIN_TOKEN,
    ]) {
      await expectRejectedUnchanged(
        () =>
          api.plain(
            'POST',
            '/v1/admin/accounts',
            { accountId: 'never-created' },
            { authorization },
          ),
        { status: 401, code: 'missing_admin_token' },
      )
    }
    await expectRejectedUnchanged(
      () =>
        api.plain(
          'POST',
          '/v1/admin/accounts',
          { accountId: 'never-created' },
          { authorization: `Bearer ${bindings.ADMIN_TOKEN.slice(0, -1)}` },
        ),
      { status: 401, code: 'invalid_admin_token' },
    )
  })

  it('an API key signature does not open admin routes', async () => {
    const { key } = await newAccount('0')
    const path = '/v1/admin/shards'
    const headers = await signRequest(key, { method: 'GET', pathWithQuery: path, body: '' })
    await expectRejectedUnchanged(() => sendRaw('GET', path, headers), {
      status: 401,
      code: 'missing_admin_token',
    })
  })
})

describe('accounts', () => {
  it('creates an account and replays an existing id', async () => {
    const accountId = uid('acct')
    const before = Date.now()
    const created = await api.admin('POST', '/v1/admin/accounts', { accountId })
    expect(created.status).toBe(201)
    expect(created.body).toEqual({ accountId, createdAt: expect.any(Number), node: 'a' })
    expect(created.body.createdAt).toBeGreaterThanOrEqual(before)
    expect(created.headers.get('idempotent-replayed')).toBeNull()

    const fingerprints = await shardFingerprints()
    const again = await api.admin('POST', '/v1/admin/accounts', { accountId })
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.body).toEqual(created.body)
    expect(await shardFingerprints()).toEqual(fingerprints)
  })

  it('generates an id when none is given', async () => {
    const created = await api.admin('POST', '/v1/admin/accounts', {})
    expect(created.status).toBe(201)
    expect(created.body.accountId).toMatch(/^acc-[0-9a-f]{16}$/)
  })

  it.each([
    ['id as a number', { accountId: 42 }],
    ['empty id', { accountId: '' }],
    ['id with a dot', { accountId: 'a.b' }],
    ['id with a space', { accountId: 'a b' }],
    ['id starting with a dash', { accountId: '-a' }],
    ['id over 64 characters', { accountId: 'a'.repeat(65) }],
    ['unknown field', { accountId: 'fine', owner: 'me' }],
    ['an array body', [{ accountId: 'fine' }]],
    ['a null body', null],
  ])('refuses %s with 400 validation_failed', async (_, body) => {
    const reply = await expectRejectedUnchanged(
      () => api.admin('POST', '/v1/admin/accounts', JSON.stringify(body)),
      { status: 400, code: 'validation_failed' },
    )
    expect(reply.body.error.issues).toEqual(expect.any(Array))
    expect(reply.body.error.issues.length).toBeGreaterThan(0)
  })

  it('refuses malformed JSON with 400 malformed_json', async () => {
    await expectRejectedUnchanged(
      () => api.admin('POST', '/v1/admin/accounts', '{"accountId": "x",'),
      { status: 400, code: 'malformed_json' },
    )
  })
})

describe('API keys', () => {
  it('creates a key with scopes and returns its secret once', async () => {
    const { accountId } = await newAccount('0')
    const created = await api.admin('POST', `/v1/admin/accounts/${accountId}/keys`, {
      scopes: ['read', 'withdraw'],
      label: 'desk 1',
    })
    expect(created.status).toBe(201)
    expect(created.body).toEqual({
      keyId: expect.stringMatching(new RegExp(`^${accountId}\\.[0-9a-f]{20}$`)),
      secret: expect.stringMatching(/^[0-9a-f]{64}$/),
      accountId,
      scopes: ['read', 'withdraw'],
      label: 'desk 1',
      rateLimit: null,
      createdAt: expect.any(Number),
    })
    // The key signs requests at once.
    const key = { keyId: created.body.keyId, secret: created.body.secret }
    expect((await accountOf(key)).accountId).toBe(accountId)
    // Two keys of one account are distinct and have distinct secrets.
    const other = await newKey(accountId, ['read'])
    expect(other.keyId).not.toBe(key.keyId)
    expect(other.secret).not.toBe(key.secret)
  })

  it('refuses a key for an unknown account with 404 account_not_found', async () => {
    await expectRejectedUnchanged(
      () => api.admin('POST', `/v1/admin/accounts/${uid('ghost')}/keys`, { scopes: ['read'] }),
      { status: 404, code: 'account_not_found' },
    )
  })

  it.each([
    ['no scopes', { scopes: [] }],
    ['a missing scopes field', {}],
    ['an unknown scope', { scopes: ['admin'] }],
    ['scopes as a string', { scopes: 'read' }],
    ['an unknown field', { scopes: ['read'], expires: 1 }],
    ['a label over 64 characters', { scopes: ['read'], label: 'x'.repeat(65) }],
  ])('refuses %s with 400 validation_failed', async (_, body) => {
    const { accountId } = await newAccount('0')
    await expectRejectedUnchanged(
      () => api.admin('POST', `/v1/admin/accounts/${accountId}/keys`, body),
      { status: 400, code: 'validation_failed' },
    )
  })

  it('refuses a malformed account id in the path with 400', async () => {
    await expectRejectedUnchanged(
      () => api.admin('POST', '/v1/admin/accounts/bad.id/keys', { scopes: ['read'] }),
      { status: 400, code: 'validation_failed' },
    )
  })
})

describe('revoking keys', () => {
  it('revokes a key; revoking twice replays the first revocation', async () => {
    const { key } = await newAccount('10')
    const revoked = await api.admin('DELETE', `/v1/admin/keys/${key.keyId}`)
    expect(revoked.status).toBe(200)
    expect(revoked.body).toEqual({ keyId: key.keyId, revokedAt: expect.any(Number), node: 'a' })
    expect(revoked.body).not.toHaveProperty('secret')
    expect(revoked.headers.get('idempotent-replayed')).toBeNull()

    const fingerprints = await shardFingerprints()
    const again = await api.admin('DELETE', `/v1/admin/keys/${key.keyId}`)
    expect(again.status).toBe(200)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.body).toEqual(revoked.body)
    expect(await shardFingerprints()).toEqual(fingerprints)
  })

  it('refuses an unknown or malformed key id with 404 key_not_found', async () => {
    const { accountId } = await newAccount('0')
    for (const keyId of [
      `${accountId}.00000000000000000000`,
      `${uid('ghost')}.00000000000000000000`,
      'not-a-key-id',
    ]) {
      await expectRejectedUnchanged(() => api.admin('DELETE', `/v1/admin/keys/${keyId}`), {
        status: 404,
        code: 'key_not_found',
      })
    }
  })
})

describe('deposits', () => {
  it('records a deposit and credits the account exactly', async () => {
    const { accountId, key } = await newAccount('0')
    const depositId = uid('dep')
    const recorded = await api.admin('POST', '/v1/admin/deposits', {
      depositId,
      accountId,
      asset: 'USD',
      amount: '1250.500000',
      signedAt: Date.now(),
    })
    expect(recorded.status).toBe(201)
    expect(recorded.body).toEqual({
      depositId,
      accountId,
      asset: 'USD',
      amount: '1250.5',
      createdAt: expect.any(Number),
      node: 'a',
    })
    expect(recorded.headers.get('idempotent-replayed')).toBeNull()
    expect((await accountOf(key)).collateral).toBe('1250.5')
  })

  it('replays the same depositId with the same payload, crediting once', async () => {
    const { accountId, key } = await newAccount('0')
    const signedAt = Date.now()
    const body = { depositId: uid('dep'), accountId, asset: 'USD', amount: '100.25', signedAt }
    const first = await api.admin('POST', '/v1/admin/deposits', body)
    expect(first.status).toBe(201)
    const fingerprints = await shardFingerprints()
    const replay = await api.admin('POST', '/v1/admin/deposits', body)
    expect(replay.status).toBe(201)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
    expect(replay.body).toEqual(first.body)
    // The same amount written differently is the same payload.
    const respelled = await api.admin('POST', '/v1/admin/deposits', { ...body, amount: '100.250' })
    expect(respelled.status).toBe(201)
    expect(respelled.headers.get('idempotent-replayed')).toBe('true')
    expect(respelled.body).toEqual(first.body)
    // A retry made later carries its own time: it is the same request.
    const later = await api.admin('POST', '/v1/admin/deposits', { ...body, signedAt: signedAt + 1 })
    expect(later.status).toBe(201)
    expect(later.headers.get('idempotent-replayed')).toBe('true')
    expect(later.body).toEqual(first.body)
    expect(await shardFingerprints()).toEqual(fingerprints)
    expect((await accountOf(key)).collateral).toBe('100.25')
  })

  it.each([
    ['made longer ago than the receive window', -6_000],
    ['made later than the receive window', 6_000],
  ])('refuses a deposit request %s with 400 signed_at_outside_window', async (_, offsetMs) => {
    const { accountId, key } = await newAccount('0')
    const body = { depositId: uid('dep'), accountId, asset: 'USD', amount: '7' }
    const reply = await expectRejectedUnchanged(
      () => api.admin('POST', '/v1/admin/deposits', { ...body, signedAt: Date.now() + offsetMs }),
      { status: 400, code: 'signed_at_outside_window' },
    )
    expect(reply.body.error.serverTime).toEqual(expect.any(Number))
    expect(reply.body.error.message).toMatch(/within 5000 ms of the node's clock/)
    // The same request made now is taken.
    const fresh = await api.admin('POST', '/v1/admin/deposits', { ...body, signedAt: Date.now() })
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(201)
    expect((await accountOf(key)).collateral).toBe('7')
  })

  it.each([
    ['without signedAt', undefined],
    ['with a signedAt that is not whole ms', 1.5],
    ['with a signedAt that is a string', '1767225600000'],
  ])('refuses a deposit request %s with 400 validation_failed', async (_, signedAt) => {
    const { accountId } = await newAccount('0')
    await expectRejectedUnchanged(
      () =>
        api.admin('POST', '/v1/admin/deposits', {
          depositId: uid('dep'),
          accountId,
          asset: 'USD',
          amount: '7',
          signedAt,
        }),
      { status: 400, code: 'validation_failed' },
    )
  })

  it('refuses the same depositId with another amount with 409 idempotency_conflict', async () => {
    const { accountId, key } = await newAccount('0')
    const body = {
      depositId: uid('dep'),
      accountId,
      asset: 'USD',
      amount: '100',
      signedAt: Date.now(),
    }
    expect((await api.admin('POST', '/v1/admin/deposits', body)).status).toBe(201)
    await expectRejectedUnchanged(
      () => api.admin('POST', '/v1/admin/deposits', { ...body, amount: '100.000001' }),
      { status: 409, code: 'idempotency_conflict' },
    )
    expect((await accountOf(key)).collateral).toBe('100')
  })

  it('refuses a deposit to an unknown account with 404 account_not_found', async () => {
    await expectRejectedUnchanged(
      () =>
        api.admin('POST', '/v1/admin/deposits', {
          depositId: uid('dep'),
          accountId: uid('ghost'),
          asset: 'USD',
          amount: '10',
          signedAt: Date.now(),
        }),
      { status: 404, code: 'account_not_found' },
    )
  })

  it('accepts the largest amount and refuses one unit more', async () => {
    const { accountId, key } = await newAccount('0')
    const body = (amount: string) => ({
      depositId: uid('dep'),
      accountId,
      asset: 'USD',
      amount,
      signedAt: Date.now(),
    })
    await expectRejectedUnchanged(
      () => api.admin('POST', '/v1/admin/deposits', body('1000000000000.000001')),
      { status: 400, code: 'validation_failed' },
    )
    const largest = await api.admin('POST', '/v1/admin/deposits', body('1000000000000'))
    expect(largest.status).toBe(201)
    expect((await accountOf(key)).collateral).toBe('1000000000000')
  })
})

describe('failback', () => {
  const path = '/v1/admin/markets/BTC-PERP/failback'

  it('needs the admin token', async () => {
    const reply = await api.plain('POST', path, { node: 'a' })
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('missing_admin_token')
  })

  it('answers target_holds when the target already matches the instrument', async () => {
    // A single node matches the instruments homed on it, with no lease to hand over.
    const reply = await api.admin('POST', path, { node: 'a' })
    expect(reply.status).toBe(202)
    expect(reply.body).toEqual({
      instrument: 'BTC-PERP',
      target: 'a',
      holder: 'a',
      outcome: 'target_holds',
    })
  })

  it('refuses a node outside the mesh, an unlisted instrument and a body without a node', async () => {
    const outside = await api.admin('POST', path, { node: 'zz' })
    expect(outside.status).toBe(400)
    expect(outside.body.error).toMatchObject({ code: 'unknown_node', retryable: false })
    const unlisted = await api.admin('POST', '/v1/admin/markets/NOPE-PERP/failback', { node: 'a' })
    expect(unlisted.status).toBe(404)
    expect(unlisted.body.error.code).toBe('unknown_instrument')
    const empty = await api.admin('POST', path, {})
    expect(empty.status).toBe(400)
  })
})
