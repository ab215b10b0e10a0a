// Wire schemas of the trading routes (validation and OpenAPI from one source).

import { z } from '@hono/zod-openapi'
import { bookLevelsMax } from '../constants'
import { DurabilityField, Id, Reflects, WholeNumberQuery } from './schemas'

const Decimal = (example: string, description: string) =>
  z
    .string({ error: `${description} must be a decimal string` })
    .max(40)
    .openapi({ example, description })

export const Symbol = z.string().max(32).openapi({ example: 'BTC-PERP' })

export const Instrument = z
  .object({
    symbol: z.string(),
    tickSize: z.string(),
    lotSize: z.string(),
    minSize: z.string(),
    initialMarginRate: z.string(),
    maintenanceMarginRate: z.string(),
    makerFeeRate: z.string(),
    takerFeeRate: z.string(),
    homeNode: z.string(),
  })
  .openapi('Instrument')

export const MarkBody = z.strictObject({
  instrument: Symbol,
  price: Decimal('60000.5', 'price'),
  ts: z.number({ error: 'ts must be milliseconds since the epoch' }).int().positive(),
})

export const MarkReply = z
  .object({
    instrument: z.string(),
    price: z.string(),
    ts: z.number().int(),
    stale: z.boolean(),
    applied: z.boolean(),
  })
  .openapi('Mark')

export const Side = z.enum(['buy', 'sell'], { error: 'side is "buy" or "sell"' })
export const TimeInForce = z.enum(['GTC', 'IOC', 'FOK', 'POST_ONLY'], {
  error: 'timeInForce is GTC, IOC, FOK or POST_ONLY',
})

export const OrderBody = z.strictObject({
  clientOrderId: Id('clientOrderId'),
  instrument: Symbol,
  side: Side,
  type: z.enum(['limit', 'market'], { error: 'type is "limit" or "market"' }),
  price: Decimal('60000.5', 'price').optional(),
  size: Decimal('0.01', 'size'),
  timeInForce: TimeInForce.optional(),
  reduceOnly: z.boolean({ error: 'reduceOnly must be true or false' }).optional(),
  durability: DurabilityField,
})

export const Order = z
  .object({
    orderId: z.string(),
    clientOrderId: z.string(),
    instrument: z.string(),
    side: Side,
    type: z.enum(['limit', 'market']),
    price: z.string().nullable(),
    size: z.string(),
    timeInForce: TimeInForce,
    reduceOnly: z.boolean(),
    status: z.enum(['pending', 'open', 'partially_filled', 'filled', 'cancelled', 'rejected']),
    filledSize: z.string(),
    remainingSize: z.string(),
    averageFillPrice: z.string().nullable(),
    reason: z.string().nullable(),
    createdAt: z.number().int(),
    updatedAt: z.number().int(),
  })
  .openapi('Order')

export const OrderReply = Order.extend({ reflects: Reflects }).openapi('OrderReply')

export const OrdersQuery = z.strictObject({
  clientOrderId: Id('clientOrderId').optional(),
  status: z.literal('open', { error: 'status filter supports "open"' }).optional(),
})

export const CancelAllQuery = z.strictObject({ instrument: Symbol })

/** A cancel recorded on this node that the instrument's matcher (on another node) has not seen. */
export const CancelRequested = z
  .object({
    orderId: z.string(),
    instrument: z.string(),
    status: z.literal('cancel_requested'),
    requestedAt: z.number().int(),
    node: z.string(),
    order: Order.nullable().openapi({ description: 'the order as this node last saw it' }),
  })
  .openapi('CancelRequested')

export const Position = z
  .object({
    instrument: z.string(),
    size: z.string(),
    entryPrice: z.string().nullable(),
    markPrice: z.string().nullable(),
    markStale: z.boolean(),
    notional: z.string(),
    unrealizedPnl: z.string(),
    realizedPnl: z.string(),
    fees: z.string(),
    initialMargin: z.string(),
    maintenanceMargin: z.string(),
  })
  .openapi('Position')

export const Fill = z
  .object({
    fillId: z.string(),
    orderId: z.string(),
    instrument: z.string(),
    side: Side,
    price: z.string(),
    size: z.string(),
    liquidity: z.enum(['maker', 'taker']),
    fee: z.string(),
    realizedPnl: z.string(),
    ts: z.number().int(),
  })
  .openapi('Fill')

export const BookQuery = z.strictObject({
  levels: WholeNumberQuery('levels', bookLevelsMax, 20),
})

export const Book = z
  .object({
    instrument: z.string(),
    bids: z.array(z.object({ price: z.string(), size: z.string(), orders: z.number().int() })),
    asks: z.array(z.object({ price: z.string(), size: z.string(), orders: z.number().int() })),
    reflects: Reflects,
  })
  .openapi('Book')

export const OrderList = z.object({ orders: z.array(Order) }).openapi('OrderList')

export const CancelRequestedReply = CancelRequested.extend({ reflects: Reflects }).openapi(
  'CancelRequestedReply',
)

export const CancelAllReply = z
  .object({ cancelled: z.array(Order), requested: z.array(CancelRequested) })
  .openapi('CancelAllReply')

export const PositionList = z
  .object({ positions: z.array(Position), reflects: Reflects })
  .openapi('PositionList')

export const FillsPage = z
  .object({ fills: z.array(Fill), nextCursor: z.string().nullable(), reflects: Reflects })
  .openapi('FillsPage')

export const InstrumentList = z
  .object({ instruments: z.array(Instrument) })
  .openapi('InstrumentList')
