// The public surface: GET /health and the OpenAPI 3.1 document, which must describe every route
// with its security scheme, parameters and error responses, and only routes that are served.

import { validate } from '@readme/openapi-parser'
import { beforeAll, describe, expect, it } from 'vitest'
import { app } from '../../src/api/app'
import { accountShardOf, api, expectReflects, setUpApiTests } from './helpers'

setUpApiTests()

type Operation = {
  security?: Record<string, string[]>[]
  parameters?: { name: string; in: string; required?: boolean; schema?: unknown }[]
  requestBody?: { required?: boolean; content: Record<string, { schema: unknown }> }
  responses: Record<string, { description: string; content?: Record<string, { schema: any }> }>
  summary?: string
}

let doc: any

beforeAll(async () => {
  const reply = await api.plain('GET', '/v1/openapi.json')
  expect(reply.status).toBe(200)
  expect(reply.headers.get('content-type')).toMatch(/^application\/json/)
  doc = reply.body
})

const operation = (method: string, path: string): Operation => {
  const found = doc.paths?.[path]?.[method.toLowerCase()]
  expect(found, `${method} ${path} is documented`).toBeDefined()
  return found
}

/** Every route the issue asks for: method, path, security scheme, error statuses it documents. */
const routes: [string, string, 'adminToken' | 'signature' | null, number[]][] = [
  ['GET', '/health', null, []],
  ['POST', '/v1/admin/accounts', 'adminToken', [400, 401, 413]],
  ['POST', '/v1/admin/accounts/{accountId}/keys', 'adminToken', [400, 401, 404, 413]],
  ['DELETE', '/v1/admin/keys/{keyId}', 'adminToken', [401, 404]],
  ['POST', '/v1/admin/keys/{keyId}/rotate', 'adminToken', [401, 404, 409]],
  ['POST', '/v1/admin/deposits', 'adminToken', [400, 401, 404, 409, 413]],
  ['GET', '/v1/admin/shards', 'adminToken', [401]],
  ['POST', '/v1/admin/markets/{instrument}/failback', 'adminToken', [400, 401, 404, 503]],
  ['GET', '/v1/account', 'signature', [401, 403, 429, 503]],
  ['GET', '/v1/ledger', 'signature', [400, 401, 403, 503]],
  ['POST', '/v1/withdrawals', 'signature', [400, 401, 403, 409, 413, 422, 429, 503]],
  ['GET', '/v1/withdrawals/{withdrawalId}', 'signature', [400, 401, 403, 404, 503]],
]

describe('GET /health', () => {
  it('is public and names the node and its time', async () => {
    const before = Date.now()
    const reply = await api.plain('GET', '/health')
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ status: 'ok', node: 'a', at: expect.any(Number) })
    expect(reply.body.at).toBeGreaterThanOrEqual(before)
    expect(reply.headers.get('x-request-id')).toMatch(/.+/)
  })
})

