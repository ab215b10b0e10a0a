// The node's HTTP API: middleware, route modules, the OpenAPI document and the one error handler.

import { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { requestId } from 'hono/request-id'
import { bodyBytesMax, retryAfterSeconds } from '../constants'
import { readConfig, type NodeConfig } from '../config'
import { ApiError, knownError } from './api-error'
import type { AppEnv } from './app-env'
import { isolateRequests, requestMetrics } from './metrics/requests'
import { adminAuth } from './middleware/admin-auth'
import { loadShedding } from './middleware/load-shedding'
import { accountRoutes } from './routes/account'
import { adminAccountRoutes } from './routes/admin-accounts'
import { adminDepositRoutes } from './routes/admin-deposits'
import { adminBreakerRoutes } from './routes/admin-breakers'
import { adminMarketRoutes } from './routes/admin-markets'
import { adminSettlementRoutes } from './routes/admin-settlements'
import { adminShardRoutes } from './routes/admin-shards'
import { snapshotRoutes } from './routes/admin-snapshots'
import { dashboardRoutes } from './routes/dashboard'
import { healthRoutes } from './routes/health'
import { marketRoutes } from './routes/market'
import { matcherRoutes } from './routes/matcher'
import { meshRoutes } from './routes/mesh'
import { metricsRoutes } from './routes/metrics'
import { orderRoutes } from './routes/orders'
import { positionRoutes } from './routes/positions'
import { withdrawalRoutes } from './routes/withdrawals'

let config: NodeConfig | undefined

export const app = new OpenAPIHono<AppEnv>()

app.use(requestId({ headerName: 'X-Request-Id' }))
app.use(async function nodeConfig(c, next) {
  config ??= readConfig(c.env)
  c.set('config', config)
  await next()
})
app.use(requestMetrics(isolateRequests))
// Ahead of the body limit and the JSON check: a restore's body is one document's whole state as
// bytes, bounded by the route itself.
app.route('/', snapshotRoutes)
app.use(
  bodyLimit({
    maxSize: bodyBytesMax,
    onError: () => {
      throw new ApiError(
        413,
        'body_too_large',
        `request bodies are limited to ${bodyBytesMax} bytes`,
      )
    },
  }),
)
app.use(async function jsonBodies(c, next) {
  const type = c.req.header('content-type') ?? ''
  // fetch and curl send a bodiless POST as `Content-Length: 0` without a type: no body at all.
  const empty = c.req.header('content-length') === '0'
  if (c.req.raw.body !== null && !empty && !/^application\/json\s*(;|$)/i.test(type)) {
    throw new ApiError(
      415,
      'unsupported_media_type',
      'request bodies must be JSON: send Content-Type: application/json',
    )
  }
  await next()
})
app.use('/v1/*', loadShedding())
app.use('/v1/admin/*', adminAuth())

app.openAPIRegistry.registerComponent('securitySchemes', 'adminToken', {
  type: 'http',
  scheme: 'bearer',
})
app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', {
  type: 'apiKey',
  in: 'header',
  name: 'X-API-Key',
  description: 'the API key id',
})
app.openAPIRegistry.registerComponent('securitySchemes', 'timestamp', {
  type: 'apiKey',
  in: 'header',
  name: 'X-API-Timestamp',
  description: "milliseconds since the epoch, within the receive window of the node's clock",
})
app.openAPIRegistry.registerComponent('securitySchemes', 'signature', {
  type: 'apiKey',
  in: 'header',
  name: 'X-API-Signature',
  description:
    'hex HMAC-SHA256 of X-API-Timestamp + METHOD + path with query + body, keyed by the API key secret',
})

app
  .route('/', healthRoutes)
  .route('/', adminAccountRoutes)
  .route('/', adminDepositRoutes)
  .route('/', adminShardRoutes)
  .route('/', adminSettlementRoutes)
  .route('/', adminBreakerRoutes)
  .route('/', adminMarketRoutes)
  .route('/', accountRoutes)
  .route('/', withdrawalRoutes)
  .route('/', marketRoutes)
  .route('/', orderRoutes)
  .route('/', positionRoutes)
  .route('/', meshRoutes)
  .route('/', matcherRoutes)
  .route('/', metricsRoutes)
  .route('/', dashboardRoutes)

app.doc31('/v1/openapi.json', {
  openapi: '3.1.0',
  info: { title: 'clearmesh', version: '1', description: 'Edge CRDT mesh for a derivatives venue' },
})

app.notFound((c) => {
  throw new ApiError(
    404,
    'route_not_found',
    `no route ${c.req.method} ${new URL(c.req.url).pathname}`,
  )
})

app.onError(errorResponse)

/** The one place errors become responses: the envelope for known ones, a logged 500 otherwise. */
export function errorResponse(error: Error, c: Context<AppEnv>): Response {
  const id = c.get('requestId') ?? 'unknown'
  const known = knownError(error)
  if (known !== undefined) {
    // A retryable refusal says when to come back (every one of them clears within seconds).
    if (known.options.retryable === true) {
      c.header('Retry-After', String(known.options.retryAfterSeconds ?? retryAfterSeconds))
    }
    return c.json(known.envelope(id), known.status)
  }
  console.error(
    JSON.stringify({ msg: 'unhandled error', requestId: id, error: String(error?.stack ?? error) }),
  )
  return c.json(new ApiError(500, 'internal_error', 'internal error').envelope(id), 500)
}
