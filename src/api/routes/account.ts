// Client reads of the caller's own account: the summary and the ledger. The caller's account
// comes from the verified API key, never from the request, so no path reaches another account.

import { createRoute } from '@hono/zod-openapi'
import { ApiError } from '../api-error'
import { signedRequest } from '../middleware/signed-request'
import { accountStub } from '../replicas'
import { createRouter, errorsOf, json, reflecting, unwrap } from '../router'
import * as schemas from '../schemas'

const security = [{ signature: [] }]

const getAccount = createRoute({
  method: 'get',
  path: '/v1/account',
  tags: ['account'],
  summary: 'Collateral, equity, margin and what can be withdrawn',
  security,
  middleware: [signedRequest('read')] as const,
  responses: { 200: json(schemas.AccountSummary, 'the account'), ...errorsOf(401, 403, 503) },
})

const getLedger = createRoute({
  method: 'get',
  path: '/v1/ledger',
  tags: ['account'],
  summary: "The account's ledger, oldest first, one page at a time",
  security,
  middleware: [signedRequest('read')] as const,
  request: { query: schemas.LedgerQuery },
  responses: { 200: json(schemas.LedgerPage, 'one page'), ...errorsOf(400, 401, 403, 503) },
})

type Cursor = { a: string; ts: number; id: string }

const encodeCursor = (cursor: Cursor): string => btoa(JSON.stringify(cursor)).replace(/=+$/, '')

function decodeCursor(text: string, accountId: string): { ts: number; id: string } {
  let cursor: Partial<Cursor>
  try {
    cursor = JSON.parse(atob(text)) as Partial<Cursor>
  } catch {
    throw new ApiError(400, 'invalid_cursor', 'cursor is not one this API returned')
  }
  if (cursor.a !== accountId || typeof cursor.ts !== 'number' || typeof cursor.id !== 'string') {
    throw new ApiError(
      400,
      'invalid_cursor',
      'cursor is not one this API returned for this account',
    )
  }
  return { ts: cursor.ts, id: cursor.id }
}

export const accountRoutes = createRouter()
  .openapi(getAccount, async (c) => {
    const { accountId } = c.var.caller
    const read = unwrap(await accountStub(c.env, c.var.config, accountId).account(accountId))
    return c.json({ accountId, ...read.value, reflects: reflecting(c, [read.reflects]) }, 200)
  })
  .openapi(getLedger, async (c) => {
    const { accountId } = c.var.caller
    const { cursor, limit } = c.req.valid('query')
    const after = cursor === undefined ? null : decodeCursor(cursor, accountId)
    const read = unwrap(
      await accountStub(c.env, c.var.config, accountId).ledger(accountId, after, limit),
    )
    const next = read.value.next
    return c.json(
      {
        entries: read.value.entries,
        nextCursor: next === null ? null : encodeCursor({ a: accountId, ...next }),
        reflects: reflecting(c, [read.reflects]),
      },
      200,
    )
  })
