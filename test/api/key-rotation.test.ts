// Key rotation through the admin API: a new key with the same account, scopes, label and rate
// limit, the old one revoked in the same write; a retry replays the rotation (the same new key and
// secret); a key revoked otherwise, an unknown key and a malformed id are refused, changing nothing.

import { describe, expect, it } from 'vitest'
import {
  api,
  expectError,
  expectRejectedUnchanged,
  newAccount,
  setUpApiTests,
  shardFingerprints,
  uid,
  type ApiKey,
} from './helpers'

setUpApiTests()

const rotate = (keyId: string) => api.admin('POST', `/v1/admin/keys/${keyId}/rotate`)

describe('POST /v1/admin/keys/{keyId}/rotate', () => {
  it('replaces a key with one of the same account, scopes, label and rate limit', async () => {
    const { accountId } = await newAccount('10')
    const made = await api.admin('POST', `/v1/admin/accounts/${accountId}/keys`, {
      scopes: ['read', 'withdraw'],
      label: 'desk',
      rateLimit: { perSecond: 7, burst: 9 },
    })
    expect(made.status).toBe(201)
    const old: ApiKey = { keyId: made.body.keyId, secret: made.body.secret }
    const rotated = await rotate(old.keyId)
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201)
    expect(rotated.body).toEqual({
      keyId: expect.stringMatching(new RegExp(`^${accountId}\\.[0-9a-f]{20}$`)),
      secret: expect.stringMatching(/^[0-9a-f]{64}$/),
      accountId,
      scopes: ['read', 'withdraw'],
      label: 'desk',
      rateLimit: { perSecond: 7, burst: 9 },
      createdAt: expect.any(Number),
      replaces: old.keyId,
    })
    expect(rotated.body.keyId).not.toBe(old.keyId)
    const fresh: ApiKey = { keyId: rotated.body.keyId, secret: rotated.body.secret }
    // The new key signs at once, with the old key's scopes; the old one is revoked.
    expect((await api.signed(fresh, 'GET', '/v1/account')).status).toBe(200)
    const withdrawn = await api.signed(fresh, 'POST', '/v1/withdrawals', {
      withdrawalId: uid('wd'),
      asset: 'USD',
      amount: '1',
    })
    expect(withdrawn.status, JSON.stringify(withdrawn.body)).toBe(201)
    expectError(await api.signed(fresh, 'POST', '/v1/orders', {}), {
      status: 403,
      code: 'insufficient_scope',
    })
    expectError(await api.signed(old, 'GET', '/v1/account'), {
      status: 401,
      code: 'api_key_revoked',
    })
    // A retry replays the rotation: the same new key and secret, nothing more written.
    const replayed = await expectReplayUnchanged(() => rotate(old.keyId))
    expect(replayed.body).toEqual(rotated.body)
    // The revocation names its replacement.
    const revocation = await api.admin('DELETE', `/v1/admin/keys/${old.keyId}`)
    expect(revocation.status).toBe(200)
    expect(revocation.body).toMatchObject({ keyId: old.keyId, replacedBy: fresh.keyId })
  })

  it('refuses a key revoked otherwise, an unknown key and a malformed id, changing nothing', async () => {
    const { accountId, key } = await newAccount('0')
    expect((await api.admin('DELETE', `/v1/admin/keys/${key.keyId}`)).status).toBe(200)
    await expectRejectedUnchanged(() => rotate(key.keyId), { status: 409, code: 'key_revoked' })
    await expectRejectedUnchanged(() => rotate(`${accountId}.0123456789abcdef0123`), {
      status: 404,
      code: 'key_not_found',
    })
    await expectRejectedUnchanged(() => rotate('not-a-key-id'), {
      status: 404,
      code: 'key_not_found',
    })
    await expectRejectedUnchanged(() => api.raw('POST', `/v1/admin/keys/${key.keyId}/rotate`, {}), {
      status: 401,
      code: 'missing_admin_token',
    })
  })
})

/** Sends a replayed write: 201 marked Idempotent-Replayed, and no shard changed. */
async function expectReplayUnchanged(send: () => ReturnType<typeof rotate>) {
  const before = await shardFingerprints()
  const reply = await send()
  expect(reply.status, JSON.stringify(reply.body)).toBe(201)
  expect(reply.headers.get('idempotent-replayed')).toBe('true')
  expect(await shardFingerprints()).toEqual(before)
  return reply
}
