// The SDK's transport against a fake fetch: which failures it repeats (503, and for idempotent
// calls 504, timeouts and connection failures), on which node, with which request id, how many
// times and how far apart; and that a 4xx is never repeated.

import { describe, expect, it, vi } from 'vitest'
import { signingPayload } from '../../src/api/signing'
import { ClearmeshError, createClient, type Fetch } from '../../src/client'
import { hmacHex } from '../../src/hmac'

type Sent = { url: string; init: RequestInit; body: Record<string, unknown> | null }
type Reply = (sent: Sent) => Promise<Response>

const envelope = (status: number, code: string, extra: Record<string, unknown> = {}) =>
  Response.json(
    {
      error: {
        code,
        message: `${code} happened`,
        retryable: status >= 500,
        requestId: `req-${code}`,
        ...extra,
      },
    },
    { status, headers: { 'x-request-id': `req-${code}` } },
  )

const ok = (body: unknown, headers: Record<string, string> = {}) =>
  Response.json(body, { status: 201, headers: { 'x-request-id': 'req-ok', ...headers } })

/** A fetch that answers each attempt with the next reply, and records what was sent. */
function scripted(replies: Reply[]) {
  const sent: Sent[] = []
  const fetch: Fetch = async (url, init) => {
    const body = typeof init.body === 'string' ? JSON.parse(init.body) : null
    const attempt = { url, init, body }
    sent.push(attempt)
    const reply = replies[sent.length - 1]
    if (reply === undefined) throw new Error(`unexpected attempt ${sent.length} to ${url}`)
    return reply(attempt)
  }
  return { fetch, sent }
}

/** An attempt that never answers until the transport gives up on it (abort). */
const hang: Reply = ({ init }) =>
  new Promise((_, reject) =>
    init.signal?.addEventListener('abort', () =>
      reject(Object.assign(new Error('aborted'), { name: 'AbortError' })),
    ),
  )

const nodes = ['http://a.test', 'http://b.test', 'http://c.test']
const key = { keyId: 'acc-1.0123456789abcdef0123', secret: 'key-secret' }

function clientOf(replies: Reply[], options: { attemptsMax?: number } = {}) {
  const { fetch, sent } = scripted(replies)
  const waits: number[] = []
  const client = createClient({
    nodes,
    fetch,
    adminToken: 'admin-token',
    apiKey: key,
    attemptTimeoutMs: 50,
    sleep: async (ms) => void waits.push(ms),
    ...options,
  })
  return { client, sent, waits }
}

const origin = (sent: Sent) => new URL(sent.url).origin

