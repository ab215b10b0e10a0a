// What this isolate's HTTP API has answered: a latency histogram per method, route pattern and
// status, and refusals by error code; one structured log line per request. Routes are Hono's
// matched patterns (`/v1/orders/:orderId`), never the raw URL, and methods outside the standard
// set are `OTHER`, so every label takes a bounded set of values.

import type { Context, MiddlewareHandler } from 'hono'
import { matchedRoutes } from 'hono/route'
import { latencyBucketsMs } from '../../constants'
import * as histogram from '../../histogram'
import { knownError } from '../api-error'
import type { AppEnv } from '../app-env'

export type RequestSeries = { method: string; route: string; status: number }

export type RequestMetrics = {
  requests: Map<string, RequestSeries & { latencyMs: histogram.Histogram }>
  /** Error codes answered (4xx and 5xx), by code. */
  refusals: Map<string, number>
}

export const createRequestMetrics = (): RequestMetrics => ({
  requests: new Map(),
  refusals: new Map(),
})

/** The route label of requests no route matched (a 404, or a middleware's refusal before it). */
export const unmatchedRoute = 'unmatched'

const methods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/** The pattern of the route that matched the request's handler; middleware (`use`) is `ALL`. */
export function routeOf(c: Context): string {
  const handlers = matchedRoutes(c).filter((route) => route.method !== 'ALL')
  return handlers.at(-1)?.path ?? unmatchedRoute
}

export function record(
  metrics: RequestMetrics,
  series: RequestSeries,
  ms: number,
  refusal: string | undefined,
): void {
  const method = methods.has(series.method) ? series.method : 'OTHER'
  const key = `${method} ${series.route} ${series.status}`
  let entry = metrics.requests.get(key)
  if (entry === undefined) {
    entry = { ...series, method, latencyMs: histogram.create(latencyBucketsMs) }
    metrics.requests.set(key, entry)
  }
  histogram.observe(entry.latencyMs, ms)
  if (refusal !== undefined) metrics.refusals.set(refusal, (metrics.refusals.get(refusal) ?? 0) + 1)
}

/** This isolate's counters: what `GET /metrics` reports for the Worker itself. */
export const isolateRequests = createRequestMetrics()

/**
 * Times every request, counts it under its route pattern and status, and logs one JSON line:
 * `{"msg":"request","method","route","status","ms","requestId","node"}`.
 *
 * @example
 * app.use(requestMetrics(isolateRequests))
 */
export const requestMetrics = (metrics: RequestMetrics): MiddlewareHandler<AppEnv> =>
  async function requestMetrics(c, next) {
    const startedAt = performance.now()
    await next()
    const ms = performance.now() - startedAt
    const series = { method: c.req.method, route: routeOf(c), status: c.res.status }
    // The error handler has answered by now; its code is the refusal's.
    const refusal =
      c.error === undefined ? undefined : (knownError(c.error)?.code ?? 'internal_error')
    record(metrics, series, ms, refusal)
    console.log(
      JSON.stringify({
        msg: 'request',
        ...series,
        ms: Math.round(ms * 100) / 100,
        ...(refusal !== undefined && { code: refusal }),
        requestId: c.get('requestId'),
        node: c.var.config?.nodeId,
      }),
    )
  }
