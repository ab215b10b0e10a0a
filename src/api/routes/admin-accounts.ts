// Operator routes for accounts and their API keys.

import { createRoute, z } from '@hono/zod-openapi'
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
    const secret = await deriveKeySecret(c.var.config.keySecret, keyId)
    return c.json(
      {
        keyId,
        secret,
        accountId,
        scopes: record.scopes,
        label: record.label,
        rateLimit: record.rateLimit ?? null,
        createdAt: record.createdAt,
      },
      201,
    )
  })
  .openapi(revokeKey, async (c) => {
    const { keyId } = c.req.valid('param')
    const accountId = accountOfKeyId(keyId)
    if (accountId === undefined) throw new ApiError(404, 'key_not_found', `no API key ${keyId}`)
    const written = unwrap(await accountStub(c.env, c.var.config, accountId).revokeKey({ keyId }))
    return respondWritten(c, written.record, written.replayed, 200)
  })
