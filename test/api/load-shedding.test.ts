// The node's bound on requests served at once (src/api/middleware/load-shedding.ts), through a
// small app whose handlers wait until the test lets them go, so "in flight" is exact: past the
// bound every request is refused 503 `overloaded` at once, with Retry-After and the envelope,
// except cancels and reduce-only orders, which have capacity of their own (bounded too); mesh
// traffic passes; the node serves normally as soon as the load is gone.

import { Hono } from 'hono'
import { requestId } from 'hono/request-id'
import { describe, expect, it } from 'vitest'
import { errorResponse } from '../../src/api/app'
import type { AppEnv } from '../../src/api/app-env'
import { loadShedding } from '../../src/api/middleware/load-shedding'
import type { NodeConfig } from '../../src/config'
import { inFlightReservedForReducing } from '../../src/constants'

const inFlightMax = 3

/** An app with the load bound whose every handler waits for `release`. */
function heldApp() {
  let release!: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  const app = new Hono<AppEnv>()
  app.use(requestId({ headerName: 'X-Request-Id' }))
  app.use(async (c, next) => {
    c.set('config', { inFlightMax } as NodeConfig)
    await next()
  })
  app.use('/v1/*', loadShedding())
  app.all('/v1/*', async (c) => {
    await released
    return c.json({ served: c.req.path }, 200)
  })
  app.onError(errorResponse)
  const send = (method: string, path: string, body?: unknown) =>
    app.request(path, {
      method,
      ...(body !== undefined && {
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      }),
    })
  return { send, release }
}

const order = { clientOrderId: 'c1', instrument: 'BTC-PERP', side: 'sell', size: '1' }

async function expectOverloaded(response: Response): Promise<void> {
  expect(response.status).toBe(503)
  expect(response.headers.get('retry-after')).toBe('1')
  const body = (await response.json()) as any
  expect(body.error).toMatchObject({
    code: 'overloaded',
    retryable: true,
    executionStatus: 'not_executed',
    requestId: response.headers.get('x-request-id'),
  })
  expect(body.error.message).toMatch(/cancels and reduce-only orders are still taken/)
}

describe('load shedding', () => {
  it('refuses past the bound at once, keeps admitting cancels and reduce-only orders', async () => {
    const { send, release } = heldApp()
    const held = Array.from({ length: inFlightMax }, (_, i) =>
      send('POST', '/v1/withdrawals', { withdrawalId: `w${i}` }),
    )
    // Full: writes, reads, admin writes and orders that may add risk are refused without waiting.
    await expectOverloaded(await send('POST', '/v1/withdrawals', { withdrawalId: 'w-late' }))
    await expectOverloaded(await send('GET', '/v1/account'))
    await expectOverloaded(await send('POST', '/v1/admin/deposits', { depositId: 'd' }))
    await expectOverloaded(await send('POST', '/v1/orders', order))
    await expectOverloaded(await send('POST', '/v1/orders', { ...order, reduceOnly: false }))
    await expectOverloaded(await send('POST', '/v1/orders', 'not json'))
    // Cancels and reduce-only orders take the reserved capacity, up to its own bound.
    const reducing = Array.from({ length: inFlightReservedForReducing }, (_, i) =>
      i % 3 === 0
        ? send('DELETE', `/v1/orders/o-${i}`)
        : i % 3 === 1
          ? send('DELETE', '/v1/orders?instrument=BTC-PERP')
          : send('POST', '/v1/orders', { ...order, clientOrderId: `r${i}`, reduceOnly: true }),
    )
    await expectOverloaded(await send('DELETE', '/v1/orders/o-over'))
    // Mesh traffic is not client load.
    const mesh = send('POST', '/v1/mesh/matcher/BTC-PERP')
    release()
    for (const response of [...(await Promise.all([...held, ...reducing])), await mesh]) {
      expect(response.status).toBe(200)
    }
    // The load gone, the node serves normally again.
    expect((await send('POST', '/v1/withdrawals', { withdrawalId: 'w-after' })).status).toBe(200)
    expect((await send('GET', '/v1/account')).status).toBe(200)
  })

  it('below the bound nothing is refused, whatever it is', async () => {
    const { send, release } = heldApp()
    const held = Array.from({ length: inFlightMax }, () => send('GET', '/v1/ledger'))
    release()
    for (const response of await Promise.all(held)) expect(response.status).toBe(200)
  })
})
