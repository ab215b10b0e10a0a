import type { MiddlewareHandler } from 'hono'
import { inFlightReservedForReducing } from '../../constants'
import { ApiError } from '../api-error'
import type { AppEnv } from '../app-env'
import { reducesRisk } from '../reduces-risk'

/**
 * Bounds the requests this Worker serves at once. Past the node's `inFlightMax`, a request is
 * refused at once with 503 `overloaded` (retryable, not executed) instead of queueing behind the
 * others; cancels and reduce-only orders have `inFlightReservedForReducing` more. Mesh traffic
 * (sync links, forwarded orders a peer already admitted) passes. The count is the Worker
 * isolate's: one per node locally (one workerd process per node); on Cloudflare each isolate
 * bounds itself.
 *
 * @example
 * app.use('/v1/*', loadShedding())
 */
export const loadShedding = (): MiddlewareHandler<AppEnv> => {
  let inFlight = 0
  return async function loadShedding(c, next) {
    if (new URL(c.req.url).pathname.startsWith('/v1/mesh/')) return next()
    const max = c.var.config.inFlightMax
    // Counted before anything awaits, so concurrent arrivals see each other.
    inFlight++
    try {
      if (inFlight > max) {
        const reserved = inFlight <= max + inFlightReservedForReducing && (await reducesRisk(c))
        if (!reserved) {
          throw new ApiError(
            503,
            'overloaded',
            `this node is serving ${inFlight - 1} requests at once, its limit; retry shortly ` +
              '(cancels and reduce-only orders are still taken)',
            { retryable: true, details: { executionStatus: 'not_executed' } },
          )
        }
      }
      await next()
    } finally {
      inFlight--
    }
  }
}
