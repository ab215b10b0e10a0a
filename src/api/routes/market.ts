// Public market data (instruments, book depth) and the operator's mark price feed.

import { createRoute, z } from '@hono/zod-openapi'
import { markFutureMsMax } from '../../constants'
import * as instruments from '../../domain/instrument'
import { marketStub } from '../../replica/addressing'
import { ApiError } from '../api-error'
import type { NodeConfig } from '../../config'
import { createRouter, errorsOf, json, reflecting, unwrap } from '../router'
import * as trading from '../trading-schemas'
import * as clock from '../../clock'

const listInstruments = createRoute({
  method: 'get',
  path: '/v1/instruments',
  tags: ['public'],
  summary: 'Listed instruments: tick, lot, margin and fee rates, home node',
  responses: { 200: json(trading.InstrumentList, 'the catalog') },
})

const getBook = createRoute({
  method: 'get',
  path: '/v1/book/{instrument}',
  tags: ['public'],
  summary: 'Aggregated depth of one book',
  request: { params: z.object({ instrument: trading.Symbol }), query: trading.BookQuery },
  responses: { 200: json(trading.Book, 'depth, best first'), ...errorsOf(400, 404, 503) },
})

const postMark = createRoute({
  method: 'post',
  path: '/v1/admin/marks',
  tags: ['admin'],
  summary: "Record the operator feed's mark price (kept in storage, not in the documents)",
  security: [{ adminToken: [] }],
  request: {
    body: { content: { 'application/json': { schema: trading.MarkBody } }, required: true },
  },
  responses: { 200: json(trading.MarkReply, 'latest mark'), ...errorsOf(400, 413, 415, 401) },
})

/** The listed instrument `symbol`, or an error naming the listed ones (404 in a path, 400 in a body). */
export function listed(
  config: NodeConfig,
  symbol: string,
  status: 400 | 404 = 404,
): instruments.Instrument {
  const instrument = config.instruments.get(symbol)
  if (instrument === undefined) {
    const names = [...config.instruments.keys()].join(', ')
    throw new ApiError(status, 'unknown_instrument', `no instrument ${symbol}; listed: ${names}`)
  }
  return instrument
}

export const marketRoutes = createRouter()
  .openapi(listInstruments, (c) =>
    c.json({ instruments: [...c.var.config.instruments.values()].map((i) => i.spec) }, 200),
  )
  .openapi(getBook, async (c) => {
    const instrument = listed(c.var.config, c.req.valid('param').instrument)
    const read = unwrap(
      await marketStub(c.env, c.var.config, instrument.symbol).depth(c.req.valid('query').levels),
    )
    const side = (levels: typeof read.value.bids) =>
      levels.map((level) => ({
        price: instruments.formatPrice(instrument, level.price),
        size: instruments.formatSize(instrument, level.size),
        orders: level.orders,
      }))
    return c.json(
      {
        instrument: instrument.symbol,
        bids: side(read.value.bids),
        asks: side(read.value.asks),
        reflects: reflecting(c, [read.reflects]),
      },
      200,
    )
  })
  .openapi(postMark, async (c) => {
    const body = c.req.valid('json')
    const instrument = listed(c.var.config, body.instrument, 400)
    if (body.ts > clock.now() + markFutureMsMax) {
      throw new ApiError(
        400,
        'mark_in_future',
        `mark ts is more than ${markFutureMsMax} ms ahead of this node's clock`,
      )
    }
    const price = instruments.parsePrice(instrument, body.price)
    if (!price.ok) throw new ApiError(400, price.code, price.message)
    const { applied, mark } = await marketStub(c.env, c.var.config, instrument.symbol).setMark(
      price.value,
      body.ts,
    )
    return c.json(
      {
        instrument: instrument.symbol,
        price: instruments.formatPrice(instrument, mark.price),
        ts: mark.ts,
        stale: mark.stale,
        applied,
      },
      200,
    )
  })
