import { createRoute } from '@hono/zod-openapi'
import * as clock from '../../clock'
import * as ledger from '../../domain/ledger'
import * as money from '../../domain/money'
import { accountStub } from '../../replica/addressing'
import { ApiError } from '../api-error'
import { createRouter, errorsOf, json, requestDigest, respondWritten, unwrap } from '../router'
import * as schemas from '../schemas'
import { withinWindow } from '../signing'

const recordDeposit = createRoute({
  method: 'post',
  path: '/v1/admin/deposits',
  tags: ['admin'],
  summary: 'Record a deposit (the same depositId replays; another payload is a 409)',
  security: [{ adminToken: [] }],
  request: {
    body: { content: { 'application/json': { schema: schemas.DepositBody } }, required: true },
  },
  responses: {
    201: json(schemas.Deposit, 'recorded or replayed'),
    ...errorsOf(400, 413, 415, 401, 403, 404, 409, 503),
  },
})

/** The wire form of a deposit transfer. */
export const depositOf = (transfer: ledger.Transfer, depositId: string) => ({
  depositId,
  accountId: transfer.to,
  asset: 'USD' as const,
  amount: transfer.amount,
  createdAt: transfer.ts,
  node: transfer.node,
})

export const adminDepositRoutes = createRouter().openapi(recordDeposit, async (c) => {
  const { depositId, accountId, amount, signedAt, durability } = c.req.valid('json')
  const windowMs = c.var.config.signatureWindowMs
  // An old request is refused, not replayed: checkpoints forget a deposit id once no request
  // carrying it can be taken any more (domain/checkpoint.ts).
  if (!withinWindow(signedAt, windowMs)) {
    throw new ApiError(
      400,
      'signed_at_outside_window',
      `signedAt must be milliseconds since the epoch within ${windowMs} ms of the node's clock`,
      { details: { serverTime: clock.now() } },
    )
  }
  // Without signedAt: a retry made later is the same request.
  const digest = await requestDigest({ accountId, asset: 'USD', amount: money.formatUsd(amount) })
  const written = unwrap(
    await accountStub(c.env, c.var.config, accountId).deposit(
      {
        depositId,
        accountId,
        amount,
        signedAt,
        requestDigest: digest,
      },
      durability ?? 'local',
    ),
  )
  return respondWritten(c, depositOf(written.record, depositId), written.replayed, 201)
})
