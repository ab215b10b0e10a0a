// The operator's dashboard: a self-contained page (no external assets, no data in it) that asks
// for the admin token and polls GET /v1/admin/dashboard every second. That route gathers this
// node's view and every peer's over the mesh (GET /v1/mesh/view, a mesh token), so the page shows
// a peer this node cannot reach as unreachable, and the links on both sides of a cut as down.

import { createRoute, z } from '@hono/zod-openapi'
import { dashboardPage } from '../dashboard/page'
import { nodeView, nodeViewDoc, nodeViewPath, peerView } from '../dashboard/views'
import { ApiError } from '../api-error'
import { adminAuth } from '../middleware/admin-auth'
import { verifiedPeer } from '../middleware/mesh-peer'
import { createRouter, errorsOf, json } from '../router'
import * as clock from '../../clock'

const dashboardData = createRoute({
  method: 'get',
  path: '/v1/admin/dashboard',
  tags: ['admin'],
  summary: "This node's view and each peer's, fetched over the mesh (the dashboard's data)",
  security: [{ adminToken: [] }],
  middleware: [adminAuth()] as const,
  responses: {
    200: json(
      z.object({ node: z.string(), at: z.number().int(), nodes: z.array(z.any()) }),
      'views of every node; a peer that did not answer is `reachable: false`',
    ),
    ...errorsOf(401),
  },
})

// The page holds no data, so it may be public; everything it shows needs the admin token.
const pageHeaders = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'Content-Security-Policy':
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
    "connect-src 'self'; img-src data:; frame-ancestors 'none'; form-action 'none'",
  'Referrer-Policy': 'no-referrer',
}

export const dashboardRoutes = createRouter()
dashboardRoutes.get('/dashboard', (c) => c.body(dashboardPage, 200, pageHeaders))
dashboardRoutes.get(nodeViewPath, async (c) => {
  const presented = (c.req.header('Authorization') ?? '').replace(/^Bearer /, '')
  const peer = await verifiedPeer(c, presented, nodeViewDoc)
  if (peer.role !== 'node') throw new ApiError(403, 'forbidden', 'only nodes read node views')
  return c.json(await nodeView(c.env, c.var.config), 200)
})
dashboardRoutes.openapi(dashboardData, async (c) => {
  const { config } = c.var
  const [own, ...peers] = await Promise.all([
    nodeView(c.env, config),
    ...[...config.peers.keys()].map((peer) =>
      peerView(config, (url, init) => fetch(url, init), peer),
    ),
  ])
  const nodes = [{ node: config.nodeId, reachable: true, view: own }, ...peers]
  return c.json({ node: config.nodeId, at: clock.now(), nodes }, 200)
})
