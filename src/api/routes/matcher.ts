// The matcher endpoint other nodes forward orders and cancels to (src/mesh/forward.ts): only on an
// instrument's home node, only for a node holding the mesh secret. Internal to the mesh, so it is
// not in the client OpenAPI document; its body is still checked like any other.

import { z } from 'zod'
import { durabilities } from '../../config'
import { viewToWire, matcherDoc, type MatcherAnswer } from '../../mesh/forward'
import { marketStub } from '../../replica/addressing'
import { ApiError } from '../api-error'
import { verifiedPeer } from '../middleware/mesh-peer'
import { createRouter } from '../router'

const text = z.string().max(128)
const OrderInput = z.strictObject({
  kind: z.literal('order'),
  orderId: text,
  clientOrderId: text,
  accountId: text,
  side: z.enum(['buy', 'sell']),
  type: z.enum(['limit', 'market']),
  price: text.nullable(),
  size: text,
  timeInForce: z.enum(['GTC', 'IOC', 'FOK', 'POST_ONLY']),
  reduceOnly: z.boolean(),
  receivedAt: z.number().int().nonnegative(),
})
const CancelInput = z.strictObject({
  kind: z.literal('cancel'),
  orderId: text,
  accountId: text,
  receivedAt: z.number().int().nonnegative(),
})
const MatcherCall = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('submit'), input: OrderInput, durability: z.enum(durabilities) }),
  z.strictObject({ op: z.literal('cancel'), input: CancelInput, durability: z.enum(durabilities) }),
  z.strictObject({
    op: z.literal('replay'),
    orderId: text,
    accountId: text,
    recordedAt: z.number().int().nonnegative(),
  }),
])

export const matcherRoutes = createRouter()
matcherRoutes.post('/v1/mesh/matcher/:symbol', async (c) => {
  const symbol = c.req.param('symbol')
  if (!c.var.config.instruments.has(symbol))
    throw new ApiError(404, 'not_found', `no instrument ${symbol}`)
  const presented = (c.req.header('Authorization') ?? '').replace(/^Bearer /, '')
  const peer = await verifiedPeer(c, presented, matcherDoc(symbol))
  if (peer.role !== 'node') throw new ApiError(403, 'forbidden', 'followers cannot trade')
  const call = MatcherCall.safeParse(await c.req.json().catch(() => undefined))
  if (!call.success) throw new ApiError(400, 'validation_failed', z.prettifyError(call.error))
  const result = await marketStub(c.env, c.var.config, symbol).match(call.data)
  const answer: MatcherAnswer = result.ok
    ? {
        ok: true,
        value: { value: viewToWire(result.value.value), reflects: result.value.reflects },
      }
    : { ok: false, code: result.code, message: result.message }
  return c.json(answer, 200)
})