describe('GET /v1/openapi.json', () => {
  it('is a public OpenAPI 3.1 document', () => {
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.info).toEqual(
      expect.objectContaining({ title: expect.any(String), version: expect.any(String) }),
    )
    expect(Object.keys(doc.paths).length).toBeGreaterThan(0)
  })

  it('declares the admin bearer token and the signed-request headers as security schemes', () => {
    const schemes = doc.components.securitySchemes
    expect(schemes.adminToken).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }))
    expect(schemes.signature).toEqual(
      expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Signature' }),
    )
    expect(schemes.apiKey).toEqual(
      expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
    )
    expect(schemes.timestamp).toEqual(
      expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Timestamp' }),
    )
    expect(schemes.signature.description).toContain('X-API-Timestamp')
    expect(schemes.signature.description).toMatch(/HMAC-SHA256/)
  })

  it.each(routes)(
    'documents %s %s with its security and errors',
    (method, path, scheme, errors) => {
      const op = operation(method, path)
      expect(op.summary, 'summary').toEqual(expect.any(String))
      if (scheme === null) expect(op.security ?? []).toEqual([])
      else if (scheme === 'signature') {
        // A signed request presents all three headers together.
        expect(op.security).toEqual([{ apiKey: [], timestamp: [], signature: [] }])
      } else expect(op.security).toEqual([{ [scheme]: [] }])
      const statuses = Object.keys(op.responses).map(Number)
      expect(
        statuses.some((s) => s >= 200 && s < 300),
        'a success response',
      ).toBe(true)
      for (const status of errors) {
        const response = op.responses[String(status)]
        expect(response, `${method} ${path} documents ${status}`).toBeDefined()
        expect(response!.content?.['application/json']?.schema).toEqual({
          $ref: '#/components/schemas/Error',
        })
      }
      // Every path template parameter is declared, required, in the path.
      for (const [, name] of path.matchAll(/\{(\w+)\}/g)) {
        expect(op.parameters).toContainEqual(
          expect.objectContaining({ name, in: 'path', required: true }),
        )
      }
    },
  )

  it('documents request bodies as strict JSON with amounts as strings', () => {
    for (const [method, path] of [
      ['POST', '/v1/admin/deposits'],
      ['POST', '/v1/withdrawals'],
    ] as const) {
      const body = operation(method, path).requestBody
      expect(body?.required).toBe(true)
      const schema: any = body!.content['application/json']!.schema
      expect(schema.additionalProperties).toBe(false)
      expect(schema.properties.amount.type).toBe('string')
      expect(schema.properties.asset).toEqual(expect.objectContaining({ enum: ['USD'] }))
      expect(schema.required).toEqual(expect.arrayContaining(['asset', 'amount']))
    }
    const deposit: any = operation('POST', '/v1/admin/deposits').requestBody!.content[
      'application/json'
    ]!.schema
    expect(deposit.required).toContain('signedAt')
    expect(deposit.properties.signedAt).toMatchObject({
      type: 'integer',
      description: expect.stringMatching(/receive window/),
    })
  })

  it('documents ledger paging and the Idempotency-Key header', () => {
    const ledger = operation('GET', '/v1/ledger').parameters ?? []
    expect(ledger).toContainEqual(expect.objectContaining({ name: 'cursor', in: 'query' }))
    expect(ledger).toContainEqual(
      expect.objectContaining({
        name: 'limit',
        in: 'query',
        schema: expect.objectContaining({ minimum: 1, maximum: 500 }),
      }),
    )
    const withdrawal = operation('POST', '/v1/withdrawals').parameters ?? []
    expect(withdrawal.map((p) => `${p.in}:${p.name.toLowerCase()}`)).toContain(
      'header:idempotency-key',
    )
  })

  it('describes the error envelope and what reads reflect', () => {
    const schemas = doc.components.schemas
    expect(schemas.Error.properties.error.required).toEqual(
      expect.arrayContaining(['code', 'message', 'retryable', 'requestId']),
    )
    expect(schemas.Reflects.required).toEqual(expect.arrayContaining(['node', 'shards', 'at']))
    for (const name of ['Account', 'LedgerPage', 'Withdrawal']) {
      expect(schemas[name].properties.reflects).toEqual({ $ref: '#/components/schemas/Reflects' })
      expect(schemas[name].required).toContain('reflects')
    }
  })

  it('is valid OpenAPI 3.1 by a validator of the specification', async () => {
    // The validator dereferences in place: it gets a copy.
    const result = await validate(structuredClone(doc))
    expect(result.valid ? [] : result.errors).toEqual([])
    expect(result.warnings).toEqual([])
  })

  it('documents every route the node serves, but those that are not for API clients', () => {
    const notForClients = new Set([
      'GET /v1/openapi.json', // the document itself
      'GET /dashboard', // the operator's HTML page
      'GET /v1/mesh/sync/{kind}/{name}', // peers' and followers' sync WebSocket (a mesh token)
      'POST /v1/mesh/matcher/{symbol}', // orders a peer forwards to the home node (a mesh token)
      'GET /v1/mesh/view', // a peer's view for the dashboard (a mesh token)
    ])
    const served = new Set(
      app.routes
        .filter((route) => route.method !== 'ALL')
        .map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, '{$1}')}`),
    )
    const documented = Object.entries<Record<string, Operation>>(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    )
    expect([...served].filter((route) => !notForClients.has(route)).sort()).toEqual(
      [...new Set(documented)].sort(),
    )
  })

  it('every $ref resolves inside the document', () => {
    const refs: string[] = []
    const visit = (node: unknown) => {
      if (Array.isArray(node)) node.forEach(visit)
      else if (node !== null && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === '$ref' && typeof value === 'string') refs.push(value)
          else visit(value)
        }
      }
    }
    visit(doc)
    expect(refs.length).toBeGreaterThan(0)
    for (const ref of new Set(refs)) {
      expect(ref).toMatch(/^#\//)
      const target = ref
        .slice(2)
        .split('/')
        .reduce<any>((node, part) => node?.[part], doc)
      expect(target, ref).toBeDefined()
    }
  })

  it('every documented operation is served (none answers 404 route_not_found)', async () => {
    const samples: Record<string, string> = {
      accountId: 'acc-doc',
      keyId: 'acc-doc.0123456789abcdef0123',
      withdrawalId: 'wd-doc',
      shard: '0',
    }
    for (const [template, ops] of Object.entries<Record<string, Operation>>(doc.paths)) {
      const path = template.replace(/\{(\w+)\}/g, (_, name: string) => samples[name] ?? 'x')
      for (const method of Object.keys(ops)) {
        const reply = await api.plain(method.toUpperCase(), path)
        expect(reply.body?.error?.code, `${method} ${template}`).not.toBe('route_not_found')
        expect(reply.status, `${method} ${template}`).not.toBe(500)
      }
    }
  })
})

describe('reads say what they reflect', () => {
  it('the account, ledger and withdrawal reads carry node, shard digest and time', async () => {
    const key = await api.fundedAccount('reflect-1', '10')
    const written = await api.signed(key, 'POST', '/v1/withdrawals', {
      withdrawalId: 'wd-reflect',
      asset: 'USD',
      amount: '1',
    })
    expect(written.status).toBe(201)
    for (const path of ['/v1/account', '/v1/ledger', '/v1/withdrawals/wd-reflect']) {
      const before = Date.now()
      const reply = await api.signed(key, 'GET', path)
      expect(reply.status, path).toBe(200)
      expectReflects(reply.body.reflects, { from: before })
      expect(accountShardOf(reply.body.reflects)).toEqual(accountShardOf(written.body.reflects))
    }
  })
})
