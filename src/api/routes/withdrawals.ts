// Client withdrawals. The request id (body `withdrawalId` or the `Idempotency-Key` header) makes a
// withdrawal take effect once: a retry with the same payload replays the stored answer.

import { createRoute, z } from '@hono/zod-openapi'
import * as ledger from '../../domain/ledger'
import * as money from '../../domain/money'
import { ApiError } from '../api-error'
import { signedRequest } from '../middleware/signed-request'
import { accountStub } from '../../replica/addressing'
import {
  createRouter,
  errorsOf,
  json,
  reflecting,
  requestDigest,
  respondWritten,
  unwrap,
} from '../router'
import * as schemas from '../schemas'

const security = [{ apiKey: [], timestamp: [], signature: [] }]

const requestWithdrawal = createRoute({
  method: 'post',
  path: '/v1/withdrawals',
  tags: ['withdrawals'],
  summary: 'Withdraw collateral; approved only within what is withdrawable',
  security,
  middleware: [signedRequest('withdraw')] as const,
  request: {
    headers: z.object({ 'idempotency-key': schemas.Id('Idempotency-Key').optional() }),
    body: { content: { 'application/json': { schema: schemas.WithdrawalBody } }, required: true },
  },
  responses: {
    201: json(schemas.Withdrawal, 'approved (or replayed)'),
    ...errorsOf(400, 413, 415, 401, 403, 409, 422, 503, 429),
  },
})

const getWithdrawal = createRoute({
  method: 'get',
  path: '/v1/withdrawals/{withdrawalId}',
  tags: ['withdrawals'],
  summary: "One of the caller's withdrawals",
  security,
  middleware: [signedRequest('read')] as const,
  request: { params: z.object({ withdrawalId: schemas.Id('withdrawalId') }) },
  responses: {
    200: json(schemas.Withdrawal, 'the withdrawal'),
    ...errorsOf(400, 401, 403, 404, 503, 429),
  },
})

const withdrawalOf = (transfer: ledger.Transfer, withdrawalId: string) => ({
  withdrawalId,
  accountId: transfer.from,
  asset: 'USD' as const,
  amount: transfer.amount,
  status: 'approved' as const,
  createdAt: transfer.ts,
  node: transfer.node,
})

export const withdrawalRoutes = createRouter()
  .openapi(requestWithdrawal, async (c) => {
    const { accountId } = c.var.caller
    const body = c.req.valid('json')
    const header = c.req.valid('header')['idempotency-key']
    if (body.withdrawalId !== undefined && header !== undefined && body.withdrawalId !== header) {
      throw new ApiError(400, 'validation_failed', 'withdrawalId and Idempotency-Key differ')
    }
    const withdrawalId = body.withdrawalId ?? header
    if (withdrawalId === undefined) {
      throw new ApiError(
        400,
        'missing_request_id',
        'send a withdrawalId or an Idempotency-Key header',
      )
    }
    const digest = await requestDigest({ asset: 'USD', amount: money.formatUsd(body.amount) })
    const stub = accountStub(c.env, c.var.config, accountId)
    const written = unwrap(
      await stub.withdraw(
        { withdrawalId, accountId, amount: body.amount, requestDigest: digest },
        body.durability ?? c.var.config.withdrawalDurability,
      ),
    )
    const reflects = reflecting(c, [written.reflects])
    return respondWritten(
      c,
      { ...withdrawalOf(written.record, withdrawalId), reflects },
      written.replayed,
      201,
    )
  })
  .openapi(getWithdrawal, async (c) => {
    const { accountId } = c.var.caller
    const { withdrawalId } = c.req.valid('param')
    const id = ledger.transferId('withdrawal', accountId, withdrawalId)
    const read = unwrap(await accountStub(c.env, c.var.config, accountId).transfer(id))
    return c.json(
      { ...withdrawalOf(read.value, withdrawalId), reflects: reflecting(c, [read.reflects]) },
      200,
    )
  })
