// Bad input on the trading routes: every malformed order, mark, book query, order listing, fills
// cursor and cancel gets the one error envelope (status, code, message, retryable, request id) and
// changes nothing: no shard and no market replica moves, no client order id is taken, no mark is
// recorded. Then the refusals the matcher makes (reduce-only, FOK) through the API, and a market
// order that waits for a mark.

import { beforeAll, describe, expect, it } from 'vitest'
import * as instruments from '../../src/domain/instrument'
import { btc } from '../support/instruments'
import {
  api,
  expectError,
  expectRejectedUnchanged,
  marketReplica,
  newAccount,
  newKey,
  setUpApiTests,
  uid,
  type ApiKey,
  type Reply,
} from './helpers'

setUpApiTests()

let markTs = Date.now()
const postMark = (instrument: string, price: string) =>
  api.admin('POST', '/v1/admin/marks', { instrument, price, ts: ++markTs })
const place = (key: ApiKey, body: unknown) => api.signed(key, 'POST', '/v1/orders', body)
const book = async (symbol: string) => {
  const reply = await api.plain('GET', `/v1/book/${symbol}`)
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return { bids: reply.body.bids, asks: reply.body.asks }
}
const positions = async (key: ApiKey) => {
  const reply = await api.signed(key, 'GET', '/v1/positions')
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply.body.positions
}
const byClientId = async (key: ApiKey, clientOrderId: string) => {
  const reply = await api.signed(key, 'GET', `/v1/orders?clientOrderId=${clientOrderId}`)
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply.body.orders[0]
}

/** A valid BTC-PERP buy that would rest below the book; `undefined` in `patch` drops a field. */
const orderBody = (patch: Record<string, unknown> = {}) => {
  const body: Record<string, unknown> = {
    clientOrderId: uid('o'),
    instrument: 'BTC-PERP',
    side: 'buy',
    type: 'limit',
    price: '56000',
    size: '0.01',
    ...patch,
  }
  for (const [field, value] of Object.entries(patch)) if (value === undefined) delete body[field]
  return body
}

/** The node's mark of `symbol` as its market replica keeps it (null before the first). */
const markOf = async (symbol: string) => {
  const mark = await marketReplica(symbol).mark()
  return mark === null ? null : { price: String(mark.price), ts: mark.ts }
}

let aliceId: string
let alice: ApiKey
let bob: ApiKey
/** Bob's resting BTC ask (0.5 at 61000, 0.01 of it filled by alice in setup). */
let bobAskId: string
/** Alice's resting BTC bid (0.1 at 59000). */
let aliceBidId: string
/** Alice's filled IOC buy (her 0.01 long). */
const aliceTakeClientId = 'alice-take'

beforeAll(async () => {
  ;({ accountId: aliceId, key: alice } = await newAccount('100000', ['read', 'trade'], 'alice'))
  bob = (await newAccount('100000', ['read', 'trade'], 'bob')).key
  expect((await postMark('BTC-PERP', '60000')).status).toBe(200)
  const ask = await place(bob, {
    clientOrderId: 'bob-ask',
    instrument: 'BTC-PERP',
    side: 'sell',
    type: 'limit',
    price: '61000',
    size: '0.5',
  })
  expect(ask.status, JSON.stringify(ask.body)).toBe(201)
  bobAskId = ask.body.orderId
  const bid = await place(alice, {
    clientOrderId: 'alice-bid',
    instrument: 'BTC-PERP',
    side: 'buy',
    type: 'limit',
    price: '59000',
    size: '0.1',
  })
  expect(bid.status, JSON.stringify(bid.body)).toBe(201)
  aliceBidId = bid.body.orderId
  const take = await place(alice, {
    clientOrderId: aliceTakeClientId,
    instrument: 'BTC-PERP',
    side: 'buy',
    type: 'limit',
    price: '61000',
    size: '0.01',
    timeInForce: 'IOC',
  })
  expect(take.body).toMatchObject({ status: 'filled', filledSize: '0.01' })
})

