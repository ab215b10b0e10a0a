// Request signing, shared by the node (verifying) and by clients, tests and scripts (signing).
// Signature = hex HMAC-SHA256(secret, timestamp + METHOD + path-with-query + body).
// API key secrets are derived from the mesh's key secret and the key id, so no node stores one.

const encoder = new TextEncoder()

const hmacKey = (secret: string): Promise<CryptoKey> =>
  crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ])

const toHex = (bytes: ArrayBuffer): string =>
  Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('')

export async function hmacHex(secret: string, message: string): Promise<string> {
  return toHex(await crypto.subtle.sign('HMAC', await hmacKey(secret), encoder.encode(message)))
}

/** The secret of API key `keyId`, derived from the mesh-wide key secret. */
export const deriveKeySecret = (keySecret: string, keyId: string): Promise<string> =>
  hmacHex(keySecret, `clearmesh/api-key/v1/${keyId}`)

export const signingPayload = (
  timestamp: string,
  method: string,
  pathWithQuery: string,
  body: string,
) => `${timestamp}${method.toUpperCase()}${pathWithQuery}${body}`

export type SignedHeaders = {
  'X-API-Key': string
  'X-API-Timestamp': string
  'X-API-Signature': string
}

/** Headers that sign a request with an API key. */
export async function signRequest(
  key: { keyId: string; secret: string },
  request: { method: string; pathWithQuery: string; body: string; timestamp?: number },
): Promise<SignedHeaders> {
  const timestamp = String(request.timestamp ?? Date.now())
  const signature = await hmacHex(
    key.secret,
    signingPayload(timestamp, request.method, request.pathWithQuery, request.body),
  )
  return { 'X-API-Key': key.keyId, 'X-API-Timestamp': timestamp, 'X-API-Signature': signature }
}

/** Compares two strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = encoder.encode(a)
  const right = encoder.encode(b)
  let difference = left.length ^ right.length
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    difference |= (left[i] ?? 0) ^ (right[i] ?? 0)
  }
  return difference === 0
}
