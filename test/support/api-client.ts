// A small test client for one node's HTTP API: admin calls with the bearer token, client calls
// signed with an API key. Runs in Node and inside the Workers runtime (fetch + WebCrypto only).

import { signRequest } from '../../src/api/signing'
import { keyRateMax } from '../../src/constants'

/**
 * The rate of a key that is a test's eyes, not a client: checks that read back every write on
 * every node go faster than a client's rate limit allows.
 */
export const unlimitedRate = { perSecond: keyRateMax, burst: keyRateMax }

export type Fetch = (url: string, init?: RequestInit) => Promise<Response>
export type ApiKey = { keyId: string; secret: string }
export type Reply = { status: number; headers: Headers; body: any }

export function apiClient(fetcher: Fetch, base: string, adminToken: string) {
  const send = async (
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: BodyInit,
  ) => {
    const init: RequestInit = { method, headers }
    if (body !== undefined) init.body = body
    const response = await fetcher(base + path, init)
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = text.length > 0 ? JSON.parse(text) : null
    } catch {
      // Not JSON: the raw text is what the test sees.
    }
    return { status: response.status, headers: response.headers, body: parsed } as Reply
  }
  const bodyText = (body: unknown) =>
    body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)

  return {
    /** A request exactly as given: no auth, no added headers. */
    raw: send,
    /** An admin call; `body` objects are sent as JSON, strings as they are. */
    admin(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      return send(
        method,
        path,
        { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', ...headers },
        bodyText(body),
      )
    },
    /** A call signed with `key`. */
    async signed(
      key: ApiKey,
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) {
      const text = bodyText(body)
      const idempotencyKey = Object.entries(headers).find(
        ([name]) => name.toLowerCase() === 'idempotency-key',
      )?.[1]
      const signature = await signRequest(key, {
        method,
        pathWithQuery: path,
        body: text ?? '',
        ...(idempotencyKey !== undefined && { idempotencyKey }),
      })
      return send(
        method,
        path,
        { 'content-type': 'application/json', ...signature, ...headers },
        text,
      )
    },
    /** An unauthenticated call. */
    plain(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      return send(method, path, { 'content-type': 'application/json', ...headers }, bodyText(body))
    },
    /** Creates an account with `USD` deposited and a key holding `scopes`. */
    async fundedAccount(
      accountId: string,
      deposit: string,
      scopes = ['read', 'trade', 'withdraw'],
      rateLimit?: { perSecond: number; burst: number },
    ) {
      const account = await this.admin('POST', '/v1/admin/accounts', { accountId })
      if (account.status !== 201) throw new Error(`create account: ${JSON.stringify(account.body)}`)
      const key = await this.admin('POST', `/v1/admin/accounts/${accountId}/keys`, {
        scopes,
        ...(rateLimit !== undefined && { rateLimit }),
      })
      if (key.status !== 201) throw new Error(`create key: ${JSON.stringify(key.body)}`)
      if (deposit !== '0') {
        const recorded = await this.admin('POST', '/v1/admin/deposits', {
          depositId: `initial-${accountId}`,
          accountId,
          asset: 'USD',
          amount: deposit,
          signedAt: Date.now(),
        })
        if (recorded.status !== 201) throw new Error(`deposit: ${JSON.stringify(recorded.body)}`)
      }
      return { keyId: key.body.keyId as string, secret: key.body.secret as string }
    },
  }
}

export type ApiClient = ReturnType<typeof apiClient>