describe('order bodies', () => {
  it('the base body is a valid order (so each refusal below is its patch alone)', async () => {
    const placed = await place(alice, orderBody())
    expect(placed.status, JSON.stringify(placed.body)).toBe(201)
    expect(placed.body).toMatchObject({ status: 'open', price: '56000', size: '0.01' })
    const cancelled = await api.signed(alice, 'DELETE', `/v1/orders/${placed.body.orderId}`)
    expect(cancelled.body.status).toBe('cancelled')
  })

  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    // Amounts are decimal strings on the instrument's grid.
    [
      'price as a JSON number',
      { price: 50000 },
      'validation_failed',
      /price must be a decimal string/,
    ],
    ['size as a JSON number', { size: 0.01 }, 'validation_failed', /size must be a decimal string/],
    ['price with an exponent', { price: '5e4' }, 'invalid_price', /^price: .*no exponent/],
    ['size with an exponent', { size: '1e-2' }, 'invalid_size', /^size: .*no exponent/],
    ['price with too many decimals', { price: '50000.25' }, 'invalid_price', /more than 1 decimal/],
    ['size with too many decimals', { size: '0.0101' }, 'invalid_size', /more than 3 decimal/],
    [
      'price off the tick grid',
      { price: '50000.3' },
      'invalid_price',
      /multiple of the tick size 0\.5/,
    ],
    [
      'size below the minimum and the lot',
      { size: '0.0005' },
      'invalid_size',
      /more than 3 decimal/,
    ],
    ['zero price', { price: '0' }, 'invalid_price', /must be positive/],
    ['zero size', { size: '0.000' }, 'invalid_size', /must be positive/],
    ['negative price', { price: '-50000' }, 'invalid_price', /must not be negative/],
    ['negative size', { size: '-0.01' }, 'invalid_size', /must not be negative/],
    ['price with leading zeros', { price: '050000' }, 'invalid_price', /not a plain decimal/],
    ['price beyond the limit', { price: '10000000000000' }, 'invalid_price', /exceeds the limit/],
    ['size beyond the limit', { size: '10000000000' }, 'invalid_size', /exceeds the limit/],
    ['an empty size', { size: '' }, 'invalid_size', /1 to 40 characters/],
    ['a 41-character price', { price: '1'.repeat(41) }, 'validation_failed', /price/],
    // Order types and their time in force.
    [
      'a limit order without a price',
      { price: undefined },
      'validation_failed',
      /a limit order needs a price/,
    ],
    [
      'a market order with a price',
      { type: 'market' },
      'validation_failed',
      /a market order takes no price/,
    ],
    [
      'a market GTC order',
      { type: 'market', price: undefined, timeInForce: 'GTC' },
      'validation_failed',
      /a market order is IOC or FOK/,
    ],
    [
      'a market POST_ONLY order',
      { type: 'market', price: undefined, timeInForce: 'POST_ONLY' },
      'validation_failed',
      /a market order is IOC or FOK/,
    ],
    [
      'an unknown time in force',
      { timeInForce: 'DAY' },
      'validation_failed',
      /timeInForce is GTC, IOC, FOK or POST_ONLY/,
    ],
    [
      'a lower-case time in force',
      { timeInForce: 'gtc' },
      'validation_failed',
      /timeInForce is GTC/,
    ],
    ['an unknown side', { side: 'long' }, 'validation_failed', /side is "buy" or "sell"/],
    ['an unknown type', { type: 'stop' }, 'validation_failed', /type is "limit" or "market"/],
    [
      'reduceOnly as a string',
      { reduceOnly: 'true' },
      'validation_failed',
      /reduceOnly must be true or false/,
    ],
    [
      'reduceOnly as a number',
      { reduceOnly: 1 },
      'validation_failed',
      /reduceOnly must be true or false/,
    ],
    // Fields.
    ['an unknown field', { leverage: '10' }, 'validation_failed', /leverage/],
    ['a missing clientOrderId', { clientOrderId: undefined }, 'validation_failed', /clientOrderId/],
    ['a missing size', { size: undefined }, 'validation_failed', /size/],
    ['a missing side', { side: undefined }, 'validation_failed', /side/],
    ['a missing instrument', { instrument: undefined }, 'validation_failed', /instrument/],
    [
      'a clientOrderId with a space',
      { clientOrderId: 'bad id' },
      'validation_failed',
      /clientOrderId may hold letters, digits/,
    ],
    [
      'a clientOrderId with a slash',
      { clientOrderId: 'a/b' },
      'validation_failed',
      /clientOrderId may hold letters/,
    ],
    [
      'a clientOrderId starting with a dash',
      { clientOrderId: '-a' },
      'validation_failed',
      /starting with a letter or digit/,
    ],
    [
      'an empty clientOrderId',
      { clientOrderId: '' },
      'validation_failed',
      /clientOrderId must not be empty/,
    ],
    [
      'a 65-character clientOrderId',
      { clientOrderId: 'x'.repeat(65) },
      'validation_failed',
      /clientOrderId must have at most 64 characters/,
    ],
    [
      'a numeric clientOrderId',
      { clientOrderId: 7 },
      'validation_failed',
      /clientOrderId must be a string/,
    ],
    // Instruments.
    [
      'an unknown instrument',
      { instrument: 'DOGE-PERP' },
      'unknown_instrument',
      /no instrument DOGE-PERP; listed: BTC-PERP, ETH-PERP/,
    ],
    [
      'a lower-case instrument',
      { instrument: 'btc-perp' },
      'unknown_instrument',
      /no instrument btc-perp/,
    ],
    [
      'a 33-character instrument',
      { instrument: 'X'.repeat(33) },
      'validation_failed',
      /instrument/,
    ],
  ]

  it.each(cases)('refuses %s, and takes nothing', async (_name, patch, code, message) => {
    const body = orderBody(patch)
    const reply = await expectRejectedUnchanged(() => place(alice, body), { status: 400, code })
    expect(reply.body.error.message).toMatch(message)
    // The refused client order id was not taken: nothing is found under it.
    if (
      typeof body.clientOrderId === 'string' &&
      /^[A-Za-z0-9][\w-]{0,63}$/.test(body.clientOrderId)
    ) {
      const read = await api.signed(alice, 'GET', `/v1/orders?clientOrderId=${body.clientOrderId}`)
      expectError(read, { status: 404, code: 'not_found' })
    }
  })

  it('refuses a body that is not an object', async () => {
    for (const body of ['[]', '"order"', 'null', '42']) {
      const reply = await expectRejectedUnchanged(() => place(alice, body), {
        status: 400,
        code: 'validation_failed',
      })
      expect(reply.body.error.message.length).toBeGreaterThan(0)
    }
  })

  it('applies the lot grid and the minimum size (told apart on an instrument where they differ)', () => {
    // The node's catalog has lot = minimum = 10^-decimals, so through the API an off-lot or
    // below-minimum size is a too-many-decimals or zero size (refused above). The rule the order
    // route applies is the same parser; on a catalog where they differ it names each.
    const coarse = instruments.define({
      ...btc.spec,
      symbol: 'TEST-PERP',
      lotSize: '0.005',
      minSize: '0.01',
    })
    const offLot = instruments.parseSize(coarse, '0.012')
    expect(offLot).toMatchObject({ ok: false, code: 'invalid_size' })
    expect(!offLot.ok && offLot.message).toMatch(/multiple of the lot size 0\.005/)
    const belowMin = instruments.parseSize(coarse, '0.005')
    expect(belowMin).toMatchObject({ ok: false, code: 'invalid_size' })
    expect(!belowMin.ok && belowMin.message).toMatch(/below the minimum 0\.01/)
    expect(instruments.parseSize(coarse, '0.015')).toEqual({ ok: true, value: 15n })
  })
})

