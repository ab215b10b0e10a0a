import { createRoute, z } from '@hono/zod-openapi'
import { createRouter, json } from '../router'
import * as clock from '../../clock'

const health = createRoute({
  method: 'get',
  path: '/health',
  tags: ['public'],
  summary: 'Liveness of this node',
  responses: {
    200: json(
      z.object({ status: z.literal('ok'), node: z.string(), at: z.number().int() }),
      'alive',
    ),
  },
})

export const healthRoutes = createRouter().openapi(health, (c) =>
  c.json({ status: 'ok' as const, node: c.var.config.nodeId, at: clock.now() }, 200),
)
