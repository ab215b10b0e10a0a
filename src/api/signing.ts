// Request signing, shared by the node (verifying) and by clients, tests and scripts (signing).
// Signature = hex HMAC-SHA256(secret, timestamp + METHOD + path-with-query + body).
// API key secrets are derived from the mesh's key secret and the key id, so no node stores one.

import { hmacHex } from '../hmac'
import * as clock from '../clock'

/**
 * Whether `time` (ms since the epoch, from the caller) is within `windowMs` of this node's clock:
 * a signed request's timestamp, a deposit's signedAt. A request is taken only that long after it
 * was made, which bounds how long its request id must be recognised (domain/checkpoint.ts).
 */
export const withinWindow = (time: number, windowMs: number): boolean =>
  Math.abs(clock.now() - time) <= windowMs

/** The secret of API key `keyId`, derived from the mesh-wide key secret. */
export const deriveKeySecret = (keySecret: string, keyId: string): Promise<string> =>
  hmacHex(keySecret, `clearmesh/api-key/v1/${keyId}`)

/**
 * What a signature covers: timestamp + METHOD + path with query + body, then the
 * Idempotency-Key header's value when the request carries one (it names the request, so it must
 * not be changeable by whoever replays a signed request).
 */
export const signingPayload = (
  timestamp: string,
  method: string,
  pathWithQuery: string,
  body: string,
  idempotencyKey = '',
) => `${timestamp}${method.toUpperCase()}${pathWithQuery}${body}${idempotencyKey}`

export type SignedHeaders = {
  'X-API-Key': string
  'X-API-Timestamp': string
  'X-API-Signature': string
}

/** Headers that sign a request with an API key. */
export async function signRequest(
  key: { keyId: string; secret: string },
  request: {
    method: string
    pathWithQuery: string
    body: string
    timestamp?: number
    idempotencyKey?: string
  },
): Promise<SignedHeaders> {
  const timestamp = String(request.timestamp ?? clock.now())
  const signature = await hmacHex(
    key.secret,
    signingPayload(
      timestamp,
      request.method,
      request.pathWithQuery,
      request.body,
      request.idempotencyKey,
    ),
  )
  return { 'X-API-Key': key.keyId, 'X-API-Timestamp': timestamp, 'X-API-Signature': signature }
}