describe('scopes', () => {
  it('refuses a key without "trade" placing, cancelling one or cancelling all', async () => {
    const readOnly = await newKey(aliceId, ['read'])
    const placed = await expectRejectedUnchanged(() => place(readOnly, orderBody()), {
      status: 403,
      code: 'insufficient_scope',
    })
    expect(placed.body.error.message).toMatch(/"trade"/)
    const cancel = await expectRejectedUnchanged(
      () => api.signed(readOnly, 'DELETE', `/v1/orders/${aliceBidId}`),
      { status: 403, code: 'insufficient_scope' },
    )
    expect(cancel.body.error.message).toMatch(/"trade"/)
    await expectRejectedUnchanged(
      () => api.signed(readOnly, 'DELETE', '/v1/orders?instrument=BTC-PERP'),
      { status: 403, code: 'insufficient_scope' },
    )
    // The bid still rests.
    const bid = await api.signed(alice, 'GET', `/v1/orders/${aliceBidId}`)
    expect(bid.body).toMatchObject({ status: 'open', remainingSize: '0.1' })
  })

  it('refuses a key without "read" listing, reading orders, positions or fills', async () => {
    const tradeOnly = await newKey(aliceId, ['trade'])
    for (const path of [
      '/v1/orders?status=open',
      `/v1/orders?clientOrderId=${aliceTakeClientId}`,
      `/v1/orders/${aliceBidId}`,
      '/v1/positions',
      '/v1/fills',
    ]) {
      const reply = await expectRejectedUnchanged(() => api.signed(tradeOnly, 'GET', path), {
        status: 403,
        code: 'insufficient_scope',
      })
      expect(reply.body.error.message, path).toMatch(/"read"/)
    }
  })
})

