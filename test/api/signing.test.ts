// Signed client requests: headers, the HMAC over timestamp + method + path with query + body, the
// receive window, key ids, revocation and scopes. Every refusal changes nothing.

import { describe, expect, it } from 'vitest'
import { deriveKeySecret } from '../../src/api/signing'
import {
  accountOf,
  api,
  bindings,
  expectRejectedUnchanged,
  newAccount,
  newKey,
  setUpApiTests,
  signedRaw,
  uid,
  type ApiKey,
} from './helpers'

setUpApiTests()

const withdrawalBody = (amount = '1') =>
  JSON.stringify({ withdrawalId: uid('wd'), asset: 'USD', amount })

describe('signature headers', () => {
  it('accepts a correctly signed read and write', async () => {
    const { key, accountId } = await newAccount('10')
    const read = await signedRaw(key, 'GET', '/v1/account', undefined)
    expect(read.status).toBe(200)
    expect(read.body.accountId).toBe(accountId)
    const write = await signedRaw(key, 'POST', '/v1/withdrawals', withdrawalBody('1'))
    expect(write.status, JSON.stringify(write.body)).toBe(201)
    // Hex case of the signature does not matter.
    const upper = await signedRaw(key, 'GET', '/v1/ledger?limit=1', undefined, {
      mapSignature: (signature) => signature.toUpperCase(),
    })
    expect(upper.status).toBe(200)
  })

  it.each(['X-API-Key', 'X-API-Timestamp', 'X-API-Signature'])(
    'refuses a request without %s with 401 missing_signature',
    async (header) => {
      const { key } = await newAccount('10')
      await expectRejectedUnchanged(
        () =>
          signedRaw(key, 'POST', '/v1/withdrawals', withdrawalBody(), {
            headers: { [header]: undefined },
          }),
        { status: 401, code: 'missing_signature' },
      )
      await expectRejectedUnchanged(
        () => signedRaw(key, 'GET', '/v1/account', undefined, { headers: { [header]: undefined } }),
        { status: 401, code: 'missing_signature' },
      )
    },
  )

  it('refuses an unsigned request to every client route with 401 missing_signature', async () => {
    for (const [method, path, body] of [
      ['GET', '/v1/account', undefined],
      ['GET', '/v1/ledger', undefined],
      ['GET', '/v1/withdrawals/wd-1', undefined],
      ['POST', '/v1/withdrawals', { withdrawalId: 'wd-1', asset: 'USD', amount: '1' }],
    ] as const) {
      await expectRejectedUnchanged(() => api.plain(method, path, body), {
        status: 401,
        code: 'missing_signature',
      })
    }
  })

  it('the admin token does not sign client requests', async () => {
    await expectRejectedUnchanged(
      () => api.admin('POST', '/v1/withdrawals', { withdrawalId: 'wd', asset: 'USD', amount: '1' }),
      { status: 401, code: 'missing_signature' },
    )
  })
})

