// Client orders. `clientOrderId` is unique per account for its whole history: the same id and
// payload replays the stored answer, another payload is a 409. Matching runs on the instrument's
// home node: an order reaching another node is forwarded there, or refused 503 not_executed when
// the home node is unreachable. A cancel is recorded where it arrives and takes effect when the
// matcher sees it: 200 when it did at once, 202 `cancel_requested` when it will.

import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { NodeConfig } from '../../config'
import * as instruments from '../../domain/instrument'
import type { TimeInForce } from '../../domain/matcher'
import { accountStub, marketStub } from '../../replica/addressing'
import type { CancelInput, OrderInput } from '../../state/market-doc'
import type { CancelOutcome } from '../../replica/market-replica'
import type { OrderView } from '../../state/market-state'
import { orderIdOf } from '../../state/shard-doc'
import { ApiError, fromRejection } from '../api-error'
import type { AppEnv } from '../app-env'
import { signedRequest } from '../middleware/signed-request'
import { createRouter, errorsOf, json, reflecting, requestDigest, unwrap } from '../router'
import * as trading from '../trading-schemas'
import { orderWire } from '../trading-wire'
import { listed } from './market'
import * as clock from '../../clock'

const security = [{ apiKey: [], timestamp: [], signature: [] }]

const placeOrder = createRoute({
  method: 'post',
  path: '/v1/orders',
  tags: ['orders'],
  summary: 'Place an order (checked against available balance, matched at the home node)',
  security,
  middleware: [signedRequest('trade')] as const,
  request: {
    body: { content: { 'application/json': { schema: trading.OrderBody } }, required: true },
  },
  responses: {
    201: json(trading.OrderReply, 'decided by the matcher (or replayed)'),
    ...errorsOf(400, 413, 415, 401, 403, 409, 422, 503, 429),
  },
})

const getOrder = createRoute({
  method: 'get',
  path: '/v1/orders/{orderId}',
  tags: ['orders'],
  summary: 'One order of the caller',
  security,
  middleware: [signedRequest('read')] as const,
  request: { params: z.object({ orderId: z.string().max(64) }) },
  responses: { 200: json(trading.OrderReply, 'the order'), ...errorsOf(401, 403, 404, 503, 429) },
})

const listOrders = createRoute({
  method: 'get',
  path: '/v1/orders',
  tags: ['orders'],
  summary: 'The order with a clientOrderId, or every open order',
  security,
  middleware: [signedRequest('read')] as const,
  request: { query: trading.OrdersQuery },
  responses: {
    200: json(trading.OrderList, 'orders'),
    ...errorsOf(400, 401, 403, 404, 503, 429),
  },
})

const cancelOrder = createRoute({
  method: 'delete',
  path: '/v1/orders/{orderId}',
  tags: ['orders'],
  summary: 'Cancel a resting order (cancelling a cancelled order replays)',
  security,
  middleware: [signedRequest('trade')] as const,
  request: { params: z.object({ orderId: z.string().max(64) }) },
  responses: {
    200: json(trading.OrderReply, 'cancelled'),
    202: json(
      trading.CancelRequestedReply,
      'recorded here; takes effect when the home node matcher sees it',
    ),
    ...errorsOf(401, 403, 404, 422, 503, 429),
  },
})

const cancelAll = createRoute({
  method: 'delete',
  path: '/v1/orders',
  tags: ['orders'],
  summary: 'Cancel every resting order of the caller on one instrument',
  security,
  middleware: [signedRequest('trade')] as const,
  request: { query: trading.CancelAllQuery },
  responses: {
    200: json(
      trading.CancelAllReply,
      'what was cancelled, and what was recorded for the home node matcher',
    ),
    ...errorsOf(400, 401, 403, 404, 503, 429),
  },
})

type OrderBody = z.infer<typeof trading.OrderBody>

/** Checks an order's shape against its instrument and returns its canonical wire input. */
function orderInput(
  config: NodeConfig,
  accountId: string,
  body: OrderBody,
): OrderInput & { instrument: string } {
  const instrument = listed(config, body.instrument, 400)
  if (body.type === 'limit' && body.price === undefined) {
    throw new ApiError(400, 'validation_failed', 'a limit order needs a price')
  }
  if (body.type === 'market' && body.price !== undefined) {
    throw new ApiError(400, 'validation_failed', 'a market order takes no price')
  }
  const timeInForce: TimeInForce = body.timeInForce ?? (body.type === 'market' ? 'IOC' : 'GTC')
  if (body.type === 'market' && timeInForce !== 'IOC' && timeInForce !== 'FOK') {
    throw new ApiError(400, 'validation_failed', 'a market order is IOC or FOK')
  }
  const size = instruments.parseSize(instrument, body.size)
  if (!size.ok) throw new ApiError(400, size.code, size.message)
  let price: string | null = null
  if (body.price !== undefined) {
    const parsed = instruments.parsePrice(instrument, body.price)
    if (!parsed.ok) throw new ApiError(400, parsed.code, parsed.message)
    price = instruments.formatPrice(instrument, parsed.value)
  }
  return {
    kind: 'order',
    instrument: instrument.symbol,
    orderId: orderIdOf(accountId, body.clientOrderId),
    clientOrderId: body.clientOrderId,
    accountId,
    side: body.side,
    type: body.type,
    price,
    size: instruments.formatSize(instrument, size.value),
    timeInForce,
    reduceOnly: body.reduceOnly ?? false,
    receivedAt: clock.now(),
  }
}