describe('marks', () => {
  const send = (body: unknown, headers?: Record<string, string>) =>
    api.admin('POST', '/v1/admin/marks', body, headers)
  const good = () => ({ instrument: 'BTC-PERP', price: '60500', ts: markTs + 1_000 })

  it('refuses a caller without the admin token, and records nothing', async () => {
    const before = await markOf('BTC-PERP')
    const body = JSON.stringify(good())
    await expectRejectedUnchanged(
      () => api.raw('POST', '/v1/admin/marks', { 'content-type': 'application/json' }, body),
      { status: 401, code: 'missing_admin_token' },
    )
    await expectRejectedUnchanged(
      () => send(body, { authorization: 'Bearer not-the-token-0123456789' }),
      { status: 401, code: 'invalid_admin_token' },
    )
    // A client's signed request is not an operator's.
    await expectRejectedUnchanged(() => api.signed(alice, 'POST', '/v1/admin/marks', good()), {
      status: 401,
      code: 'missing_admin_token',
    })
    expect(await markOf('BTC-PERP')).toEqual(before)
  })

  const cases: [string, Record<string, unknown>, number, string, RegExp][] = [
    // An instrument named in a body is a 400 (a 404 is for one named in the path), like orders.
    [
      'an unknown instrument',
      { instrument: 'DOGE-PERP' },
      400,
      'unknown_instrument',
      /no instrument DOGE-PERP/,
    ],
    [
      'a price off the tick grid',
      { price: '60000.3' },
      400,
      'invalid_price',
      /multiple of the tick size 0\.5/,
    ],
    [
      'a price as a JSON number',
      { price: 60000 },
      400,
      'validation_failed',
      /price must be a decimal string/,
    ],
    ['a zero price', { price: '0' }, 400, 'invalid_price', /must be positive/],
    ['a price with an exponent', { price: '6e4' }, 400, 'invalid_price', /no exponent/],
    ['a fractional ts', { ts: 1.5 }, 400, 'validation_failed', /^ts: /],
    [
      'a ts as a string',
      { ts: String(Date.now()) },
      400,
      'validation_failed',
      /ts must be milliseconds/,
    ],
    ['a zero ts', { ts: 0 }, 400, 'validation_failed', /^ts: /],
    ['a negative ts', { ts: -5 }, 400, 'validation_failed', /^ts: /],
    ['a missing ts', { ts: undefined }, 400, 'validation_failed', /ts must be milliseconds/],
    ['an unknown field', { source: 'feed' }, 400, 'validation_failed', /source/],
  ]

  it.each(cases)('refuses %s, and records nothing', async (_name, patch, status, code, message) => {
    const body: Record<string, unknown> = { ...good(), ...patch }
    for (const [field, value] of Object.entries(patch)) if (value === undefined) delete body[field]
    // The market fingerprint holds the latest mark: an unchanged one proves none was recorded.
    const reply = await expectRejectedUnchanged(() => send(body), { status, code })
    expect(reply.body.error.message).toMatch(message)
  })
})

