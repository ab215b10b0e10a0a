// The one error type of the HTTP API and the one envelope every error is answered with:
// {"error":{"code","message","retryable","requestId",...details}} (design.md §6).

import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'

export class ApiError extends Error {
  override name = 'ApiError'
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly options: {
      retryable?: boolean
      /** Retry-After of a retryable refusal, when not the default (`retryAfterSeconds`). */
      retryAfterSeconds?: number
      details?: Record<string, unknown>
    } = {},
  ) {
    super(message)
  }

  envelope(requestId: string) {
    return {
      error: {
        code: this.code,
        message: this.message,
        retryable: this.options.retryable ?? false,
        requestId,
        ...this.options.details,
      },
    }
  }
}

/** HTTP status of each rejection code a replica or a domain decision returns. */
const statusOfRejection: Record<string, { status: ContentfulStatusCode; retryable: boolean }> = {
  account_not_found: { status: 404, retryable: false },
  key_not_found: { status: 404, retryable: false },
  key_revoked: { status: 409, retryable: false },
  not_found: { status: 404, retryable: false },
  idempotency_conflict: { status: 409, retryable: false },
  insufficient_funds: { status: 422, retryable: false },
  insufficient_margin: { status: 422, retryable: false },
  shard_damaged: { status: 503, retryable: true },
  mark_unavailable: { status: 503, retryable: true },
  mark_stale: { status: 503, retryable: true },
  price_outside_band: { status: 422, retryable: false },
  too_many_open_orders: { status: 422, retryable: false },
  outcome_unknown: { status: 504, retryable: true },
  not_home_node: { status: 503, retryable: true },
  home_node_unreachable: { status: 503, retryable: true },
  shard_pending: { status: 503, retryable: true },
  quorum_timeout: { status: 504, retryable: true },
  account_busy: { status: 503, retryable: true },
  insufficient_local_rights: { status: 503, retryable: true },
  market_restricted: { status: 503, retryable: true },
  withdrawals_halted: { status: 503, retryable: true },
  market_diverged: { status: 503, retryable: true },
  market_syncing: { status: 503, retryable: true },
  shard_syncing: { status: 503, retryable: true },
  no_operator_key: { status: 403, retryable: false },
  snapshot_refused: { status: 422, retryable: false },
  epoch_folded: { status: 422, retryable: false },
  order_history_folded: { status: 409, retryable: false },
}

/**
 * Turns a rejection returned as a value into the error the client sees. A 503 means the request
 * was not executed; a 504 that its outcome is unknown. Either way the client retries it with the
 * same request id, which replays whatever did take effect.
 */
export function fromRejection(
  rejection: { code: string; message: string },
  details: Record<string, unknown> = {},
): ApiError {
  const mapped = statusOfRejection[rejection.code]
  if (mapped === undefined) throw new Error(`unmapped rejection code ${rejection.code}`)
  const execution =
    mapped.status === 503
      ? { executionStatus: 'not_executed' }
      : mapped.status === 504
        ? { executionStatus: 'unknown' }
        : {}
  return new ApiError(mapped.status, rejection.code, rejection.message, {
    retryable: mapped.retryable,
    details: { ...execution, ...details },
  })
}

/** The client's error for a thrown error, or undefined for an unexpected one (answered 500). */
export function knownError(error: unknown): ApiError | undefined {
  if (error instanceof ApiError) return error
  if (error instanceof HTTPException && error.status === 400)
    return new ApiError(400, 'malformed_json', 'the request body is not valid JSON')
  return undefined
}