/** A matcher-rejected order is answered 422 with its reason; any other state as the order. */
const answerOrder = (c: Context<AppEnv>, symbol: string, view: OrderView) => {
  const order = orderWire(c.var.config, symbol, view)
  if (view.status === 'rejected') {
    throw new ApiError(
      422,
      view.reason ?? 'rejected',
      `the matcher rejected the order: ${view.reason}`,
      {
        details: { order },
      },
    )
  }
  return order
}

export const orderRoutes = createRouter()
  .openapi(placeOrder, async (c) => {
    const { accountId } = c.var.caller
    const body = c.req.valid('json')
    const input = orderInput(c.var.config, accountId, body)
    const { receivedAt: _receivedAt, ...payload } = input
    const digest = await requestDigest(
      Object.fromEntries(Object.entries(payload).map(([k, v]) => [k, String(v)])),
    )
    const placed = await accountStub(c.env, c.var.config, accountId).placeOrder(
      { ...input, requestDigest: digest },
      body.durability ?? 'local',
    )
    if (!placed.ok) throw fromRejection(placed)
    if (placed.value.replayed) c.header('Idempotent-Replayed', 'true')
    const order = answerOrder(c, input.instrument, placed.value.view)
    return c.json({ ...order, reflects: reflecting(c, [placed.value.reflects]) }, 201)
  })
  .openapi(getOrder, async (c) => {
    const { accountId } = c.var.caller
    const { order, reflects } = await readOrder(c, accountId, c.req.valid('param').orderId)
    return c.json({ ...order, reflects: reflecting(c, reflects) }, 200)
  })
  .openapi(listOrders, async (c) => {
    const { accountId } = c.var.caller
    const { clientOrderId, status } = c.req.valid('query')
    if (clientOrderId !== undefined && status !== undefined) {
      throw new ApiError(
        400,
        'validation_failed',
        'query by clientOrderId or by status=open, not both',
      )
    }
    if (clientOrderId !== undefined) {
      const { order } = await readOrder(c, accountId, orderIdOf(accountId, clientOrderId))
      return c.json({ orders: [order] }, 200)
    }
    if (status !== 'open')
      throw new ApiError(400, 'validation_failed', 'query by clientOrderId or status=open')
    const { config } = c.var
    const open = await Promise.all(
      [...config.instruments.keys()].map(async (symbol) => {
        const read = unwrap(await marketStub(c.env, config, symbol).openOrders(accountId))
        return read.value.map((view) => orderWire(config, symbol, view))
      }),
    )
    return c.json({ orders: open.flat() }, 200)
  })
  .openapi(cancelOrder, async (c) => {
    const { accountId } = c.var.caller
    const { orderId } = c.req.valid('param')
    const record = unwrap(
      await accountStub(c.env, c.var.config, accountId).order(accountId, orderId),
    )
    const symbol = record.value.instrument
    const market = marketStub(c.env, c.var.config, symbol)
    const outcome = unwrap(await market.cancel(cancelInput(orderId, accountId)))
    const reflects = reflecting(c, [outcome.reflects])
    if (outcome.value.kind === 'requested') {
      return c.json({ ...cancelRequested(c, symbol, outcome.value), reflects }, 202)
    }
    const order = orderWire(c.var.config, symbol, outcome.value.view)
    if (order.status !== 'cancelled') {
      throw new ApiError(422, 'order_not_open', `order ${orderId} is ${order.status}`, {
        details: { order },
      })
    }
    return c.json({ ...order, reflects }, 200)
  })
  .openapi(cancelAll, async (c) => {
    const { accountId } = c.var.caller
    const symbol = listed(c.var.config, c.req.valid('query').instrument, 400).symbol
    const market = marketStub(c.env, c.var.config, symbol)
    const open = unwrap(await market.openOrders(accountId)).value
    const cancelled = []
    const requested = []
    for (const view of open) {
      const outcome = unwrap(await market.cancel(cancelInput(view.input.orderId, accountId))).value
      if (outcome.kind === 'requested') requested.push(cancelRequested(c, symbol, outcome))
      else cancelled.push(orderWire(c.var.config, symbol, outcome.view))
    }
    return c.json({ cancelled, requested }, 200)
  })

const cancelInput = (orderId: string, accountId: string): CancelInput => ({
  kind: 'cancel',
  orderId,
  accountId,
  receivedAt: clock.now(),
})

const cancelRequested = (
  c: Context<AppEnv>,
  symbol: string,
  outcome: Extract<CancelOutcome, { kind: 'requested' }>,
) => ({
  orderId: outcome.request.orderId,
  instrument: symbol,
  status: 'cancel_requested' as const,
  requestedAt: outcome.request.receivedAt,
  node: outcome.request.node,
  order: outcome.view === null ? null : orderWire(c.var.config, symbol, outcome.view),
})

/** An order of the caller as the matcher sees it; `pending` if it was taken but never matched. */
async function readOrder(c: Context<AppEnv>, accountId: string, orderId: string) {
  const record = unwrap(await accountStub(c.env, c.var.config, accountId).order(accountId, orderId))
  const symbol = record.value.instrument
  const seen = await marketStub(c.env, c.var.config, symbol).order(orderId, accountId)
  if (seen.ok) {
    return {
      order: orderWire(c.var.config, symbol, seen.value.value),
      reflects: [record.reflects, seen.value.reflects],
    }
  }
  if (seen.code !== 'not_found') throw fromRejection(seen)
  const pending = {
    orderId,
    clientOrderId: record.value.clientOrderId,
    instrument: symbol,
    status: 'pending' as const,
    createdAt: record.value.createdAt,
  }
  throw new ApiError(
    404,
    'order_pending',
    "this node's copy of the market has not seen the order: it never reached the matcher, or " +
      'replication has not brought its step here yet; retry POST /v1/orders with its clientOrderId',
    {
      details: { order: pending },
    },
  )
}