describe('book reads', () => {
  it('answers 404 for an unknown instrument in the path', async () => {
    const reply = await expectRejectedUnchanged(() => api.plain('GET', '/v1/book/DOGE-PERP'), {
      status: 404,
      code: 'unknown_instrument',
    })
    expect(reply.body.error.message).toMatch(/no instrument DOGE-PERP; listed: /)
  })

  it.each([
    ['0', /levels must be at least 1/],
    ['101', /levels must be at most 100/],
    ['x', /levels must be a whole number/],
    ['1e2', /levels must be a whole number/],
    ['-1', /levels must be a whole number/],
    ['1.5', /levels must be a whole number/],
    ['', /levels must be a whole number/],
  ])('refuses levels=%s', async (levels, message) => {
    const reply = await expectRejectedUnchanged(
      () => api.plain('GET', `/v1/book/BTC-PERP?levels=${levels}`),
      { status: 400, code: 'validation_failed' },
    )
    expect(reply.body.error.message).toMatch(message)
  })

  it('refuses an unknown query parameter, and reads 1 and 100 levels', async () => {
    await expectRejectedUnchanged(() => api.plain('GET', '/v1/book/BTC-PERP?depth=5'), {
      status: 400,
      code: 'validation_failed',
    })
    for (const levels of ['1', '100']) {
      const reply = await api.plain('GET', `/v1/book/BTC-PERP?levels=${levels}`)
      expect(reply.status).toBe(200)
      expect(reply.body.asks[0]).toMatchObject({ price: '61000', orders: 1 })
    }
  })
})

