// GET /metrics: the node in Prometheus text format. Request counters are this isolate's; every
// replica is asked for its own (one RPC each, in parallel) at scrape time.

import { createRoute, z } from '@hono/zod-openapi'
import { gatherReplicas } from '../metrics/gather'
import { contentType, format } from '../metrics/exposition'
import { metricFamilies } from '../metrics/families'
import { isolateRequests } from '../metrics/requests'
import { adminAuth } from '../middleware/admin-auth'
import { createRouter, errorsOf } from '../router'
import * as clock from '../../clock'

const metrics = createRoute({
  method: 'get',
  path: '/metrics',
  tags: ['admin'],
  summary:
    'Prometheus metrics: requests, durable-write latency, links and lag, queues, refusals, settlements',
  security: [{ adminToken: [] }],
  middleware: [adminAuth()] as const,
  responses: {
    200: {
      description: 'text exposition format 0.0.4',
      content: { 'text/plain': { schema: z.string() } },
    },
    ...errorsOf(401),
  },
})

export const metricsRoutes = createRouter().openapi(metrics, async (c) => {
  const { config } = c.var
  const { replicas, unanswered } = await gatherReplicas(c.env, config)
  const families = metricFamilies({
    requests: isolateRequests,
    replicas,
    unanswered,
    peers: [...config.peers.keys()],
    now: clock.now(),
  })
  return c.text(format(families), 200, { 'Content-Type': contentType })
})
