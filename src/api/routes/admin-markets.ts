// Failback, an operator's action (docs/failover.md): the node holding an instrument's matcher
// lease stops matching, releases it and hands it to a target node, which campaigns for a higher
// term. Failover never moves the matcher back by itself, so a returning home waits for this.

import { createRoute, z } from '@hono/zod-openapi'
import { marketStub } from '../../replica/addressing'
import { ApiError } from '../api-error'
import { adminAuth } from '../middleware/admin-auth'
import { createRouter, errorsOf, json, unwrap } from '../router'
import * as trading from '../trading-schemas'
import { listed } from './market'

const FailbackBody = z.strictObject({
  node: z
    .string({ error: 'node is the id of the node to hand the matcher to' })
    .min(1)
    .max(64)
    .openapi({ example: 'a', description: 'the node to hand the matcher to' }),
})

const FailbackReport = z
  .object({
    instrument: z.string(),
    target: z.string(),
    holder: z.string().openapi({ description: 'the lease holder the request reached' }),
    outcome: z.enum(['target_holds', 'handed_over', 'asked_holder']).openapi({
      description:
        'target_holds: nothing to do; handed_over: this node held the lease and released it; ' +
        'asked_holder: the request went to the holder over the mesh',
    }),
  })
  .openapi('FailbackReport')

const failback = createRoute({
  method: 'post',
  path: '/v1/admin/markets/{instrument}/failback',
  tags: ['admin'],
  summary:
    "Hand an instrument's matcher to a node: the lease holder releases, the target campaigns",
  security: [{ adminToken: [] }],
  middleware: [adminAuth()] as const,
  request: {
    params: z.object({ instrument: trading.Symbol }),
    body: { content: { 'application/json': { schema: FailbackBody } }, required: true },
  },
  responses: {
    202: json(FailbackReport, 'the hand-over is under way (or the target holds the lease)'),
    ...errorsOf(400, 401, 404, 413, 415, 503),
  },
})

const CheckpointSummary = z.object({
  id: z.string().openapi({ description: 'the key of the settle step it was written with' }),
  epoch: z.number().int(),
  seq: z.number().int(),
  term: z.number().int(),
  retainFrom: z.number().int().openapi({
    description: 'closed orders, fills and settlements before this time are no longer kept',
  }),
  acknowledgedBy: z.array(z.string()),
})

const MarketCheckpointState = z
  .object({
    inForce: CheckpointSummary.nullable().openapi({
      description: 'acknowledged by every node: the state starts from it, older steps are deleted',
    }),
    latest: CheckpointSummary.nullable(),
    stepsHeld: z.number().int().openapi({ description: 'matcher steps the document still holds' }),
  })
  .openapi('MarketCheckpointState')

const getCheckpoint = createRoute({
  method: 'get',
  path: '/v1/admin/markets/{instrument}/checkpoint',
  tags: ['admin'],
  summary: "The market's checkpoint in force, the latest written, and the steps still held",
  security: [{ adminToken: [] }],
  middleware: [adminAuth()] as const,
  request: { params: z.object({ instrument: trading.Symbol }) },
  responses: {
    200: json(MarketCheckpointState, 'checkpoints'),
    ...errorsOf(400, 401, 404, 503),
  },
})

export const adminMarketRoutes = createRouter()
  .openapi(getCheckpoint, async (c) => {
    const instrument = listed(c.var.config, c.req.valid('param').instrument)
    const state = unwrap(await marketStub(c.env, c.var.config, instrument.symbol).checkpointState())
    return c.json(state.value, 200)
  })
  .openapi(failback, async (c) => {
    const { config } = c.var
    const { instrument: symbol } = c.req.valid('param')
    const { node } = c.req.valid('json')
    const instrument = listed(config, symbol)
    const nodes = [config.nodeId, ...config.peers.keys()]
    if (!nodes.includes(node)) {
      throw new ApiError(
        400,
        'unknown_node',
        `no node ${node} in the mesh; nodes: ${nodes.join(', ')}`,
      )
    }
    const report = unwrap(await marketStub(c.env, config, instrument.symbol).failback(node))
    return c.json({ instrument: instrument.symbol, target: node, ...report.value }, 202)
  })