describe('order listings, fills and cancels', () => {
  const get = (path: string) => api.signed(alice, 'GET', path)

  it('refuses a listing with neither clientOrderId nor status=open', async () => {
    const reply = await expectRejectedUnchanged(() => get('/v1/orders'), {
      status: 400,
      code: 'validation_failed',
    })
    expect(reply.body.error.message).toMatch(/query by clientOrderId or status=open/)
  })

  it.each([
    ['an unknown parameter', '/v1/orders?foo=1', /foo/],
    [
      'an unknown parameter beside status=open',
      '/v1/orders?status=open&instrument=BTC-PERP',
      /instrument/,
    ],
    ['an unknown status', '/v1/orders?status=closed', /status filter supports "open"/],
    ['a bad clientOrderId', '/v1/orders?clientOrderId=a%2Fb', /clientOrderId may hold/],
  ])('refuses %s', async (_name, path, message) => {
    const reply = await expectRejectedUnchanged(() => get(path), {
      status: 400,
      code: 'validation_failed',
    })
    expect(reply.body.error.message).toMatch(message)
  })

  it('refuses clientOrderId and status=open together (they select different things)', async () => {
    // alice-take is filled: answering it to a status=open query would show a closed order as open.
    await expectRejectedUnchanged(
      () => get(`/v1/orders?clientOrderId=${aliceTakeClientId}&status=open`),
      { status: 400, code: 'validation_failed' },
    )
  })

  it("refuses another account's fills cursor, and a cursor this API never returned", async () => {
    // A second fill, so that alice's first page of one has a next cursor.
    const extra = await place(alice, {
      clientOrderId: 'alice-take-2',
      instrument: 'BTC-PERP',
      side: 'buy',
      type: 'limit',
      price: '61000',
      size: '0.01',
      timeInForce: 'IOC',
    })
    expect(extra.body.status).toBe('filled')
    const page = await get('/v1/fills?limit=1')
    expect(page.body.fills).toHaveLength(1)
    const cursor = page.body.nextCursor as string
    expect(cursor).toEqual(expect.any(String))
    const stolen = await expectRejectedUnchanged(
      () => api.signed(bob, 'GET', `/v1/fills?cursor=${encodeURIComponent(cursor)}`),
      { status: 400, code: 'invalid_cursor' },
    )
    expect(stolen.body.error.message).toMatch(/for this account/)
    await expectRejectedUnchanged(() => get('/v1/fills?cursor=not-a-cursor'), {
      status: 400,
      code: 'invalid_cursor',
    })
    await expectRejectedUnchanged(() => get(`/v1/fills?cursor=${'A'.repeat(513)}`), {
      status: 400,
      code: 'validation_failed',
    })
    // alice's own cursor pages her fills.
    const next = await get(`/v1/fills?cursor=${encodeURIComponent(cursor)}`)
    expect(next.status).toBe(200)
    expect(next.body.fills).toEqual([expect.objectContaining({ side: 'buy', size: '0.01' })])
    expect(next.body.nextCursor).toBeNull()
  })

  it('refuses cancel-all for an unknown or missing instrument, and cancels nothing', async () => {
    const unknown = await expectRejectedUnchanged(
      () => api.signed(alice, 'DELETE', '/v1/orders?instrument=DOGE-PERP'),
      { status: 400, code: 'unknown_instrument' },
    )
    expect(unknown.body.error.message).toMatch(/no instrument DOGE-PERP/)
    await expectRejectedUnchanged(() => api.signed(alice, 'DELETE', '/v1/orders'), {
      status: 400,
      code: 'validation_failed',
    })
    await expectRejectedUnchanged(
      () => api.signed(alice, 'DELETE', '/v1/orders?instrument=BTC-PERP&side=buy'),
      { status: 400, code: 'validation_failed' },
    )
    expect((await api.signed(alice, 'GET', `/v1/orders/${aliceBidId}`)).body.status).toBe('open')
  })

  it("refuses to cancel an unknown order or another account's order", async () => {
    await expectRejectedUnchanged(() => api.signed(alice, 'DELETE', '/v1/orders/no-such-order'), {
      status: 404,
      code: 'not_found',
    })
    await expectRejectedUnchanged(() => api.signed(alice, 'DELETE', `/v1/orders/${bobAskId}`), {
      status: 404,
      code: 'not_found',
    })
  })
})

