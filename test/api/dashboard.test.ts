// The dashboard's routes inside the Workers runtime: the page is public and holds no data (inline
// only, a strict Content-Security-Policy); its data route needs the admin token and gives this
// node's view (a single node here: no peers); node views for peers need a mesh token.

import { describe, expect, it } from 'vitest'
import { api, setUpApiTests, shardCount } from './helpers'

setUpApiTests()

describe('GET /dashboard', () => {
  it('is a self-contained page with no data and no external assets', async () => {
    const reply = await api.plain('GET', '/dashboard')
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(reply.headers.get('content-security-policy')).toContain("default-src 'none'")
    expect(reply.headers.get('content-security-policy')).toContain("connect-src 'self'")
    const html = String(reply.body)
    expect(html).toMatch(/^<!doctype html>/)
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//)
    expect(html).toContain("'/v1/admin/dashboard'")
    expect(html).not.toContain('test-admin-token')
  })
})

describe('GET /v1/admin/dashboard', () => {
  it('needs the admin token', async () => {
    const reply = await api.plain('GET', '/v1/admin/dashboard')
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('missing_admin_token')
  })

  it("gives this node's view: documents, breakers, settlements, writes", async () => {
    const reply = await api.admin('GET', '/v1/admin/dashboard')
    expect(reply.status).toBe(200)
    expect(reply.body.node).toBe('a')
    expect(reply.body.nodes).toHaveLength(1)
    const [own] = reply.body.nodes
    expect(own).toMatchObject({ node: 'a', reachable: true })
    expect(own.view.documents.map((d: { doc: string }) => d.doc)).toEqual(
      expect.arrayContaining([`shard/${shardCount - 1}`, 'market/BTC-PERP']),
    )
    expect(own.view.documents[0]).toMatchObject({
      contentDigest: expect.any(String),
      pending: false,
      damaged: false,
      links: [],
    })
    expect(own.view.breakers).toMatchObject({ withdrawals: 'normal' })
    expect(own.view.settlements).toContainEqual({
      instrument: 'BTC-PERP',
      lastEpoch: expect.toBeOneOf([null, expect.any(Number)]),
      epochs: expect.any(Number),
    })
    expect(own.view.writes).toEqual({ local: expect.any(Number), peer: 0 })
  })
})

describe('GET /v1/mesh/view', () => {
  it('is refused on a node without a mesh secret, whatever the caller presents', async () => {
    const reply = await api.admin('GET', '/v1/mesh/view')
    expect(reply.status).toBe(403)
    expect(reply.body.error.code).toBe('mesh_disabled')
  })
})
