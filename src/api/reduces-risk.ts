// Which requests only reduce a client's risk: cancels, and orders marked reduce-only (the matcher
// never lets those increase a position). They are admitted when other requests are shed, by the
// key's rate limit (a bucket of their own) and by the node's load bound (capacity of their own),
// so a client can always get out of a position however loaded the node is.

import type { Context } from 'hono'
import type { AppEnv } from './app-env'

export async function reducesRisk(c: Context<AppEnv>): Promise<boolean> {
  const path = new URL(c.req.url).pathname
  if (c.req.method === 'DELETE') return path === '/v1/orders' || path.startsWith('/v1/orders/')
  if (c.req.method !== 'POST' || path !== '/v1/orders') return false
  let body: unknown
  try {
    body = JSON.parse(await c.req.text())
  } catch {
    return false // not JSON: not a reduce-only order (validation refuses it later)
  }
  return (
    typeof body === 'object' && body !== null && 'reduceOnly' in body && body.reduceOnly === true
  )
}
