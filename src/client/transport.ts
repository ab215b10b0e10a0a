// Sends one logical call to the mesh: to the node that answered last, and on a failure that is
// safe to repeat to the next node, with the same request (and so the same request id) every time,
// only its time fresh on each attempt (a signature's timestamp, a deposit's signedAt).
//
// What is repeated: a 503 (the node says it did not execute the request), and, for calls that a
// request id makes idempotent, a 504 (outcome unknown: the retry replays whatever took effect),
// a timeout and a connection failure. Never a 4xx: the node decided, and sending the same request
// again would be decided the same way. Attempts are bounded and spaced by a doubling backoff.
// Only fetch, AbortController and Web Crypto are used, so this runs in browsers too.

import * as clock from '../clock'
import { authHeaders, type Auth } from './auth'
import { ClearmeshError, errorOfAnswer, errorOfTransport } from './errors'

export type Fetch = (url: string, init: RequestInit) => Promise<Response>

export type TransportOptions = {
  /** Base URLs of the nodes, the preferred one first; any node serves any call. */
  nodes: readonly string[]
  fetch?: Fetch
  /** Time one attempt may take, answer body included (default 10 s). */
  attemptTimeoutMs?: number
  /** Attempts of one call across every node (default 4). */
  attemptsMax?: number
  /** Wait before the second attempt, doubled before each next one up to `backoffMsMax`. */
  backoffMs?: number
  backoffMsMax?: number
  /** How to wait between attempts (tests pass one that does not). */
  sleep?: (ms: number) => Promise<void>
}

export type Call = {
  method: 'GET' | 'POST' | 'DELETE'
  /** Path with its query, exactly as sent and signed. */
  path: string
  /** JSON body (an object when `timeField` is set). */
  body?: unknown
  /**
   * A body field set to the time of each attempt: the node takes it only within its receive
   * window, as a signature's timestamp, so a retry must not carry the first attempt's.
   */
  timeField?: 'signedAt'
  auth: Auth
  /**
   * Whether sending the call again cannot take effect twice: reads, and writes named by a request
   * id. A call that is not idempotent is repeated only after a 503, which says it was not executed.
   */
  idempotent: boolean
}

export type Answer<T> = {
  value: T
  status: number
  /** Base URL of the node that answered. */
  node: string
  /** The node's id of the request (X-Request-Id). */
  requestId: string | null
  /** The node answered with the stored result of an earlier attempt (Idempotent-Replayed). */
  replayed: boolean
  attempts: number
}

export type Transport = {
  send<T>(call: Call): Promise<Answer<T>>
  readonly nodes: readonly string[]
}

const defaults = { attemptTimeoutMs: 10_000, attemptsMax: 4, backoffMs: 100, backoffMsMax: 2_000 }

const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

type Received = { status: number; headers: Headers; body: unknown }

/** Whether a failed attempt may be made again, on this node or another. */
function repeatable(error: ClearmeshError, call: Call): boolean {
  if (error.status === 0) return call.idempotent
  if (error.status === 503) return call.idempotent || error.executionStatus === 'not_executed'
  if (error.status === 504) return call.idempotent
  return false
}

export function createTransport(options: TransportOptions): Transport {
  if (options.nodes.length === 0) throw new Error('the client needs at least one node URL')
  const nodes = options.nodes.map((url) => url.replace(/\/+$/, ''))
  const fetcher: Fetch = options.fetch ?? ((url, init) => fetch(url, init))
  const settings = {
    attemptTimeoutMs: options.attemptTimeoutMs ?? defaults.attemptTimeoutMs,
    attemptsMax: options.attemptsMax ?? defaults.attemptsMax,
    backoffMs: options.backoffMs ?? defaults.backoffMs,
    backoffMsMax: options.backoffMsMax ?? defaults.backoffMsMax,
  }
  const sleep = options.sleep ?? wait
  if (!Number.isInteger(settings.attemptsMax) || settings.attemptsMax < 1) {
    throw new Error(`attemptsMax must be a whole number of at least 1, not ${settings.attemptsMax}`)
  }
  // The node that answered last: calls start there, and a failure moves on to the next.
  let current = 0

  async function attempt(node: string, call: Call): Promise<Received> {
    const body = bodyOf(call)
    const headers = await authHeaders(call.auth, {
      method: call.method,
      pathWithQuery: call.path,
      body,
    })
    if (call.body !== undefined) headers['content-type'] = 'application/json'
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(), settings.attemptTimeoutMs)
    try {
      const init: RequestInit = { method: call.method, headers, signal: abort.signal }
      if (call.body !== undefined) init.body = body
      const response = await fetcher(node + call.path, init)
      const text = await response.text()
      return { status: response.status, headers: response.headers, body: parseBody(text) }
    } finally {
      clearTimeout(timer)
    }
  }

  async function send<T>(call: Call): Promise<Answer<T>> {
    let failure: ClearmeshError | undefined
    for (let attempts = 1; attempts <= settings.attemptsMax; attempts++) {
      if (failure !== undefined) {
        await sleep(Math.min(settings.backoffMsMax, settings.backoffMs * 2 ** (attempts - 2)))
      }
      const index = current
      const node = nodes[index]!
      let received: Received
      try {
        received = await attempt(node, call)
      } catch (cause) {
        const timedOut = (cause as Error)?.name === 'AbortError'
        failure = errorOfTransport(cause, timedOut, node, attempts)
        if (!repeatable(failure, call)) throw failure
        current = (index + 1) % nodes.length
        continue
      }
      const requestId = received.headers.get('x-request-id')
      if (received.status >= 200 && received.status < 300) {
        return {
          value: received.body as T,
          status: received.status,
          node,
          requestId,
          replayed: received.headers.get('idempotent-replayed') === 'true',
          attempts,
        }
      }
      failure = errorOfAnswer({ ...received, requestId, node }, attempts)
      if (!repeatable(failure, call)) throw failure
      current = (index + 1) % nodes.length
    }
    throw failure!
  }

  return { send, nodes }
}

/** The JSON body of one attempt of `call`, stamped with the attempt's time if it asks for it. */
function bodyOf(call: Call): string {
  if (call.body === undefined) return ''
  if (call.timeField === undefined) return JSON.stringify(call.body)
  return JSON.stringify({
    ...(call.body as Record<string, unknown>),
    [call.timeField]: clock.now(),
  })
}

function parseBody(text: string): unknown {
  if (text.length === 0) return null
  try {
    return JSON.parse(text)
  } catch {
    // Not JSON (a proxy's error page): the text is what the error shows.
    return text
  }
}
