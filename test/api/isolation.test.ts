// Account isolation: account A's keys walk every client route of the OpenAPI document against
// account B's ids (withdrawals, orders by id and by client order id, ledger and fill cursors, body
// and query fields naming B, B's key ids) and nothing crosses over: every read answers A's own
// data or a 4xx, no answer A gets holds any of B's ids, no write of A touches B, and B's whole view
// of itself is the same after the walk. Run for two accounts on different shards and for two on
// the same shard (where B's entries sit in the very document A's requests read).

import { beforeAll, describe, expect, it } from 'vitest'
import { shardOf } from '../../src/state/shard-of'
import { apiClient, type ApiClient } from '../support/api-client'
import {
  api,
  base,
  bindings,
  expectError,
  fetcher,
  setUpApiTests,
  shardCount,
  shardFingerprints,
  uid,
  type ApiKey,
  type Reply,
} from './helpers'

setUpApiTests()

type Party = {
  accountId: string
  key: ApiKey
  readKey: ApiKey
  withdrawalId: string
  openOrder: { orderId: string; clientOrderId: string }
  filledOrders: { orderId: string; clientOrderId: string }[]
  ledgerCursor: string
  fillsCursor: string
}

const mark = '60000'

/** An account id with the given prefix whose shard satisfies `wanted`. */
function accountIdOn(prefix: string, wanted: (shard: number) => boolean): string {
  for (;;) {
    const id = uid(prefix)
    if (wanted(shardOf(id, shardCount))) return id
  }
}

const order = (key: ApiKey, body: Record<string, unknown>, client: ApiClient = api) =>
  client.signed(key, 'POST', '/v1/orders', { instrument: 'BTC-PERP', ...body })

/** What the walk last sent (URL, headers and body), to tell echoed ids from leaked ones. */
let lastSent = ''
const walk = apiClient(
  (url, init) => {
    lastSent = `${url} ${JSON.stringify(init?.headers ?? {})} ${String(init?.body ?? '')}`
    return fetcher(url, init)
  },
  base,
  bindings.ADMIN_TOKEN,
)

async function createParty(accountId: string, counterparty: ApiKey, size: string) {
  const key = await api.fundedAccount(accountId, '100000')
  const read = await api.admin('POST', `/v1/admin/accounts/${accountId}/keys`, {
    scopes: ['read'],
  })
  expect(read.status).toBe(201)
  const withdrawalId = uid('wd')
  const withdrawn = await api.signed(key, 'POST', '/v1/withdrawals', {
    withdrawalId,
    asset: 'USD',
    amount: '12.5',
  })
  expect(withdrawn.status, JSON.stringify(withdrawn.body)).toBe(201)
  // Two fills against the counterparty, so the fills have a second page.
  const filledOrders = []
  for (let i = 0; i < 2; i++) {
    const rest = await order(counterparty, {
      clientOrderId: uid('cp'),
      side: 'sell',
      type: 'limit',
      price: mark,
      size,
    })
    expect(rest.body.status, JSON.stringify(rest.body)).toBe('open')
    const clientOrderId = uid('take')
    const take = await order(key, {
      clientOrderId,
      side: 'buy',
      type: 'limit',
      price: mark,
      size,
      timeInForce: 'IOC',
    })
    expect(take.body.status, JSON.stringify(take.body)).toBe('filled')
    filledOrders.push({ orderId: take.body.orderId as string, clientOrderId })
  }
  const openClientOrderId = uid('rest')
  const open = await order(key, {
    clientOrderId: openClientOrderId,
    side: 'buy',
    type: 'limit',
    price: '55000',
    size: '0.001',
  })
  expect(open.body.status).toBe('open')
  const ledger = await api.signed(key, 'GET', '/v1/ledger?limit=1')
  const fills = await api.signed(key, 'GET', '/v1/fills?limit=1')
  expect(typeof ledger.body.nextCursor).toBe('string')
  expect(typeof fills.body.nextCursor).toBe('string')
  return {
    accountId,
    key,
    readKey: { keyId: read.body.keyId, secret: read.body.secret },
    withdrawalId,
    openOrder: { orderId: open.body.orderId as string, clientOrderId: openClientOrderId },
    filledOrders,
    ledgerCursor: ledger.body.nextCursor as string,
    fillsCursor: fills.body.nextCursor as string,
  } satisfies Party
}

