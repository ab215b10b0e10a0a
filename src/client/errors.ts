// The one error the client SDK throws: the node's error envelope when there was an answer, or a
// transport failure (timeout, connection) when there was none. `executionStatus` says whether the
// request may have taken effect: `not_executed` (safe to send again), `unknown` (send again with
// the same request id to learn the outcome), or null (the node decided: a 4xx took no effect).

export type ExecutionStatus = 'not_executed' | 'unknown' | null

export type ClearmeshErrorFields = {
  /** HTTP status of the answer; 0 when no node answered. */
  status: number
  retryable: boolean
  executionStatus: ExecutionStatus
  /** The node's id of the request (X-Request-Id), when it answered. */
  requestId: string | null
  /** Base URL of the node that answered last, or that was tried last. */
  node: string | null
  /** How many attempts the call made, across every node it tried. */
  attempts: number
  /** Every other field of the envelope (issues, order, retryAfterMs...). */
  details: Record<string, unknown>
}

export class ClearmeshError extends Error {
  override name = 'ClearmeshError'
  readonly status: number
  readonly retryable: boolean
  readonly executionStatus: ExecutionStatus
  readonly requestId: string | null
  readonly node: string | null
  readonly attempts: number
  readonly details: Record<string, unknown>

  constructor(
    readonly code: string,
    message: string,
    fields: ClearmeshErrorFields,
  ) {
    super(message)
    this.status = fields.status
    this.retryable = fields.retryable
    this.executionStatus = fields.executionStatus
    this.requestId = fields.requestId
    this.node = fields.node
    this.attempts = fields.attempts
    this.details = fields.details
  }
}

type Envelope = {
  error: {
    code: string
    message: string
    retryable?: boolean
    executionStatus?: string
    requestId?: string
  }
}

const isEnvelope = (body: unknown): body is Envelope => {
  const error = (body as { error?: unknown } | null)?.error as Record<string, unknown> | undefined
  return typeof error?.code === 'string' && typeof error.message === 'string'
}

const executionOf = (status: number, stated: unknown): ExecutionStatus => {
  if (stated === 'not_executed' || stated === 'unknown') return stated
  // The API's contract (design.md §6): a 503 was not executed, a 504's outcome is unknown.
  if (status === 503) return 'not_executed'
  if (status === 504) return 'unknown'
  return null
}

/** The error of a non-2xx answer: its envelope, or a description of a body that is not one. */
export function errorOfAnswer(
  answer: { status: number; body: unknown; requestId: string | null; node: string },
  attempts: number,
): ClearmeshError {
  const { status, body, requestId, node } = answer
  if (!isEnvelope(body)) {
    const text = typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body)
    return new ClearmeshError(
      'unexpected_response',
      `HTTP ${status} without an error envelope: ${text}`,
      {
        status,
        retryable: status === 503 || status === 504,
        executionStatus: executionOf(status, undefined),
        requestId,
        node,
        attempts,
        details: {},
      },
    )
  }
  const { code, message, retryable, executionStatus, requestId: stated, ...details } = body.error
  return new ClearmeshError(code, message, {
    status,
    retryable: retryable === true,
    executionStatus: executionOf(status, executionStatus),
    requestId: typeof stated === 'string' ? stated : requestId,
    node,
    attempts,
    details,
  })
}

/** The error of an attempt no node answered: it may have arrived, so its outcome is unknown. */
export function errorOfTransport(
  cause: unknown,
  timedOut: boolean,
  node: string,
  attempts: number,
): ClearmeshError {
  // Node's fetch says "fetch failed" and names the reason (ECONNREFUSED...) in its cause.
  const code = (cause as { cause?: { code?: unknown } } | null)?.cause?.code
  const reason =
    (cause instanceof Error ? cause.message : String(cause)) +
    (typeof code === 'string' ? ` (${code})` : '')
  return new ClearmeshError(
    timedOut ? 'timeout' : 'unreachable',
    timedOut ? `${node} did not answer in time` : `${node} could not be reached: ${reason}`,
    {
      status: 0,
      retryable: true,
      executionStatus: 'unknown',
      requestId: null,
      node,
      attempts,
      details: {},
    },
  )
}
