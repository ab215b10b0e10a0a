// Client reads of trading state: positions at mark and the fill history.

import { createRoute, z } from '@hono/zod-openapi'
import { accountStub, marketStub } from '../../replica/addressing'
import { decodeCursor, encodeCursor } from '../cursor'
import { signedRequest } from '../middleware/signed-request'
import { createRouter, errorsOf, json, reflecting, unwrap } from '../router'
import * as schemas from '../schemas'
import * as trading from '../trading-schemas'
import { fillWire, positionWire } from '../trading-wire'

const security = [{ apiKey: [], timestamp: [], signature: [] }]

const getPositions = createRoute({
  method: 'get',
  path: '/v1/positions',
  tags: ['account'],
  summary: 'Open positions with entry, mark, PnL and margin',
  security,
  middleware: [signedRequest('read')] as const,
  responses: {
    200: json(trading.PositionList, 'positions'),
    ...errorsOf(401, 403, 503, 429),
  },
})

const getFills = createRoute({
  method: 'get',
  path: '/v1/fills',
  tags: ['account'],
  summary: "The account's fills across instruments, oldest first, one page at a time",
  security,
  middleware: [signedRequest('read')] as const,
  request: { query: schemas.PageQuery },
  responses: {
    200: json(trading.FillsPage, 'one page'),
    ...errorsOf(400, 401, 403, 503, 429),
  },
})

export const positionRoutes = createRouter()
  .openapi(getPositions, async (c) => {
    const { accountId } = c.var.caller
    const read = unwrap(await accountStub(c.env, c.var.config, accountId).account(accountId))
    const held = read.value.markets.filter((m) => m.position.size !== 0n)
    return c.json(
      {
        positions: held.map((m) => positionWire(c.var.config, m)),
        reflects: reflecting(c, [read.reflects]),
      },
      200,
    )
  })
  .openapi(getFills, async (c) => {
    const { accountId } = c.var.caller
    const { config } = c.var
    const { cursor, limit } = c.req.valid('query')
    const after = cursor === undefined ? null : decodeCursor(cursor, accountId)
    const pages = await Promise.all(
      [...config.instruments.keys()].map(async (symbol) => ({
        symbol,
        read: unwrap(await marketStub(c.env, config, symbol).fills(accountId, after, limit + 1)),
      })),
    )
    const merged = pages
      .flatMap(({ symbol, read }) => read.value.map((entry) => ({ symbol, ...entry })))
      .sort((a, b) => a.ts - b.ts || (a.fill.fillId < b.fill.fillId ? -1 : 1))
    const page = merged.slice(0, limit)
    const last = page.at(-1)
    return c.json(
      {
        fills: page.map((entry) => fillWire(entry.symbol, entry.fill, entry.ts, accountId)),
        nextCursor:
          merged.length > limit && last !== undefined
            ? encodeCursor(accountId, { ts: last.ts, id: last.fill.fillId })
            : null,
        reflects: reflecting(
          c,
          pages.map((p) => p.read.reflects),
        ),
      },
      200,
    )
  })
