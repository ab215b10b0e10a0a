// Shared pieces of every route module: the router factory (validation failures become the error
// envelope), unwrapping replica results, and what a response reflects.

import { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { canonicalJson } from '../domain/canonical'
import type { Result } from '../domain/result'
import type { Reflects } from '../replica/shard-replica'
import { ApiError, fromRejection } from './api-error'
import type { AppEnv } from './app-env'
import { ErrorEnvelope } from './schemas'
import * as clock from '../clock'

export const createRouter = () =>
  new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return
      const issues = result.error.issues.map((issue) => ({
        path: issue.path.join('.'),
        message: issue.message,
      }))
      const first = issues[0]
      throw new ApiError(
        400,
        'validation_failed',
        first ? `${first.path || result.target}: ${first.message}` : 'invalid request',
        { details: { issues } },
      )
    },
  })

/** The value of a replica result, or the client's error for its rejection. */
export function unwrap<T>(result: Result<T>): T {
  if (!result.ok) throw fromRejection(result)
  return result.value
}

export const reflecting = (c: Context<AppEnv>, shards: Reflects[]) => ({
  node: c.var.config.nodeId,
  shards,
  at: clock.now(),
})

/** Answers a write; a replayed request id gets the stored result and `Idempotent-Replayed: true`. */
export function respondWritten<T extends object, S extends ContentfulStatusCode>(
  c: Context<AppEnv>,
  body: T,
  replayed: boolean,
  status: S,
) {
  if (replayed) c.header('Idempotent-Replayed', 'true')
  return c.json(body, status)
}

/** Digest of a request's canonical payload: a retry with another payload is a 409. */
export async function requestDigest(payload: Record<string, string>): Promise<string> {
  const bytes = await crypto.subtle.digest(
    'SHA-256',
    new TextEncoder().encode(canonicalJson(payload)),
  )
  return Array.from(new Uint8Array(bytes).subarray(0, 16), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('')
}

const errorDescriptions = {
  400: 'invalid request',
  401: 'missing or invalid credentials',
  403: 'credentials lack the scope',
  404: 'not found',
  409: 'request id reused with another payload',
  413: 'body too large',
  415: 'body is not JSON',
  422: 'rejected by a business rule',
  429: "over the API key's rate limit on this node; retry after Retry-After seconds",
  503: 'not executed (overloaded, or the node cannot decide now); retry after Retry-After seconds',
  504: 'outcome unknown; retry with the same request id',
} as const

/** OpenAPI responses for the error statuses a route can answer with. */
export const errorsOf = (...statuses: (keyof typeof errorDescriptions)[]) =>
  Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: errorDescriptions[status],
        content: { 'application/json': { schema: ErrorEnvelope } },
      },
    ]),
  )

export const json = <T>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
})