describe('signature', () => {
  it('refuses a wrong signature with 401 invalid_signature', async () => {
    const { key } = await newAccount('10')
    for (const signature of ['0'.repeat(64), 'zz', 'deadbeef']) {
      await expectRejectedUnchanged(
        () =>
          signedRaw(key, 'POST', '/v1/withdrawals', withdrawalBody(), {
            headers: { 'X-API-Signature': signature },
          }),
        { status: 401, code: 'invalid_signature' },
      )
    }
  })

  it('refuses a signature made with another secret', async () => {
    const { key } = await newAccount('10')
    const other = await newAccount('10')
    await expectRejectedUnchanged(
      () =>
        signedRaw(key, 'POST', '/v1/withdrawals', withdrawalBody(), { secret: other.key.secret }),
      { status: 401, code: 'invalid_signature' },
    )
  })

  it('refuses a signature over a different body', async () => {
    const { key } = await newAccount('10')
    const signed = JSON.stringify({ withdrawalId: uid('wd'), asset: 'USD', amount: '1' })
    const sent = signed.replace('"1"', '"9"')
    await expectRejectedUnchanged(
      () => signedRaw(key, 'POST', '/v1/withdrawals', sent, { signBody: signed }),
      { status: 401, code: 'invalid_signature' },
    )
    // An empty signed body does not cover a sent one either.
    await expectRejectedUnchanged(
      () => signedRaw(key, 'POST', '/v1/withdrawals', sent, { signBody: '' }),
      { status: 401, code: 'invalid_signature' },
    )
    expect((await accountOf(key)).collateral).toBe('10')
  })

  it('refuses a signature over a different path', async () => {
    const { key } = await newAccount('10')
    await expectRejectedUnchanged(
      () => signedRaw(key, 'GET', '/v1/ledger', undefined, { signPath: '/v1/account' }),
      { status: 401, code: 'invalid_signature' },
    )
    await expectRejectedUnchanged(
      () =>
        signedRaw(key, 'POST', '/v1/withdrawals', withdrawalBody(), {
          signPath: '/v1/withdrawals/x',
        }),
      { status: 401, code: 'invalid_signature' },
    )
  })

  it('refuses a signature over a different query', async () => {
    const { key } = await newAccount('10')
    await expectRejectedUnchanged(
      () =>
        signedRaw(key, 'GET', '/v1/ledger?limit=3', undefined, { signPath: '/v1/ledger?limit=2' }),
      { status: 401, code: 'invalid_signature' },
    )
    // Dropping the query from what is signed does not cover it either.
    await expectRejectedUnchanged(
      () => signedRaw(key, 'GET', '/v1/ledger?limit=3', undefined, { signPath: '/v1/ledger' }),
      { status: 401, code: 'invalid_signature' },
    )
  })

  it('refuses a signature over a different method', async () => {
    const { key } = await newAccount('10')
    await expectRejectedUnchanged(
      () => signedRaw(key, 'POST', '/v1/withdrawals', withdrawalBody(), { signMethod: 'PUT' }),
      { status: 401, code: 'invalid_signature' },
    )
  })

  it('refuses a key id moved onto another account', async () => {
    const { key } = await newAccount('10')
    const victim = await newAccount('10')
    const random = key.keyId.slice(key.keyId.lastIndexOf('.') + 1)
    const forged: ApiKey = { keyId: `${victim.accountId}.${random}`, secret: key.secret }
    await expectRejectedUnchanged(
      () => signedRaw(forged, 'POST', '/v1/withdrawals', withdrawalBody()),
      { status: 401, code: 'invalid_signature' },
    )
    expect((await accountOf(victim.key)).collateral).toBe('10')
  })
})

describe('receive window', () => {
  it('accepts a timestamp a little behind or ahead of the node clock', async () => {
    const { key } = await newAccount('10')
    for (const skew of [-3_000, 3_000]) {
      const reply = await signedRaw(key, 'GET', '/v1/account', undefined, {
        timestamp: String(Date.now() + skew),
      })
      expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    }
  })

  it.each([
    ['too old', () => String(Date.now() - 6_000)],
    ['far too old', () => String(Date.now() - 86_400_000)],
    ['too far ahead', () => String(Date.now() + 6_000)],
    ['not a number', () => 'yesterday'],
    ['in seconds', () => String(Math.floor(Date.now() / 1000))],
    ['fractional', () => `${Date.now()}.5`],
    ['negative', () => `-${Date.now()}`],
    ['in exponent form', () => (Date.now() / 1e12).toFixed(3) + 'e12'],
  ])('refuses a timestamp %s with 401 timestamp_outside_window', async (_, timestamp) => {
    const { key } = await newAccount('10')
    const reply = await expectRejectedUnchanged(
      () => signedRaw(key, 'POST', '/v1/withdrawals', withdrawalBody(), { timestamp: timestamp() }),
      { status: 401, code: 'timestamp_outside_window' },
    )
    expect(reply.body.error.serverTime).toEqual(expect.any(Number))
  })
})