/** Drops what a read reflects (node time, digests): the rest is the account's data. */
const data = (body: unknown) =>
  JSON.parse(JSON.stringify(body), (key, value) => (key === 'reflects' ? undefined : value))

/** Everything B can read about itself. */
async function viewOf(party: Party) {
  const read = async (path: string) => {
    const reply = await api.signed(party.key, 'GET', path)
    expect(reply.status, `${path} ${JSON.stringify(reply.body)}`).toBe(200)
    return data(reply.body)
  }
  return {
    account: await read('/v1/account'),
    ledger: await read('/v1/ledger?limit=500'),
    positions: await read('/v1/positions'),
    fills: await read('/v1/fills?limit=500'),
    open: await read('/v1/orders?status=open'),
    withdrawal: await read(`/v1/withdrawals/${party.withdrawalId}`),
    orders: await Promise.all(
      [party.openOrder, ...party.filledOrders].map((o) => read(`/v1/orders/${o.orderId}`)),
    ),
    byClientId: await read(`/v1/orders?clientOrderId=${party.openOrder.clientOrderId}`),
  }
}

/** The ids of B that A must never be shown (unless A itself sent the string). */
async function secretsOf(party: Party): Promise<string[]> {
  const view = await viewOf(party)
  return [
    party.accountId,
    party.key.keyId,
    party.readKey.keyId,
    party.openOrder.orderId,
    ...party.filledOrders.map((o) => o.orderId),
    ...view.ledger.entries.map((e: { id: string }) => e.id),
    ...view.fills.fills.map((f: { fillId: string }) => f.fillId),
  ]
}

type Attempt = {
  /** The operation of the OpenAPI document this walks (`GET /v1/orders/{orderId}`). */
  op: string
  what: string
  send: () => Promise<Reply>
  /** What the answer must be; a 2xx must also hold only A's own data. */
  check: (reply: Reply) => void | Promise<void>
}

