// Client reads of the caller's own account: the summary and the ledger. The caller's account
// comes from the verified API key, never from the request, so no path reaches another account.

import { createRoute } from '@hono/zod-openapi'
import { compareTransfers } from '../../domain/ledger'
import { decodeCursor, encodeCursor } from '../cursor'
import { signedRequest } from '../middleware/signed-request'
import { accountStub, marketStub } from '../../replica/addressing'
import { createRouter, errorsOf, json, reflecting, unwrap } from '../router'
import * as schemas from '../schemas'

const security = [{ apiKey: [], timestamp: [], signature: [] }]

const getAccount = createRoute({
  method: 'get',
  path: '/v1/account',
  tags: ['account'],
  summary: 'Collateral, equity, margin and what can be withdrawn',
  security,
  middleware: [signedRequest('read')] as const,
  responses: { 200: json(schemas.AccountSummary, 'the account'), ...errorsOf(401, 403, 503, 429) },
})

const getLedger = createRoute({
  method: 'get',
  path: '/v1/ledger',
  tags: ['account'],
  summary: "The account's ledger, oldest first, one page at a time",
  security,
  middleware: [signedRequest('read')] as const,
  request: { query: schemas.PageQuery },
  responses: { 200: json(schemas.LedgerPage, 'one page'), ...errorsOf(400, 401, 403, 503, 429) },
})

const getProof = createRoute({
  method: 'get',
  path: '/v1/account/proof',
  tags: ['account'],
  summary: "The account's balance at the latest epoch checkpoint, with its signed Merkle proof",
  security,
  middleware: [signedRequest('read')] as const,
  responses: {
    200: json(schemas.AccountProof, 'the proof'),
    ...errorsOf(401, 403, 404, 503, 429),
  },
})

export const accountRoutes = createRouter()
  .openapi(getAccount, async (c) => {
    const { accountId } = c.var.caller
    const read = unwrap(await accountStub(c.env, c.var.config, accountId).account(accountId))
    const { markets, ...summary } = read.value
    const staleMarks = markets
      .filter((m) => m.position.size !== 0n && (m.mark === null || m.mark.stale))
      .map((m) => m.symbol)
    return c.json(
      { accountId, ...summary, staleMarks, reflects: reflecting(c, [read.reflects]) },
      200,
    )
  })
  .openapi(getProof, async (c) => {
    const { accountId } = c.var.caller
    const read = unwrap(await accountStub(c.env, c.var.config, accountId).accountProof(accountId))
    return c.json({ ...read.value, reflects: reflecting(c, [read.reflects]) }, 200)
  })
  .openapi(getLedger, async (c) => {
    const { accountId } = c.var.caller
    const { config } = c.var
    const { cursor, limit } = c.req.valid('query')
    const after = cursor === undefined ? null : decodeCursor(cursor, accountId)
    const shard = unwrap(
      await accountStub(c.env, config, accountId).ledger(accountId, after, limit),
    )
    const markets = await Promise.all(
      [...config.instruments.keys()].map(async (symbol) =>
        unwrap(await marketStub(c.env, config, symbol).ledger(accountId, after, limit)),
      ),
    )
    const pages = [shard, ...markets]
    const merged = pages.flatMap((p) => p.value.entries).sort(compareTransfers)
    const entries = merged.slice(0, limit)
    const last = entries.at(-1)
    const more = merged.length > limit || pages.some((p) => p.value.more)
    return c.json(
      {
        entries,
        nextCursor: more && last !== undefined ? encodeCursor(accountId, last) : null,
        reflects: reflecting(
          c,
          pages.map((p) => p.reflects),
        ),
      },
      200,
    )
  })
