// How a call proves who sends it: nothing (public routes), the operator's admin token (bearer), or
// an API key's signature (src/api/signing.ts, the same code the node verifies with). A signature
// is made per attempt, so a retry carries a fresh timestamp inside the node's receive window.

import { signRequest } from '../api/signing'

export type ApiKey = { keyId: string; secret: string }

export type Auth =
  { kind: 'none' } | { kind: 'admin'; token: string } | { kind: 'signed'; key: ApiKey }

export async function authHeaders(
  auth: Auth,
  request: { method: string; pathWithQuery: string; body: string; idempotencyKey?: string },
): Promise<Record<string, string>> {
  if (auth.kind === 'none') return {}
  if (auth.kind === 'admin') return { authorization: `Bearer ${auth.token}` }
  return signRequest(auth.key, request)
}