describe('API keys', () => {
  it('refuses an unknown key id with 401 invalid_api_key, even when correctly signed', async () => {
    const { accountId } = await newAccount('10')
    for (const keyId of [
      `${accountId}.0123456789abcdef0123`,
      `${uid('ghost')}.0123456789abcdef0123`,
    ]) {
      // The key id's secret derives from the mesh secret, so this signature is "right".
      const secret = await deriveKeySecret(bindings.KEY_SECRET, keyId)
      await expectRejectedUnchanged(
        () => signedRaw({ keyId, secret }, 'POST', '/v1/withdrawals', withdrawalBody()),
        { status: 401, code: 'invalid_api_key' },
      )
    }
  })

  it.each([
    ['no dot', 'abcdef'],
    ['a short random part', 'acc-1.abc'],
    ['an upper-case random part', 'acc-1.0123456789ABCDEF0123'],
    ['an empty account part', '.0123456789abcdef0123'],
    ['a bad account part', 'a b.0123456789abcdef0123'],
    ['an over-long id', `${'a'.repeat(100)}.0123456789abcdef0123`],
  ])('refuses a malformed key id (%s) with 401 invalid_api_key', async (_, keyId) => {
    const secret = await deriveKeySecret(bindings.KEY_SECRET, keyId)
    await expectRejectedUnchanged(
      () => signedRaw({ keyId, secret }, 'GET', '/v1/account', undefined),
      { status: 401, code: 'invalid_api_key' },
    )
  })

  it('refuses a revoked key with 401 api_key_revoked; the account keeps its other keys', async () => {
    const { key, accountId } = await newAccount('10')
    const spare = await newKey(accountId, ['read', 'withdraw'])
    expect((await api.admin('DELETE', `/v1/admin/keys/${key.keyId}`)).status).toBe(200)
    await expectRejectedUnchanged(
      () => signedRaw(key, 'POST', '/v1/withdrawals', withdrawalBody()),
      { status: 401, code: 'api_key_revoked' },
    )
    await expectRejectedUnchanged(() => signedRaw(key, 'GET', '/v1/account', undefined), {
      status: 401,
      code: 'api_key_revoked',
    })
    // Revoking again replays and the key stays revoked.
    const again = await api.admin('DELETE', `/v1/admin/keys/${key.keyId}`)
    expect(again.status).toBe(200)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    await expectRejectedUnchanged(() => signedRaw(key, 'GET', '/v1/ledger', undefined), {
      status: 401,
      code: 'api_key_revoked',
    })
    expect((await accountOf(spare)).collateral).toBe('10')
  })
})

describe('scopes', () => {
  it("refuses a withdrawal with a key lacking 'withdraw' with 403 insufficient_scope", async () => {
    const { accountId, key: full } = await newAccount('10')
    for (const scopes of [['read'], ['trade'], ['read', 'trade']]) {
      const key = await newKey(accountId, scopes)
      await expectRejectedUnchanged(
        () => signedRaw(key, 'POST', '/v1/withdrawals', withdrawalBody()),
        { status: 403, code: 'insufficient_scope' },
      )
    }
    expect((await accountOf(full)).withdrawable).toBe('10')
  })

  it("refuses reads with a key lacking 'read' with 403 insufficient_scope", async () => {
    const { accountId, key: full } = await newAccount('10')
    const written = await api.signed(full, 'POST', '/v1/withdrawals', {
      withdrawalId: 'wd-scoped',
      asset: 'USD',
      amount: '1',
    })
    expect(written.status).toBe(201)
    for (const scopes of [['withdraw'], ['trade'], ['trade', 'withdraw']]) {
      const key = await newKey(accountId, scopes)
      for (const path of [
        '/v1/account',
        '/v1/ledger',
        '/v1/ledger?limit=1',
        '/v1/withdrawals/wd-scoped',
      ]) {
        await expectRejectedUnchanged(() => signedRaw(key, 'GET', path, undefined), {
          status: 403,
          code: 'insufficient_scope',
        })
      }
    }
  })

  it("a 'withdraw'-only key withdraws; a 'read'-only key reads", async () => {
    const { accountId } = await newAccount('10')
    const withdrawOnly = await newKey(accountId, ['withdraw'])
    const readOnly = await newKey(accountId, ['read'])
    const written = await signedRaw(withdrawOnly, 'POST', '/v1/withdrawals', withdrawalBody('4'))
    expect(written.status, JSON.stringify(written.body)).toBe(201)
    expect((await accountOf(readOnly)).collateral).toBe('6')
  })
})
