// Operator routes for accounts and their API keys.

import { createRoute, z } from '@hono/zod-openapi'
import type { KeyRecord } from '../../state/shard-doc'
import { deriveKeySecret } from '../signing'
import { accountOfKeyId, newKeyId, randomHex } from '../key-id'
import { ApiError } from '../api-error'
import { accountStub } from '../../replica/addressing'
import { createRouter, errorsOf, json, respondWritten, unwrap } from '../router'
import * as schemas from '../schemas'

const security = [{ adminToken: [] }]

const createAccount = createRoute({
  method: 'post',
  path: '/v1/admin/accounts',
  tags: ['admin'],
  summary: 'Create an account (an existing id replays)',
  security,
  request: {
    body: {
      content: { 'application/json': { schema: schemas.CreateAccountBody } },
      required: true,
    },
  },
  responses: {
    201: json(schemas.Account, 'created or replayed'),
    ...errorsOf(400, 413, 415, 401, 503),
  },
})

const createKey = createRoute({
  method: 'post',
  path: '/v1/admin/accounts/{accountId}/keys',
  tags: ['admin'],
  summary: 'Create an API key; its secret is returned once',
  security,
  request: {
    params: z.object({ accountId: schemas.Id('accountId') }),
    body: { content: { 'application/json': { schema: schemas.CreateKeyBody } }, required: true },
  },
  responses: {
    201: json(schemas.CreatedKey, 'created'),
    ...errorsOf(400, 413, 415, 401, 404, 503),
  },
})

const revokeKey = createRoute({
  method: 'delete',
  path: '/v1/admin/keys/{keyId}',
  tags: ['admin'],
  summary: 'Revoke an API key (revoking twice replays)',
  security,
  request: { params: z.object({ keyId: z.string().max(128) }) },
  responses: { 200: json(schemas.Revocation, 'revoked'), ...errorsOf(401, 404, 503) },
})

const rotateKey = createRoute({
  method: 'post',
  path: '/v1/admin/keys/{keyId}/rotate',
  tags: ['admin'],
  summary:
    'Replace a key: a new key with the same account, scopes, label and rate limit; the old one ' +
    'revoked at once, in the same write (a retry replays the rotation)',
  security,
  request: { params: z.object({ keyId: z.string().max(128) }) },
  responses: {
    201: json(schemas.RotatedKey, 'rotated; the new secret is returned (again on a replay)'),
    ...errorsOf(401, 404, 409, 503),
  },
})

/** The wire form of a new key, with its secret (derived, never stored). */
async function createdKey(keySecret: string, record: KeyRecord) {
  return {
    keyId: record.keyId,
    secret: await deriveKeySecret(keySecret, record.keyId),
    accountId: record.accountId,
    scopes: record.scopes,
    label: record.label,
    rateLimit: record.rateLimit ?? null,
    createdAt: record.createdAt,
  }
}

export const adminAccountRoutes = createRouter()
  .openapi(createAccount, async (c) => {
    const { accountId = `acc-${randomHex(8)}` } = c.req.valid('json')
    const written = unwrap(
      await accountStub(c.env, c.var.config, accountId).createAccount({ accountId }),
    )
    return respondWritten(c, written.record, written.replayed, 201)
  })
  .openapi(createKey, async (c) => {
    const { accountId } = c.req.valid('param')
    const { scopes, label = '', rateLimit = null } = c.req.valid('json')
    const keyId = newKeyId(accountId)
    const stub = accountStub(c.env, c.var.config, accountId)
    const { record } = unwrap(await stub.createKey({ keyId, accountId, scopes, label, rateLimit }))
    return c.json(await createdKey(c.var.config.keySecret, record), 201)
  })
  .openapi(revokeKey, async (c) => {
    const { keyId } = c.req.valid('param')
    const accountId = accountOfKeyId(keyId)
    if (accountId === undefined) throw new ApiError(404, 'key_not_found', `no API key ${keyId}`)
    const written = unwrap(await accountStub(c.env, c.var.config, accountId).revokeKey({ keyId }))
    return respondWritten(c, written.record, written.replayed, 200)
  })
  .openapi(rotateKey, async (c) => {
    const { keyId } = c.req.valid('param')
    const accountId = accountOfKeyId(keyId)
    if (accountId === undefined) throw new ApiError(404, 'key_not_found', `no API key ${keyId}`)
    const stub = accountStub(c.env, c.var.config, accountId)
    const { record, replayed } = unwrap(
      await stub.rotateKey({ keyId, newKeyId: newKeyId(accountId) }),
    )
    const created = await createdKey(c.var.config.keySecret, record.key)
    return respondWritten(c, { ...created, replaces: keyId }, replayed, 201)
  })
