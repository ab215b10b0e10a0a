import { createRoute } from '@hono/zod-openapi'
import * as ledger from '../../domain/ledger'
import * as money from '../../domain/money'
import { accountStub } from '../../replica/addressing'
import { createRouter, errorsOf, json, requestDigest, respondWritten, unwrap } from '../router'
import * as schemas from '../schemas'

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
  const { depositId, accountId, amount, durability } = c.req.valid('json')
  const digest = await requestDigest({ accountId, asset: 'USD', amount: money.formatUsd(amount) })
  const written = unwrap(
    await accountStub(c.env, c.var.config, accountId).deposit(
      {
        depositId,
        accountId,
        amount,
        requestDigest: digest,
      },
      durability ?? 'local',
    ),
  )
  return respondWritten(c, depositOf(written.record, depositId), written.replayed, 201)
})
