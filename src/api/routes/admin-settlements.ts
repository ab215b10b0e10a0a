// The operator's handle on the settlement reconciler: settle one epoch of an instrument now, on
// its home node. Settling an epoch again answers what it did the first time (I8: at most once).
// And run the reconciler's audits of every document of this node now (they also run at each
// epoch): what each found, recorded as findings, never repaired.

import { createRoute, z } from '@hono/zod-openapi'
import { marketStub, nodeReplicas } from '../../replica/addressing'
import { adminAuth } from '../middleware/admin-auth'
import { createRouter, errorsOf, json, unwrap } from '../router'
import * as trading from '../trading-schemas'
import { listed } from './market'

const SettleBody = z.strictObject({
  instrument: trading.Symbol,
  epoch: z
    .number({ error: 'epoch is a whole number' })
    .int({ error: 'epoch is a whole number' })
    .nonnegative({ error: 'epoch is a whole number' })
    .max(Number.MAX_SAFE_INTEGER),
})

const SettlementReport = z
  .object({
    instrument: z.string(),
    epoch: z.number().int(),
    seq: z
      .number()
      .int()
      .openapi({ description: "the settle step's place in the matcher's sequence" }),
    mark: z.string(),
    fundingRate: z.string(),
    liquidated: z.array(z.string()),
    fundingPayments: z.number().int(),
  })
  .openapi('SettlementReport')

const settle = createRoute({
  method: 'post',
  path: '/v1/admin/settlements',
  tags: ['admin'],
  summary: 'Settle an epoch of an instrument on its home node (funding, liquidations, checkpoint)',
  security: [{ adminToken: [] }],
  middleware: [adminAuth()] as const,
  request: {
    body: { content: { 'application/json': { schema: SettleBody } }, required: true },
  },
  responses: {
    200: json(SettlementReport, 'settled (or settled before: the same report)'),
    ...errorsOf(400, 401, 413, 415, 422, 503),
  },
})

const AuditReport = z
  .object({
    node: z.string(),
    documents: z.array(
      z.object({
        doc: z.string(),
        judged: z.boolean().openapi({
          description: 'false while the document is damaged or holds pending updates',
        }),
        violations: z.array(z.any()).openapi({ description: 'the findings its audit recorded' }),
      }),
    ),
  })
  .openapi('AuditReport')

const audit = createRoute({
  method: 'post',
  path: '/v1/admin/audits',
  tags: ['admin'],
  summary: "Run the reconciler's audits (I3-I7) over every document of this node now",
  security: [{ adminToken: [] }],
  middleware: [adminAuth()] as const,
  responses: { 200: json(AuditReport, 'what each audit found'), ...errorsOf(401) },
})

export const adminSettlementRoutes = createRouter()
  .openapi(settle, async (c) => {
    const { instrument, epoch } = c.req.valid('json')
    const symbol = listed(c.var.config, instrument, 400).symbol
    const report = unwrap(await marketStub(c.env, c.var.config, symbol).settle(epoch))
    return c.json(report.value, 200)
  })
  .openapi(audit, async (c) => {
    const { config } = c.var
    const documents = await Promise.all(
      nodeReplicas(c.env, config).map(async ({ name, stub }) => {
        const found = await stub.audit()
        const violations: unknown[] = found ?? []
        return { doc: name, judged: found !== null, violations }
      }),
    )
    return c.json({ node: config.nodeId, documents }, 200)
  })