describe('retries and failover', () => {
  it('fails over from a 503 not_executed to the next node with the same deposit id', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_767_225_600_000 })
    const { client, sent, waits } = clientOf([
      async () => {
        vi.setSystemTime(Date.now() + 7_000)
        return envelope(503, 'overloaded', { executionStatus: 'not_executed' })
      },
      async ({ body }) => ok({ ...body, createdAt: 1, node: 'b' }),
    ])
    const answer = await client.admin.deposit({ accountId: 'acc-1', amount: '10' }).finally(() => {
      vi.useRealTimers()
    })
    expect(sent.map(origin)).toEqual(['http://a.test', 'http://b.test'])
    expect(sent[0]!.body!.depositId).toMatch(/^dep-[0-9a-f-]{36}$/)
    // The same request, but each attempt carries its own time: the node takes a signedAt only
    // within its receive window, so a retry past it must not carry the first attempt's.
    const { signedAt: first, ...request } = sent[0]!.body!
    const { signedAt: second, ...retried } = sent[1]!.body!
    expect(retried).toEqual(request)
    expect([first, second]).toEqual([1_767_225_600_000, 1_767_225_607_000])
    expect(answer).toEqual(
      expect.objectContaining({ node: 'http://b.test', attempts: 2, status: 201, replayed: false }),
    )
    expect(answer.value.depositId).toBe(sent[0]!.body!.depositId)
    expect(waits).toEqual([100])
  })

  it('after a timeout, sends the same withdrawal id to another node, signed afresh', async () => {
    const { client, sent } = clientOf([
      hang,
      async ({ body }) => ok({ ...body, status: 'approved' }, { 'idempotent-replayed': 'true' }),
    ])
    const answer = await client.trading.withdraw({ amount: '5', withdrawalId: 'wd-7' })
    expect(sent.map(origin)).toEqual(['http://a.test', 'http://b.test'])
    expect(sent.map((s) => s.body!.withdrawalId)).toEqual(['wd-7', 'wd-7'])
    expect(answer.replayed).toBe(true)
    for (const attempt of sent) {
      const headers = attempt.init.headers as Record<string, string>
      const expected = await hmacHex(
        key.secret,
        signingPayload(
          headers['X-API-Timestamp']!,
          'POST',
          '/v1/withdrawals',
          attempt.init.body as string,
        ),
      )
      expect(headers['X-API-Signature']).toBe(expected)
      expect(headers['X-API-Key']).toBe(key.keyId)
    }
  })

  it('repeats a 504 outcome_unknown with the same order id and returns the stored result', async () => {
    const { client, sent } = clientOf([
      async () => envelope(504, 'outcome_unknown', { executionStatus: 'unknown' }),
      async ({ body }) => ok({ ...body, status: 'open' }, { 'idempotent-replayed': 'true' }),
    ])
    const answer = await client.trading.placeOrder({
      instrument: 'BTC-PERP',
      side: 'buy',
      type: 'limit',
      price: '60000',
      size: '0.01',
    })
    expect(sent[1]!.body).toEqual(sent[0]!.body)
    expect(answer.value.clientOrderId).toBe(sent[0]!.body!.clientOrderId)
    expect(answer.replayed).toBe(true)
  })

  it('fails over from a refused connection', async () => {
    const { client, sent } = clientOf([
      async () => {
        throw new TypeError('fetch failed')
      },
      async () => Response.json({ status: 'ok', node: 'b', at: 1 }),
    ])
    const answer = await client.public.health()
    expect(sent.map(origin)).toEqual(['http://a.test', 'http://b.test'])
    expect(answer.value.node).toBe('b')
  })

  it('keeps using the node that answered', async () => {
    const { client, sent } = clientOf([
      async () => envelope(503, 'home_node_unreachable'),
      async () => Response.json({ withdrawals: 'normal', instruments: {} }),
      async () => Response.json({ withdrawals: 'normal', instruments: {} }),
    ])
    await client.admin.breakers()
    await client.admin.breakers()
    expect(sent.map(origin)).toEqual(['http://a.test', 'http://b.test', 'http://b.test'])
  })

  it('gives up after attemptsMax attempts, backing off by doubling', async () => {
    const busy: Reply = async () => envelope(503, 'overloaded', { executionStatus: 'not_executed' })
    const { client, sent, waits } = clientOf([busy, busy, busy, busy, busy])
    const error = await client.admin.deposit({ accountId: 'acc-1', amount: '1' }).catch((e) => e)
    expect(error).toBeInstanceOf(ClearmeshError)
    expect(error).toEqual(
      expect.objectContaining({
        code: 'overloaded',
        status: 503,
        retryable: true,
        executionStatus: 'not_executed',
        attempts: 4,
        node: 'http://a.test',
        requestId: 'req-overloaded',
      }),
    )
    expect(sent.map(origin)).toEqual([...nodes, nodes[0]])
    expect(new Set(sent.map((s) => s.body!.depositId)).size).toBe(1)
    expect(waits).toEqual([100, 200, 400])
  })

  it.each([
    [400, 'validation_failed'],
    [401, 'invalid_signature'],
    [409, 'idempotency_conflict'],
    [422, 'insufficient_funds'],
    [429, 'rate_limited'],
  ])('never repeats a %i (%s)', async (status, code) => {
    const { client, sent } = clientOf([async () => envelope(status, code, { issues: [] })])
    const error = await client.trading.withdraw({ amount: '5' }).catch((e) => e)
    expect(sent).toHaveLength(1)
    expect(error).toBeInstanceOf(ClearmeshError)
    expect(error).toEqual(
      expect.objectContaining({ status, code, executionStatus: null, details: { issues: [] } }),
    )
  })

  it('does not repeat a call without a request id whose outcome is unknown', async () => {
    const { client, sent } = clientOf([hang])
    const error = await client.admin.createKey('acc-1', { scopes: ['read'] }).catch((e) => e)
    expect(sent).toHaveLength(1)
    expect(error).toEqual(
      expect.objectContaining({ code: 'timeout', status: 0, executionStatus: 'unknown' }),
    )
  })

  it('repeats a call without a request id after a 503 that says it was not executed', async () => {
    const { client, sent } = clientOf([
      async () => envelope(503, 'overloaded', { executionStatus: 'not_executed' }),
      async () => ok({ keyId: 'acc-1.0123456789abcdef0123', secret: 's' }),
    ])
    const answer = await client.admin.createKey('acc-1', { scopes: ['read'] })
    expect(sent).toHaveLength(2)
    expect(answer.value.secret).toBe('s')
  })

  it('reports an answer without an envelope as unexpected_response', async () => {
    const { client } = clientOf([
      async () => new Response('<html>bad gateway</html>', { status: 502 }),
    ])
    const error = await client.public.instruments().catch((e) => e)
    expect(error).toEqual(
      expect.objectContaining({ code: 'unexpected_response', status: 502, retryable: false }),
    )
    expect(error.message).toContain('bad gateway')
  })
})

describe('options', () => {
  it('refuses a client without nodes or without an attempt', () => {
    expect(() => createClient({ nodes: [] })).toThrow('at least one node URL')
    expect(() => createClient({ nodes, attemptsMax: 0 })).toThrow('attemptsMax must be')
  })
})

describe('requests as sent', () => {
  it('sends the admin token as a bearer and encodes path segments and queries', async () => {
    const { client, sent } = clientOf([
      async () => Response.json({ fills: [], nextCursor: null, reflects: {} }),
      async () => ok({ keyId: 'k', revokedAt: 1, node: 'a' }),
    ])
    await client.trading.fills({ limit: 10, cursor: 'c/1' })
    await client.admin.revokeKey('acc 1.x')
    expect(sent[0]!.url).toBe('http://a.test/v1/fills?limit=10&cursor=c%2F1')
    expect(sent[1]!.url).toBe('http://a.test/v1/admin/keys/acc%201.x')
    expect((sent[1]!.init.headers as Record<string, string>).authorization).toBe(
      'Bearer admin-token',
    )
    expect(sent[0]!.init.body).toBeUndefined()
  })
})