describe('decisions the matcher refuses', () => {
  it('answers a reduce-only order with no position 422 reduce_only_would_increase', async () => {
    const { key: carol } = await newAccount('100000', ['read', 'trade'], 'carol')
    const before = await book('BTC-PERP')
    for (const [clientOrderId, patch] of [
      ['carol-ro-sell', { side: 'sell', price: '64000' }],
      ['carol-ro-buy', { side: 'buy', price: '56000' }],
      ['carol-ro-market', { side: 'sell', type: 'market', price: undefined }],
    ] as const) {
      const reply = await place(carol, orderBody({ clientOrderId, reduceOnly: true, ...patch }))
      expectError(reply, { status: 422, code: 'reduce_only_would_increase' })
      expect(reply.body.error.order).toMatchObject({
        clientOrderId,
        status: 'rejected',
        reason: 'reduce_only_would_increase',
        filledSize: '0',
        remainingSize: '0',
      })
      expect(await byClientId(carol, clientOrderId)).toMatchObject({ status: 'rejected' })
    }
    expect(await book('BTC-PERP')).toEqual(before)
    expect(await positions(carol)).toEqual([])
  })

  it('refuses a reduce-only order that would grow a position, and caps one that reduces it', async () => {
    // alice is long (she bought from bob in the setup).
    const [long] = await positions(alice)
    expect(long).toMatchObject({ instrument: 'BTC-PERP' })
    const held = long.size as string
    const grow = await place(alice, orderBody({ side: 'buy', reduceOnly: true }))
    expectError(grow, { status: 422, code: 'reduce_only_would_increase' })
    const reduce = await place(
      alice,
      orderBody({ side: 'sell', price: '65000', size: '1', reduceOnly: true }),
    )
    expect(reduce.status, JSON.stringify(reduce.body)).toBe(201)
    // Capped at the position: only what closes it rests.
    expect(reduce.body).toMatchObject({ status: 'open', size: '1', remainingSize: held })
    const cancelled = await api.signed(alice, 'DELETE', `/v1/orders/${reduce.body.orderId}`)
    expect(cancelled.body.status).toBe('cancelled')
  })

  it('answers an unfillable FOK 422 fok_not_fillable: rejected, the book unchanged', async () => {
    const before = await book('BTC-PERP')
    const held = await positions(alice)
    expect(before.asks[0]).toMatchObject({ price: '61000' })
    const reply = await place(
      alice,
      orderBody({ clientOrderId: 'alice-fok', price: '61000', size: '1', timeInForce: 'FOK' }),
    )
    expectError(reply, { status: 422, code: 'fok_not_fillable' })
    expect(reply.body.error.order).toMatchObject({
      clientOrderId: 'alice-fok',
      status: 'rejected',
      reason: 'fok_not_fillable',
      filledSize: '0',
    })
    expect(await book('BTC-PERP')).toEqual(before)
    expect(await positions(alice)).toEqual(held)
    expect(await byClientId(alice, 'alice-fok')).toMatchObject({ status: 'rejected' })
    // A FOK market order larger than the book is refused the same way.
    const market = await place(
      alice,
      orderBody({ type: 'market', price: undefined, size: '5', timeInForce: 'FOK' }),
    )
    expectError(market, { status: 422, code: 'fok_not_fillable' })
    expect(await book('BTC-PERP')).toEqual(before)
  })
})

describe('a market order before any mark', () => {
  it('is 503 mark_unavailable, not executed, and leaves its clientOrderId free', async () => {
    expect(await markOf('ETH-PERP')).toBeNull()
    // No order is taken before a mark: the price band and the margin are measured from it.
    const askBody = {
      clientOrderId: 'bob-eth-ask',
      instrument: 'ETH-PERP',
      side: 'sell',
      type: 'limit',
      price: '3000',
      size: '1',
    }
    await expectRejectedUnchanged(() => place(bob, askBody), {
      status: 503,
      code: 'mark_unavailable',
      retryable: true,
    })
    const body = {
      clientOrderId: 'alice-eth-market',
      instrument: 'ETH-PERP',
      side: 'buy',
      type: 'market',
      size: '0.5',
    }
    const before = await book('ETH-PERP')
    const refused: Reply = await expectRejectedUnchanged(() => place(alice, body), {
      status: 503,
      code: 'mark_unavailable',
      retryable: true,
    })
    expect(refused.body.error).toMatchObject({ executionStatus: 'not_executed' })
    expect(refused.body.error.message).toMatch(/ETH-PERP/)
    expect(await book('ETH-PERP')).toEqual(before)
    expectError(await api.signed(alice, 'GET', '/v1/orders?clientOrderId=alice-eth-market'), {
      status: 404,
      code: 'not_found',
    })

    expect((await postMark('ETH-PERP', '3000')).status).toBe(200)
    const ask = await place(bob, askBody)
    expect(ask.status, JSON.stringify(ask.body)).toBe(201)
    const placed = await place(alice, body)
    expect(placed.status, JSON.stringify(placed.body)).toBe(201)
    expect(placed.headers.get('Idempotent-Replayed')).toBeNull()
    expect(placed.body).toMatchObject({
      clientOrderId: 'alice-eth-market',
      status: 'filled',
      filledSize: '0.5',
      averageFillPrice: '3000',
    })
    expect(await book('ETH-PERP')).toEqual({
      bids: [],
      asks: [{ price: '3000', size: '0.5', orders: 1 }],
    })
  })
})
