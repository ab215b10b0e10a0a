// The operator's circuit breakers: halt or restrict one instrument, every instrument (the venue),
// or withdrawals; and lift them (`normal`). Each is an entry written into the documents that
// carry it (the instrument's market, every market, every shard), so every node obeys it as soon
// as it has replicated there; cancels are always taken, so clients can reduce risk.

import { createRoute, z } from '@hono/zod-openapi'
import type { Env, NodeConfig } from '../../config'
import {
  breakerModes,
  type Breaker,
  type BreakerMode,
  type BreakerScope,
} from '../../domain/breakers'
import { marketStub, shardStub } from '../../replica/addressing'
import { seal } from '../../state/operator-signature'
import { ApiError } from '../api-error'
import { adminAuth } from '../middleware/admin-auth'
import { createRouter, errorsOf, json } from '../router'
import * as trading from '../trading-schemas'
import { listed } from './market'
import * as clock from '../../clock'

export const BreakerBody = z.strictObject({
  scope: z.enum(['instrument', 'venue', 'withdrawals'], {
    error: 'scope is "instrument", "venue" or "withdrawals"',
  }),
  instrument: trading.Symbol.optional(),
  mode: z.enum(breakerModes, { error: `mode is one of ${breakerModes.join(', ')}` }),
  reason: z.string().min(1).max(200),
})

export const BreakerEntry = z
  .object({
    id: z.string(),
    scope: z.enum(['instrument', 'venue', 'withdrawals']),
    instrument: z.string().nullable(),
    mode: z.enum(breakerModes),
    reason: z.string(),
    ts: z.number().int(),
    node: z.string(),
    signature: z.string().openapi({ description: "the operator's Ed25519 signature, base64url" }),
  })
  .openapi('Breaker')

export const BreakerState = z
  .object({
    withdrawals: z.string(),
    instruments: z.record(z.string(), z.string()),
  })
  .openapi('BreakerState')

const setBreaker = createRoute({
  method: 'post',
  path: '/v1/admin/breakers',
  tags: ['admin'],
  summary: 'Halt, restrict or resume an instrument, the whole venue, or withdrawals',
  security: [{ adminToken: [] }],
  middleware: [adminAuth()] as const,
  request: {
    body: { content: { 'application/json': { schema: BreakerBody } }, required: true },
  },
  responses: {
    201: json(BreakerEntry, 'recorded here; every node obeys it once replicated'),
    ...errorsOf(400, 401, 403, 413, 415),
  },
})

const getBreakers = createRoute({
  method: 'get',
  path: '/v1/admin/breakers',
  tags: ['admin'],
  summary: 'The breaker modes in force on this node',
  security: [{ adminToken: [] }],
  middleware: [adminAuth()] as const,
  responses: { 200: json(BreakerState, 'modes in force'), ...errorsOf(401) },
})

export const adminBreakerRoutes = createRouter()
  .openapi(setBreaker, async (c) => {
    const { config } = c.var
    const body = c.req.valid('json')
    const scope: BreakerScope = body.scope
    if ((scope === 'instrument') !== (body.instrument !== undefined)) {
      throw new ApiError(
        400,
        'validation_failed',
        'an instrument breaker, and only it, names an instrument',
      )
    }
    const instrument =
      body.instrument === undefined ? null : listed(config, body.instrument, 400).symbol
    if (config.operatorSigningKey === null) {
      throw new ApiError(
        403,
        'no_operator_key',
        "this node does not hold the operator's signing key: set breakers on a node that does",
      )
    }
    const ts = clock.now()
    const unsigned: Breaker = {
      // Unique even for two breakers in one millisecond (the later by id wins a tie).
      id: `breaker/${scope}/${instrument ?? '*'}/${ts}/${config.nodeId}/${crypto.randomUUID()}`,
      scope,
      instrument,
      mode: body.mode,
      reason: body.reason,
      ts,
      node: config.nodeId,
    }
    const entry = { ...unsigned, signature: seal(config.operatorSigningKey, 'breakers', unsigned) }
    const symbols = instrument !== null ? [instrument] : [...config.instruments.keys()]
    if (scope === 'withdrawals') {
      await Promise.all(
        Array.from({ length: config.shardCount }, (_, shard) =>
          shardStub(c.env, config, shard).recordBreaker(entry),
        ),
      )
    } else {
      await Promise.all(
        symbols.map((symbol) => marketStub(c.env, config, symbol).recordBreaker(entry)),
      )
    }
    return c.json(entry, 201)
  })
  .openapi(getBreakers, async (c) => c.json(await breakerState(c.env, c.var.config), 200))

/** The breaker modes in force on this node: withdrawals, and each instrument's. */
export async function breakerState(
  env: Env,
  config: NodeConfig,
): Promise<{ withdrawals: BreakerMode; instruments: Record<string, BreakerMode> }> {
  const withdrawals = await shardStub(env, config, 0).withdrawalsMode()
  const instruments = await Promise.all(
    [...config.instruments.keys()].map(async (symbol) => [
      symbol,
      (await marketStub(env, config, symbol).mode()).mode,
    ]),
  )
  return { withdrawals: withdrawals.mode, instruments: Object.fromEntries(instruments) }
}