describe.each([
  ['on different shards', false],
  ['on the same shard', true],
])('account A against account B %s', (_, sameShard) => {
  let a: Party
  let b: Party
  let counterparty: ApiKey
  let signedOperations: string[]

  beforeAll(async () => {
    const markSet = await api.admin('POST', '/v1/admin/marks', {
      instrument: 'BTC-PERP',
      price: mark,
      ts: Date.now(),
    })
    expect(markSet.status).toBe(200)
    counterparty = await api.fundedAccount(uid('iso-c'), '1000000')
    const aId = accountIdOn('iso-a', () => true)
    const aShard = shardOf(aId, shardCount)
    const bId = accountIdOn('iso-b', (shard) => (shard === aShard) === sameShard)
    a = await createParty(aId, counterparty, '0.005')
    b = await createParty(bId, counterparty, '0.01')
    const doc = await api.plain('GET', '/v1/openapi.json')
    signedOperations = Object.entries<Record<string, { security?: object[] }>>(doc.body.paths)
      .flatMap(([path, ops]) =>
        Object.entries(ops)
          .filter(([, op]) => JSON.stringify(op.security ?? []).includes('signature'))
          .map(([method]) => `${method.toUpperCase()} ${path}`),
      )
      .sort()
  }, 60_000)

  it('the two accounts sit where the case says', () => {
    expect(shardOf(a.accountId, shardCount) === shardOf(b.accountId, shardCount)).toBe(sameShard)
  })

  it("walks every client route with A's key against B's ids: nothing crosses over", async () => {
    const bBefore = await viewOf(b)
    const aBefore = await viewOf(a)
    const secrets = await secretsOf(b)
    const bOrders = [b.openOrder, ...b.filledOrders]
    const notFound = (code: string) => (reply: Reply) => expectError(reply, { status: 404, code })
    const badCursor = (reply: Reply) => expectError(reply, { status: 400, code: 'invalid_cursor' })
    const unauthorized = (reply: Reply) => {
      expect(reply.status, JSON.stringify(reply.body)).toBe(401)
      expect(reply.body.error.code).toMatch(/^invalid_signature$|^invalid_api_key$/)
    }
    const isA = (reply: Reply) => {
      expect(reply.status, JSON.stringify(reply.body)).toBe(200)
      expect(reply.body.accountId).toBe(a.accountId)
    }
    const withdrawBody = (extra: Record<string, unknown>) => ({
      asset: 'USD',
      amount: '3.25',
      ...extra,
    })
    const attempts: Attempt[] = [
      {
        op: 'GET /v1/account',
        what: 'a query and a header naming B',
        send: () =>
          walk.signed(a.key, 'GET', `/v1/account?accountId=${b.accountId}`, undefined, {
            'X-Account-Id': b.accountId,
          }),
        check: (reply) => {
          isA(reply)
          expect(data(reply.body)).toEqual(aBefore.account)
        },
      },
      {
        op: 'GET /v1/account',
        what: "B's key id signed with A's secret",
        send: () => walk.signed({ keyId: b.key.keyId, secret: a.key.secret }, 'GET', '/v1/account'),
        check: unauthorized,
      },
      {
        op: 'GET /v1/account',
        what: "A's key id moved onto B's account",
        send: () =>
          walk.signed(
            {
              keyId: `${b.accountId}${a.key.keyId.slice(a.key.keyId.lastIndexOf('.'))}`,
              secret: a.key.secret,
            },
            'GET',
            '/v1/account',
          ),
        check: unauthorized,
      },
      {
        op: 'GET /v1/account/proof',
        what: 'a query and a header naming B',
        send: () =>
          walk.signed(a.key, 'GET', `/v1/account/proof?accountId=${b.accountId}`, undefined, {
            'X-Account-Id': b.accountId,
          }),
        check: (reply) => {
          // A's shard may have no checkpoint in force yet; a proof there is of A's leaf only.
          if (reply.status === 404) expect(reply.body.error.code).toBe('not_found')
          else expect(reply.body.leaf.accountId).toBe(a.accountId)
        },
      },
      {
        op: 'GET /v1/ledger',
        what: "B's ledger cursor",
        send: () => walk.signed(a.key, 'GET', `/v1/ledger?cursor=${b.ledgerCursor}`),
        check: badCursor,
      },
      {
        op: 'GET /v1/ledger',
        what: "B's fills cursor",
        send: () => walk.signed(a.key, 'GET', `/v1/ledger?cursor=${b.fillsCursor}`),
        check: badCursor,
      },
      {
        op: 'GET /v1/ledger',
        what: "a cursor rewritten to name A but positioned on B's entries",
        send: () => {
          const decoded = JSON.parse(atob(b.ledgerCursor))
          const forged = btoa(JSON.stringify({ ...decoded, a: a.accountId })).replace(/=+$/, '')
          return walk.signed(a.key, 'GET', `/v1/ledger?cursor=${forged}&limit=500`)
        },
        check: (reply) => {
          expect(reply.status, JSON.stringify(reply.body)).toBe(200)
          // Only A's entries, whatever the position.
          const own = new Set(aBefore.ledger.entries.map((e: { id: string }) => e.id))
          for (const entry of reply.body.entries) expect(own.has(entry.id), entry.id).toBe(true)
        },
      },
      {
        op: 'GET /v1/ledger',
        what: 'the whole ledger',
        send: () => walk.signed(a.key, 'GET', '/v1/ledger?limit=500'),
        check: (reply) => {
          expect(reply.status).toBe(200)
          expect(data(reply.body)).toEqual(aBefore.ledger)
        },
      },
      {
        op: 'GET /v1/positions',
        what: 'positions, with a query naming B',
        send: () => walk.signed(a.key, 'GET', `/v1/positions?accountId=${b.accountId}`),
        check: (reply) => {
          expect(reply.status).toBe(200)
          expect(data(reply.body)).toEqual(aBefore.positions)
          expect(reply.body.positions).toEqual([
            expect.objectContaining({ instrument: 'BTC-PERP', size: '0.01' }),
          ])
        },
      },
      {
        op: 'GET /v1/fills',
        what: "B's fills cursor",
        send: () => walk.signed(a.key, 'GET', `/v1/fills?cursor=${b.fillsCursor}`),
        check: badCursor,
      },
      {
        op: 'GET /v1/fills',
        what: "B's ledger cursor",
        send: () => walk.signed(a.key, 'GET', `/v1/fills?cursor=${b.ledgerCursor}`),
        check: badCursor,
      },
      {
        op: 'GET /v1/fills',
        what: 'every fill',
        send: () => walk.signed(a.key, 'GET', '/v1/fills?limit=500'),
        check: (reply) => {
          expect(reply.status).toBe(200)
          const ownOrders = new Set(a.filledOrders.map((o) => o.orderId))
          expect(reply.body.fills).toHaveLength(2)
          for (const fill of reply.body.fills) expect(ownOrders.has(fill.orderId)).toBe(true)
        },
      },
      ...bOrders.flatMap((o): Attempt[] => [
        {
          op: 'GET /v1/orders/{orderId}',
          what: `B's order ${o.orderId}`,
          send: () => walk.signed(a.key, 'GET', `/v1/orders/${o.orderId}`),
          check: notFound('not_found'),
        },
        {
          op: 'DELETE /v1/orders/{orderId}',
          what: `cancelling B's order ${o.orderId}`,
          send: () => walk.signed(a.key, 'DELETE', `/v1/orders/${o.orderId}`),
          check: notFound('not_found'),
        },
        {
          op: 'GET /v1/orders',
          what: `B's client order id ${o.clientOrderId}`,
          send: () => walk.signed(a.key, 'GET', `/v1/orders?clientOrderId=${o.clientOrderId}`),
          check: notFound('not_found'),
        },
      ]),
      {
        op: 'GET /v1/orders',
        what: 'open orders',
        send: () => walk.signed(a.key, 'GET', '/v1/orders?status=open'),
        check: (reply) => {
          expect(reply.status).toBe(200)
          expect(reply.body.orders.map((o: { orderId: string }) => o.orderId)).toEqual([
            a.openOrder.orderId,
          ])
        },
      },
      {
        op: 'GET /v1/withdrawals/{withdrawalId}',
        what: "B's withdrawal",
        send: () => walk.signed(a.key, 'GET', `/v1/withdrawals/${b.withdrawalId}`),
        check: notFound('not_found'),
      },
      {
        op: 'POST /v1/withdrawals',
        what: 'a body naming B',
        send: () =>
          walk.signed(
            a.key,
            'POST',
            '/v1/withdrawals',
            withdrawBody({ withdrawalId: uid('wd'), accountId: b.accountId }),
          ),
        check: (reply) => expectError(reply, { status: 400, code: 'validation_failed' }),
      },
      {
        op: 'POST /v1/withdrawals',
        what: "B's withdrawal id, with another amount: a new withdrawal of A, not a replay or a 409",
        send: () =>
          walk.signed(
            a.key,
            'POST',
            '/v1/withdrawals',
            withdrawBody({ withdrawalId: b.withdrawalId }),
          ),
        check: (reply) => {
          expect(reply.status, JSON.stringify(reply.body)).toBe(201)
          expect(reply.headers.get('idempotent-replayed')).toBeNull()
          expect(reply.body).toMatchObject({
            withdrawalId: b.withdrawalId,
            accountId: a.accountId,
            amount: '3.25',
          })
        },
      },
      {
        op: 'POST /v1/withdrawals',
        what: "B's withdrawal id as the Idempotency-Key, B's amount: A's own replay, never B's record",
        send: () =>
          walk.signed(a.key, 'POST', '/v1/withdrawals', withdrawBody({ amount: '3.25' }), {
            'Idempotency-Key': b.withdrawalId,
          }),
        check: (reply) => {
          // The previous attempt took this id for A: this replays A's, not B's.
          expect(reply.status, JSON.stringify(reply.body)).toBe(201)
          expect(reply.body).toMatchObject({ accountId: a.accountId, amount: '3.25' })
        },
      },
      {
        op: 'POST /v1/orders',
        what: 'a body naming B',
        send: () =>
          order(
            a.key,
            {
              clientOrderId: uid('x'),
              side: 'buy',
              type: 'limit',
              price: '55000',
              size: '0.001',
              accountId: b.accountId,
            },
            walk,
          ),
        check: (reply) => expectError(reply, { status: 400, code: 'validation_failed' }),
      },
      {
        op: 'POST /v1/orders',
        what: "B's open order's client order id, with another payload: A's own new order",
        send: () =>
          order(
            a.key,
            {
              clientOrderId: b.openOrder.clientOrderId,
              side: 'buy',
              type: 'limit',
              price: '54000',
              size: '0.002',
            },
            walk,
          ),
        check: (reply) => {
          expect(reply.status, JSON.stringify(reply.body)).toBe(201)
          expect(reply.headers.get('idempotent-replayed')).toBeNull()
          expect(reply.body.orderId).not.toBe(b.openOrder.orderId)
          expect(reply.body).toMatchObject({ status: 'open', price: '54000', size: '0.002' })
        },
      },
      {
        op: 'DELETE /v1/orders',
        what: 'cancel-all on the instrument B rests on',
        send: () => walk.signed(a.key, 'DELETE', '/v1/orders?instrument=BTC-PERP'),
        check: (reply) => {
          expect(reply.status, JSON.stringify(reply.body)).toBe(200)
          const cancelled = reply.body.cancelled.map((o: { orderId: string }) => o.orderId)
          expect(cancelled).toContain(a.openOrder.orderId)
          for (const o of bOrders) expect(cancelled).not.toContain(o.orderId)
          expect(cancelled).toHaveLength(2)
        },
      },
      {
        op: 'GET /v1/book/{instrument}',
        what: "the public book B's order rests in",
        send: () => walk.plain('GET', '/v1/book/BTC-PERP'),
        check: (reply) => expect(reply.status).toBe(200),
      },
    ]

    // Every client route of the document is walked.
    const walked = new Set(attempts.map((attempt) => attempt.op))
    for (const op of signedOperations) expect(walked.has(op), `${op} is walked`).toBe(true)

    const failures: string[] = []
    for (const attempt of attempts) {
      const reply = await attempt.send()
      try {
        await attempt.check(reply)
        // Nothing A is answered may carry B's ids, unless A sent that string itself.
        const text = JSON.stringify(reply.body)
        for (const secret of secrets) {
          if (text.includes(secret) && !lastSent.includes(secret)) {
            throw new Error(`the answer holds B's ${secret}: ${text.slice(0, 400)}`)
          }
        }
      } catch (error) {
        failures.push(`${attempt.op} (${attempt.what}): ${(error as Error).message.split('\n')[0]}`)
      }
    }
    expect(failures).toEqual([])

    // B sees exactly what it saw before the walk.
    expect(await viewOf(b)).toEqual(bBefore)
  })

  it("B's keys cannot read A either, and a revoked or read-only key of A writes nothing", async () => {
    const before = await shardFingerprints()
    const reads = await api.signed(a.readKey, 'POST', '/v1/withdrawals', {
      withdrawalId: uid('wd'),
      asset: 'USD',
      amount: '1',
    })
    expectError(reads, { status: 403, code: 'insufficient_scope' })
    const cancel = await api.signed(a.readKey, 'DELETE', `/v1/orders/${b.openOrder.orderId}`)
    expectError(cancel, { status: 403, code: 'insufficient_scope' })
    const crossRead = await api.signed(b.key, 'GET', `/v1/withdrawals/${a.withdrawalId}`)
    expectError(crossRead, { status: 404, code: 'not_found' })
    expect(await shardFingerprints()).toEqual(before)
  })
})
