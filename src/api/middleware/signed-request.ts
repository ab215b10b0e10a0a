import type { MiddlewareHandler } from 'hono'
import type { Scope } from '../../state/shard-doc'
import { ApiError, fromRejection } from '../api-error'
import type { AppEnv } from '../app-env'
import { accountOfKeyId } from '../key-id'
import { accountStub } from '../../replica/addressing'
import { constantTimeEqual, hmacHex } from '../../hmac'
import { reducesRisk } from '../reduces-risk'
import { deriveKeySecret, signingPayload, withinWindow } from '../signing'
import * as clock from '../../clock'

/**
 * Admits only requests signed with a live API key that holds `scope`, within the key's rate limit
 * on this node (429 `rate_limited` past it; cancels and reduce-only orders have a bucket of their
 * own), and records the caller. The signature is checked before any storage is read, so garbage
 * costs one HMAC.
 *
 * @example
 * app.post('/v1/withdrawals', signedRequest('withdraw'), handler)
 */
export const signedRequest = (scope: Scope): MiddlewareHandler<AppEnv> =>
  async function signedRequest(c, next) {
    const keyId = c.req.header('X-API-Key')
    const timestamp = c.req.header('X-API-Timestamp')
    const signature = c.req.header('X-API-Signature')
    if (!keyId || !timestamp || !signature) {
      throw new ApiError(
        401,
        'missing_signature',
        'signed requests need the headers X-API-Key, X-API-Timestamp and X-API-Signature',
      )
    }
    const windowMs = c.var.config.signatureWindowMs
    if (!/^[0-9]{1,15}$/.test(timestamp) || !withinWindow(Number(timestamp), windowMs)) {
      throw new ApiError(
        401,
        'timestamp_outside_window',
        `X-API-Timestamp must be milliseconds since the epoch within ${windowMs} ms of the node's clock`,
        { details: { serverTime: clock.now() } },
      )
    }
    const accountId = accountOfKeyId(keyId)
    if (accountId === undefined) throw new ApiError(401, 'invalid_api_key', 'unknown API key')
    const url = new URL(c.req.url)
    const body = await c.req.text()
    const secret = await deriveKeySecret(c.var.config.keySecret, keyId)
    const expected = await hmacHex(
      secret,
      signingPayload(
        timestamp,
        c.req.method,
        url.pathname + url.search,
        body,
        c.req.header('Idempotency-Key') ?? '',
      ),
    )
    if (!constantTimeEqual(signature.toLowerCase(), expected)) {
      throw new ApiError(401, 'invalid_signature', 'the request signature does not match')
    }
    const lane = (await reducesRisk(c)) ? 'reducing' : 'general'
    const key = await accountStub(c.env, c.var.config, accountId).admitKey(keyId, lane)
    if (!key.ok) {
      if (key.code !== 'not_found') throw fromRejection(key)
      throw new ApiError(401, 'invalid_api_key', 'unknown API key')
    }
    if (key.value.value.revoked)
      throw new ApiError(401, 'api_key_revoked', 'this API key was revoked')
    if (!key.value.value.record.scopes.includes(scope)) {
      throw new ApiError(403, 'insufficient_scope', `this API key lacks the "${scope}" scope`)
    }
    const { retryAfterMs } = key.value.value
    if (retryAfterMs !== null) {
      throw new ApiError(429, 'rate_limited', 'this API key is over its rate limit on this node', {
        retryable: true,
        retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
        details: {
          executionStatus: 'not_executed',
          retryAfterMs,
          rateLimit: key.value.value.record.rateLimit ?? c.var.config.keyRate,
        },
      })
    }
    c.set('caller', { keyId, accountId, scopes: key.value.value.record.scopes })
    await next()
  }
