// Hostile HTTP requests for every route of a node's OpenAPI document, generated with fast-check,
// and the property every one of them must keep: a client's mistake gets a 4xx with the one error
// envelope (never a 5xx), a rejected request changes no document of the node (state vector and
// content digests, log sequence, pending structs, damage) nor any mark, and the node keeps
// serving. Shared by the in-suite test (test/api/fuzz.test.ts, inside workerd) and the long run
// (`npm run fuzz`, scripts/fuzz/run.ts, against a node process): fetch and WebCrypto only.
//
// A case is one operation of the document (plus the two undocumented routes a client can reach:
// the OpenAPI document itself and the mesh sync endpoint) and one defect: broken admin or signature
// auth (missing, bad, replayed or skewed), the wrong scope, the wrong content type, malformed or
// non-object JSON, wrong types, missing and unknown fields, huge and deeply nested bodies, invalid
// UTF-8, UTF-16, path traversal, bad and unknown query parameters, the wrong method, and the ids
// of another account. Most defects must be rejected (`mustReject`); a few only draw arbitrary
// values (any field, any path segment), which may be valid: those may succeed, but still never
// answer a 5xx, and when they are rejected they too must change nothing.

import fc from 'fast-check'
import { signingPayload } from '../../src/api/signing'
import { bodyBytesMax, keyRateMax } from '../../src/constants'
import { hmacHex } from '../../src/hmac'
import type { ApiClient, ApiKey, Reply } from './api-client'

// --- the operations of the OpenAPI document -----------------------------------------------------

export type JsonSchema = {
  type?: string | string[]
  properties?: Record<string, JsonSchema>
  required?: string[]
  enum?: unknown[]
  pattern?: string
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  minItems?: number
  maxItems?: number
  items?: JsonSchema
  additionalProperties?: boolean
  $ref?: string
}

export type Param = {
  name: string
  in: 'path' | 'query' | 'header'
  required: boolean
  schema: JsonSchema
}

export type Operation = {
  /** `POST /v1/orders`: how cases, counts and failures name the operation. */
  id: string
  method: string
  template: string
  auth: 'public' | 'admin' | 'signed' | 'mesh'
  params: Param[]
  body: JsonSchema | undefined
  /** The route takes raw bytes (`application/octet-stream`, a snapshot), not JSON. */
  binaryBody: boolean
  /** False for the routes a client can reach that the document does not describe. */
  documented: boolean
}

const httpMethods = ['get', 'post', 'put', 'patch', 'delete']

/** Every operation of the document, and the undocumented routes a client can reach. */
export function operationsOf(doc: any): Operation[] {
  const resolve = (schema: JsonSchema | undefined): JsonSchema | undefined => {
    if (schema?.$ref === undefined) return schema
    return schema.$ref
      .slice(2)
      .split('/')
      .reduce<any>((node, part) => node?.[part], doc)
  }
  const operations: Operation[] = []
  for (const [template, item] of Object.entries<Record<string, any>>(doc.paths ?? {})) {
    for (const [method, op] of Object.entries<any>(item)) {
      if (!httpMethods.includes(method)) continue
      const security: Record<string, unknown>[] = op.security ?? []
      const schemes = security.flatMap((s) => Object.keys(s))
      const auth = schemes.includes('adminToken')
        ? 'admin'
        : schemes.includes('signature')
          ? 'signed'
          : 'public'
      const params: Param[] = (op.parameters ?? []).map((p: any) => ({
        name: p.name,
        in: p.in,
        // A path parameter is required whatever the document says (a path has no empty segment).
        required: p.in === 'path' || p.required === true,
        schema: resolve(p.schema) ?? {},
      }))
      const body = resolve(op.requestBody?.content?.['application/json']?.schema)
      operations.push({
        id: `${method.toUpperCase()} ${template}`,
        method: method.toUpperCase(),
        template,
        auth,
        params,
        body,
        binaryBody: op.requestBody?.content?.['application/octet-stream'] !== undefined,
        documented: true,
      })
    }
  }
  operations.push(
    {
      id: 'GET /v1/openapi.json',
      method: 'GET',
      template: '/v1/openapi.json',
      auth: 'public',
      params: [],
      body: undefined,
      binaryBody: false,
      documented: false,
    },
    {
      id: 'GET /v1/mesh/sync/{kind}/{name}',
      method: 'GET',
      template: '/v1/mesh/sync/{kind}/{name}',
      auth: 'mesh',
      params: [
        { name: 'kind', in: 'path', required: true, schema: { type: 'string' } },
        { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
        { name: 'token', in: 'query', required: false, schema: { type: 'string' } },
      ],
      body: undefined,
      binaryBody: false,
      documented: false,
    },
  )
  return operations
}

// --- the world the cases run in -----------------------------------------------------------------

/** An account of the world with everything a case may point at. */
export type Party = {
  accountId: string
  /** read, trade, withdraw */
  key: ApiKey
  /** read only */
  readKey: ApiKey
  withdrawalId: string
  openOrder: { orderId: string; clientOrderId: string }
  filledOrder: { orderId: string; clientOrderId: string }
  ledgerCursor: string
  fillsCursor: string
}

export type World = {
  tag: string
  nodeId: string
  /** The account whose keys sign the cases. */
  own: Party
  /** Another account: its ids must never be reachable with `own`'s keys. */
  other: Party
  /** A key of `own` that was revoked. */
  revokedKey: ApiKey
  /** Instruments matched on this node, with the mark the world set. */
  marks: Record<string, string>
  /** Every listed instrument, including ones matched elsewhere. */
  symbols: string[]
  operations: Operation[]
  /** The operator's token, for the admin routes' cases. */
  adminToken: string
}

export type WorldOptions = { tag: string; adminToken: string }

const expectStatus = (what: string, reply: Reply, status: number) => {
  if (reply.status !== status) {
    throw new Error(
      `${what}: expected ${status}, got ${reply.status} ${JSON.stringify(reply.body)}`,
    )
  }
  return reply.body
}

/** Mark prices the world trades around (instruments of the test and default catalogs). */
const markPrices: Record<string, string> = {
  'BTC-PERP': '60000',
  'ETH-PERP': '3000',
  'SOL-PERP': '150',
}

/**
 * Creates the world: two funded accounts (`own`, `other`) with full and read-only keys, one
 * withdrawal each, positions from trades with each other, one resting order each, page cursors
 * of their ledgers and fills, and a revoked key of `own`.
 */
export async function prepareWorld(
  client: ApiClient,
  { tag, adminToken }: WorldOptions,
): Promise<World> {
  const health = expectStatus('health', await client.plain('GET', '/health'), 200)
  const nodeId: string = health.node
  const doc = expectStatus('openapi', await client.plain('GET', '/v1/openapi.json'), 200)
  const listed = expectStatus('instruments', await client.plain('GET', '/v1/instruments'), 200)
  const specs: { symbol: string; homeNode: string }[] = listed.instruments
  const home = specs.filter((s) => s.homeNode === nodeId && markPrices[s.symbol] !== undefined)
  if (!home.some((s) => s.symbol === 'BTC-PERP')) {
    throw new Error(`the fuzz world trades BTC-PERP, which node ${nodeId} does not match`)
  }
  const marks: Record<string, string> = {}
  for (const { symbol } of home) marks[symbol] = markPrices[symbol]!
  await setMarks(client, marks)

  const party = async (name: string): Promise<Party> => {
    const accountId = `${tag}-${name}`
    // The cases are signed with this key hundreds a second: they are judged by their answers,
    // not held to a client's rate (test/api/rate-limit.test.ts judges that).
    const key = await client.fundedAccount(accountId, '1000000', undefined, {
      perSecond: keyRateMax,
      burst: keyRateMax,
    })
    const readKey = expectStatus(
      'read key',
      await client.admin('POST', `/v1/admin/accounts/${accountId}/keys`, { scopes: ['read'] }),
      201,
    )
    const withdrawalId = `${tag}-${name}-wd`
    expectStatus(
      'withdrawal',
      await client.signed(key, 'POST', '/v1/withdrawals', {
        withdrawalId,
        asset: 'USD',
        amount: '1.5',
      }),
      201,
    )
    return {
      accountId,
      key,
      readKey: { keyId: readKey.keyId, secret: readKey.secret },
      withdrawalId,
      openOrder: { orderId: '', clientOrderId: '' },
      filledOrder: { orderId: '', clientOrderId: '' },
      ledgerCursor: '',
      fillsCursor: '',
    }
  }
  const own = await party('own')
  const other = await party('other')

  const order = async (who: Party, clientOrderId: string, body: Record<string, unknown>) => {
    const placed = expectStatus(
      `order ${clientOrderId}`,
      await client.signed(who.key, 'POST', '/v1/orders', { clientOrderId, ...body }),
      201,
    )
    return { orderId: placed.orderId as string, clientOrderId, status: placed.status as string }
  }
  // Two fills on BTC-PERP (and one on every other home instrument): own long, other short.
  for (const [symbol, price] of Object.entries(marks)) {
    const size = symbol === 'BTC-PERP' ? '0.01' : '1'
    for (const round of symbol === 'BTC-PERP' ? [1, 2] : [1]) {
      const maker = await order(other, `${tag}-m-${symbol}-${round}`, {
        instrument: symbol,
        side: 'sell',
        type: 'limit',
        price,
        size,
      })
      const taker = await order(own, `${tag}-t-${symbol}-${round}`, {
        instrument: symbol,
        side: 'buy',
        type: 'limit',
        price,
        size,
        timeInForce: 'IOC',
      })
      if (taker.status !== 'filled')
        throw new Error(`the world's trade did not fill: ${taker.status}`)
      if (symbol === 'BTC-PERP' && round === 1) {
        own.filledOrder = taker
        other.filledOrder = maker
      }
    }
  }
  // One resting order each, well inside the band and away from the other's.
  for (const [who, price] of [
    [own, '55000'],
    [other, '56000'],
  ] as const) {
    const rest = await order(who, `${tag}-rest-${who === own ? 'own' : 'other'}`, {
      instrument: 'BTC-PERP',
      side: 'buy',
      type: 'limit',
      price,
      size: '0.001',
    })
    if (rest.status !== 'open') throw new Error(`the world's resting order is ${rest.status}`)
    who.openOrder = rest
  }
  for (const who of [own, other]) {
    const ledger = expectStatus(
      'ledger page',
      await client.signed(who.key, 'GET', '/v1/ledger?limit=1'),
      200,
    )
    const fills = expectStatus(
      'fills page',
      await client.signed(who.key, 'GET', '/v1/fills?limit=1'),
      200,
    )
    if (typeof ledger.nextCursor !== 'string' || typeof fills.nextCursor !== 'string') {
      throw new Error('the world needs a second ledger entry and a second fill per account')
    }
    who.ledgerCursor = ledger.nextCursor
    who.fillsCursor = fills.nextCursor
  }

  const revoked = expectStatus(
    'revocable key',
    await client.admin('POST', `/v1/admin/accounts/${own.accountId}/keys`, {
      scopes: ['read', 'trade', 'withdraw'],
    }),
    201,
  )
  expectStatus('revocation', await client.admin('DELETE', `/v1/admin/keys/${revoked.keyId}`), 200)
  return {
    tag,
    nodeId,
    own,
    other,
    revokedKey: { keyId: revoked.keyId, secret: revoked.secret },
    marks,
    symbols: specs.map((s) => s.symbol),
    operations: operationsOf(doc),
    adminToken,
  }
}

/** Sets every mark of the world to its price, stamped now. */
export async function setMarks(client: ApiClient, marks: Record<string, string>): Promise<void> {
  for (const [instrument, price] of Object.entries(marks)) {
    expectStatus(
      `mark ${instrument}`,
      await client.admin('POST', '/v1/admin/marks', { instrument, price, ts: Date.now() }),
      200,
    )
  }
}

/**
 * Every document of a node, cheap to compare: state vector and content digests, log sequence,
 * pending structs and damage (GET /v1/mesh/status).
 */
export async function documentsFingerprint(client: ApiClient): Promise<unknown> {
  const status = await client.admin('GET', '/v1/mesh/status')
  if (status.status !== 200) {
    throw new Error(`mesh status: ${status.status} ${JSON.stringify(status.body)}`)
  }
  return (status.body.documents as any[]).map((d) => ({
    doc: d.shard,
    stateVectorDigest: d.stateVectorDigest,
    contentDigest: d.contentDigest,
    lastSeq: d.storage?.lastSeq,
    pending: d.pending,
    damage: d.damage,
  }))
}

/**
 * What a node holds: its documents, and the mark of every instrument the world trades (seen
 * through `own`'s positions, which hold one of each; marks are kept outside the documents).
 */
export async function nodeFingerprint(client: ApiClient, world: World): Promise<unknown> {
  const documents = await documentsFingerprint(client)
  const positions = await client.signed(world.own.key, 'GET', '/v1/positions')
  if (positions.status !== 200) {
    throw new Error(`positions: ${positions.status} ${JSON.stringify(positions.body)}`)
  }
  const marks = (positions.body.positions as any[])
    .map((p) => [p.instrument, p.markPrice])
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
  return { documents, marks }
}

// --- defects ------------------------------------------------------------------------------------

/** JSON body fields as a list, so that keys such as `__proto__` and duplicates survive encoding. */
type Entries = [string, unknown][]

export type Defect =
  | { kind: 'admin_auth'; header: string | null }
  | {
      kind: 'missing_signature_header'
      header: 'X-API-Key' | 'X-API-Timestamp' | 'X-API-Signature'
    }
  | { kind: 'bad_signature'; signature: string }
  | {
      kind: 'signed_other'
      what: 'method' | 'path' | 'query' | 'body' | 'idempotency_key' | 'timestamp'
    }
  | { kind: 'replayed_signature'; from: 'another_route' | 'after_window'; ageMs: number }
  | { kind: 'skewed_timestamp'; skewMs: number }
  | { kind: 'bad_timestamp'; text: string }
  | {
      kind: 'wrong_key'
      variant:
        | 'other_accounts_key'
        | 'other_accounts_secret'
        | 'forged_account_prefix'
        | 'unknown_key'
        | 'malformed_key'
        | 'revoked_key'
        | 'no_such_account'
      text: string
    }
  | { kind: 'wrong_scope' }
  | { kind: 'content_type'; contentType: string | null }
  | { kind: 'malformed_json'; how: 'truncate' | 'append' | 'replace'; at: number; text: string }
  | { kind: 'not_an_object'; json: string }
  | { kind: 'wrong_type'; field: string; value: unknown }
  | { kind: 'missing_field'; field: string }
  | { kind: 'extra_field'; field: string; value: unknown }
  | { kind: 'huge_body'; bytes: number; filler: 'field' | 'whitespace' | 'array' }
  | { kind: 'deep_nesting'; depth: number; shape: 'array' | 'object'; where: string }
  | { kind: 'bad_utf8'; field: string; bytes: number[] }
  | { kind: 'utf16_body'; bom: boolean }
  | { kind: 'path_param'; param: string; segment: string; mustReject: boolean }
  | { kind: 'query_param'; param: string; value: string; mustReject: boolean }
  | { kind: 'unknown_query'; name: string; value: string }
  | { kind: 'header_param'; header: string; value: string }
  | { kind: 'wrong_method'; method: string }
  | { kind: 'other_account_id'; param: string; value: string }
  | { kind: 'no_upgrade'; token: string }
  | { kind: 'arbitrary_field'; field: string; value: unknown }
  | { kind: 'arbitrary_body_text'; text: string }

export type FuzzCase = { op: string; defect: Defect }

/** The window signed requests are checked against; skews are drawn well outside it. */
export type GenerateOptions = { windowMs: number; maxBodyBytes: number }

const signatureHeaderNames = ['X-API-Key', 'X-API-Timestamp', 'X-API-Signature'] as const

/** Printable ASCII without leading or trailing blanks: what fetch lets a header carry. */
const headerText = (maxLength: number) =>
  fc
    .string({
      unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
      maxLength,
    })
    .filter((s) => s.length > 0)

const hexText = (length: number) =>
  fc
    .array(fc.integer({ min: 0, max: 15 }), { minLength: length, maxLength: length })
    .map((digits) => digits.map((d) => d.toString(16)).join(''))

/** Values of every JSON type but `type`. */
function wrongTypeValues(schema: JsonSchema): unknown[] {
  const types = [schema.type ?? 'string'].flat()
  const all: [string, unknown[]][] = [
    ['string', ['1', 'true', '', 'null']],
    ['number', [1, -1, 0.5, 1e21, -0]],
    ['integer', [1, -1, 0, 9007199254740993]],
    ['boolean', [true, false]],
    ['null', [null]],
    ['array', [[], ['x'], [1, 2], [null]]],
    ['object', [{}, { $gt: '' }, { value: '1' }]],
  ]
  const values = all
    .filter(([type]) => !types.includes(type) && !(type === 'integer' && types.includes('number')))
    .filter(([type]) => !(type === 'number' && types.includes('integer')))
    .flatMap(([, v]) => v)
  if (schema.enum !== undefined) {
    const texts = schema.enum.map(String)
    values.push(
      ...texts.flatMap((t) => [t.toLowerCase(), t.toUpperCase(), ` ${t}`, `${t} `, `${t}\u0000`]),
      'unknown',
    )
    return values.filter((v) => !schema.enum!.includes(v))
  }
  return values
}

/** Fields whose values are any text up to a length (a key's label, a breaker's reason). */
const freeTextFields = ['label', 'reason']

/** Whether any value that JSON-decodes to a string of this field could be valid. */
const restrictedString = (schema: JsonSchema): boolean =>
  schema.pattern !== undefined || schema.enum !== undefined

const traversalSegments: { segment: string; mustReject: boolean }[] = [
  // Single segments that reach the router as one segment: never a valid id.
  ...[
    '..%2F..%2Fadmin%2Fshards',
    '..%2f..%2f..%2fhealth',
    '%2e%2e%2f%2e%2e%2fv1%2faccount',
    '..%5C..%5Cadmin',
    '%252e%252e%252f',
    '..%00',
    '%00',
    'x%00y',
    '..%3B',
    '%2F',
    '%5C',
    '%C0%AE%C0%AE%2F',
    '%E2%80%A5',
    '%EF%BC%8F..%EF%BC%8F',
    '%FF',
    '%',
    '%%32%65',
    'a'.repeat(200),
    '%7B%22%24gt%22%3A%22%22%7D',
    '*',
    '%2A',
    "'%20OR%201%3D1--",
    '%0D%0AX-Injected%3A%201',
    '${7*7}',
    '%24%7B7*7%7D',
  ].map((segment) => ({ segment, mustReject: true })),
  // Segments the URL parser folds away (dot segments): whatever they resolve to may be valid.
  ...['.', '..', '%2e', '%2E%2E', '.%2e', '../..', '..%2F', './.'].map((segment) => ({
    segment,
    mustReject: false,
  })),
]

const contentTypes: (string | null)[] = [
  null,
  'text/plain',
  'text/plain;charset=UTF-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=fuzz',
  'application/xml',
  'text/json',
  'application/jsonx',
  'application/json-patch+json',
  'application/problem+json',
  'application/octet-stream',
  '*/*',
  'application',
  'json',
  'application/ json',
  'application/vnd.api+json',
]

/** Every defect that applies to `op` in `world`, each as an arbitrary. */
export function defectsFor(
  op: Operation,
  world: World,
  options: GenerateOptions,
): fc.Arbitrary<Defect>[] {
  const defects: fc.Arbitrary<Defect>[] = []
  const hasBody = op.body !== undefined
  const canCarryBody = op.method !== 'GET'
  const pathParams = op.params.filter((p) => p.in === 'path')
  const queryParams = op.params.filter((p) => p.in === 'query')
  const headerParams = op.params.filter((p) => p.in === 'header')
  const bodyFields = Object.keys(op.body?.properties ?? {})
  const requiredFields = op.body?.required ?? []

  // Authentication.
  if (op.auth === 'admin') {
    defects.push(
      fc
        .constantFrom(
          null,
          '',
          'Bearer',
          'Bearer ',
          'Basic dGVzdDp0ZXN0',
          'Token whatever',
          'Bearer null',
          'Bearer undefined',
          'BearerX',
        )
        .map((header) => ({ kind: 'admin_auth' as const, header })),
      fc
        .oneof(headerText(80), hexText(32))
        .map((token) => ({ kind: 'admin_auth' as const, header: `Bearer ${token}` })),
    )
  }
  if (op.auth === 'signed') {
    defects.push(
      fc
        .constantFrom(...signatureHeaderNames)
        .map((header) => ({ kind: 'missing_signature_header' as const, header })),
      fc
        .oneof(
          hexText(64),
          hexText(63),
          hexText(65),
          headerText(200),
          fc.constant('0'.repeat(64)),
          fc.constant('g'.repeat(64)),
        )
        .map((signature) => ({ kind: 'bad_signature' as const, signature })),
      fc
        .constantFrom(
          'method' as const,
          'path' as const,
          'query' as const,
          'timestamp' as const,
          ...(canCarryBody ? (['body'] as const) : []),
          ...(op.id === 'POST /v1/withdrawals' ? (['idempotency_key'] as const) : []),
        )
        .map((what) => ({ kind: 'signed_other' as const, what })),
      fc.record({
        kind: fc.constant('replayed_signature' as const),
        from: fc.constantFrom('another_route' as const, 'after_window' as const),
        ageMs: fc.integer({ min: options.windowMs + 2_000, max: 7 * 24 * 3_600_000 }),
      }),
      fc
        .oneof(
          fc.integer({ min: options.windowMs + 2_000, max: 10 ** 12 }),
          fc.integer({ min: -(10 ** 12), max: -(options.windowMs + 2_000) }),
        )
        .map((skewMs) => ({ kind: 'skewed_timestamp' as const, skewMs })),
      fc
        .oneof(
          fc.constantFrom(
            '0',
            '-1',
            '1e12',
            '0x18e8f0c0000',
            '9'.repeat(16),
            '1'.repeat(300),
            'NaN',
            'Infinity',
            '-0',
            '+1',
            '1.5',
            'now',
            '00000000000000000000001',
          ),
          headerText(20).filter((t) => !/^[0-9]{1,15}$/.test(t)),
        )
        .map((text) => ({ kind: 'bad_timestamp' as const, text })),
      fc
        .oneof(
          fc.constantFrom(
            ['other_accounts_key', world.other.key.keyId] as const,
            ['other_accounts_secret', world.own.key.keyId] as const,
            [
              'forged_account_prefix',
              `${world.other.accountId}${world.own.key.keyId.slice(world.own.key.keyId.lastIndexOf('.'))}`,
            ] as const,
            ['revoked_key', world.revokedKey.keyId] as const,
            ['no_such_account', `nobody-${world.tag}.0123456789abcdef0123`] as const,
          ),
          hexText(20).map((hex) => ['unknown_key', `${world.own.accountId}.${hex}`] as const),
          fc
            .oneof(
              headerText(100),
              fc.constantFrom(
                '.',
                '..',
                `${world.own.accountId}.`,
                `.${'a'.repeat(20)}`,
                'a'.repeat(300),
              ),
            )
            .map((text) => ['malformed_key', text] as const),
        )
        .map(([variant, text]) => ({ kind: 'wrong_key' as const, variant, text })),
    )
    if (op.method !== 'GET') defects.push(fc.constant({ kind: 'wrong_scope' as const }))
  }

  // The body and how it is encoded.
  if (canCarryBody) {
    defects.push(
      fc
        .constantFrom(...contentTypes)
        // Raw bytes are what a binary route takes: not a wrong type there.
        .filter((type) => !(op.binaryBody && type === 'application/octet-stream'))
        .map((contentType) => ({ kind: 'content_type' as const, contentType })),
    )
    // A binary route (a snapshot) bounds its own bytes far above what the fuzz sends.
    if (!op.binaryBody) {
      defects.push(
        fc.record({
          kind: fc.constant('huge_body' as const),
          bytes: fc.integer({ min: bodyBytesMax + 1, max: options.maxBodyBytes }),
          filler: fc.constantFrom('field' as const, 'whitespace' as const, 'array' as const),
        }),
      )
    }
  }
  if (hasBody) {
    defects.push(
      fc.record({
        kind: fc.constant('malformed_json' as const),
        how: fc.constantFrom('truncate' as const, 'append' as const, 'replace' as const),
        at: fc.nat(),
        text: fc.constantFrom(
          'x',
          '}',
          ',',
          '{}',
          '"',
          "'",
          '/* */',
          ']',
          'NaN',
          '\u0000',
          ':',
          ',}',
          'undefined',
        ),
      }),
      fc
        .constantFrom('null', '[]', '"text"', '1', 'true', '[{}]', '0', '""', '[null]', '-1e999')
        .map((json) => ({ kind: 'not_an_object' as const, json })),
      fc
        .record({
          kind: fc.constant('extra_field' as const),
          field: fc.oneof(
            fc.constantFrom(
              '__proto__',
              'constructor',
              'prototype',
              'accountId',
              'keyId',
              'node',
              'createdAt',
              'status',
              '',
              ' ',
              '$where',
              'AMOUNT',
              'amount ',
            ),
            fc.string({ minLength: 1, maxLength: 20 }),
          ),
          value: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant({ isAdmin: true })),
        })
        .filter((d) => !bodyFields.includes(d.field)),
      fc.record({
        kind: fc.constant('deep_nesting' as const),
        depth: fc.integer({ min: 64, max: 7_000 }),
        shape: fc.constantFrom('array' as const, 'object' as const),
        where: fc.constantFrom('extra', ...bodyFields),
      }),
      fc.record({
        kind: fc.constant('utf16_body' as const),
        bom: fc.boolean(),
      }),
    )
    if (requiredFields.length > 0) {
      defects.push(
        fc.constantFrom(...requiredFields).map((field) => ({
          kind: 'missing_field' as const,
          field,
        })),
      )
    }
    const typed = bodyFields.flatMap((field) => {
      const values = wrongTypeValues(op.body!.properties![field]!)
      return values.length === 0 ? [] : [{ field, values }]
    })
    if (typed.length > 0) {
      defects.push(
        fc
          .constantFrom(...typed)
          .chain(({ field, values }) =>
            fc
              .constantFrom(...values)
              .map((value) => ({ kind: 'wrong_type' as const, field, value })),
          ),
      )
    }
    const strings = bodyFields.filter((f) =>
      [op.body!.properties![f]!.type ?? 'string'].flat().includes('string'),
    )
    if (strings.length > 0) {
      defects.push(
        fc.record({
          kind: fc.constant('bad_utf8' as const),
          field: fc.constantFrom(...strings),
          bytes: fc.constantFrom<number[]>(
            [0xff],
            [0xfe, 0xff],
            [0xc3, 0x28],
            [0xa0, 0xa1],
            [0xe2, 0x28, 0xa1],
            [0xf0, 0x28, 0x8c, 0x28],
            [0xc0, 0xaf],
            [0xed, 0xa0, 0x80],
            [0xf4, 0x90, 0x80, 0x80],
            [0xe2, 0x82],
          ),
        }),
      )
    }
    defects.push(
      fc.record({
        kind: fc.constant('arbitrary_field' as const),
        field: fc.constantFrom(...bodyFields),
        value: fc.oneof(
          fc.string({ unit: 'grapheme', maxLength: 80 }),
          fc.string({ unit: 'binary', maxLength: 40 }),
          fc.jsonValue({ maxDepth: 2 }),
          fc.constantFrom('0', '-1', '1e3', '0.0000001', '1'.repeat(41), ' 1', '01', '.5', '1.'),
        ),
      }),
      fc
        .oneof(
          fc.json({ maxDepth: 3 }),
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.constant('\uFEFF{}'),
        )
        .map((text) => ({ kind: 'arbitrary_body_text' as const, text })),
    )
  }

  // The path, the query and the headers.
  for (const param of pathParams) {
    defects.push(
      fc.constantFrom(...traversalSegments).map(({ segment, mustReject }) => ({
        kind: 'path_param' as const,
        param: param.name,
        segment,
        mustReject,
      })),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 100 }).map((text) => ({
        kind: 'path_param' as const,
        param: param.name,
        segment: encodeURIComponent(text),
        mustReject: false,
      })),
    )
  }
  for (const param of queryParams) {
    const schema = param.schema
    const bad: string[] =
      schema.type === 'integer' || [schema.type].flat().includes('integer')
        ? [
            '0',
            '-1',
            '1e2',
            '0x10',
            '',
            'abc',
            '1.5',
            ' 1',
            '+1',
            String((schema.maximum ?? 100) + 1),
            '9'.repeat(20),
            '\u0661',
            'NaN',
            'null',
            '[]',
          ]
        : schema.enum !== undefined
          ? ['', 'OPEN', 'closed', 'all', '*', 'open ', 'null']
          : param.name === 'cursor'
            ? [
                '',
                '!!!',
                'e30',
                'bnVsbA',
                'W10',
                '%',
                'a'.repeat(513),
                btoa('{"a":1}'),
                btoa('{"ts":1,"id":"x"}'),
              ]
            : ['', ' ', 'a'.repeat(65), '../x', '%00', '$gt', 'x;y']
    defects.push(
      fc.constantFrom(...bad).map((value) => ({
        kind: 'query_param' as const,
        param: param.name,
        value,
        mustReject: true,
      })),
      fc.string({ unit: 'grapheme', maxLength: 60 }).map((value) => ({
        kind: 'query_param' as const,
        param: param.name,
        value,
        mustReject: false,
      })),
    )
  }
  if (queryParams.length > 0 && op.auth !== 'mesh') {
    defects.push(
      fc
        .record({
          kind: fc.constant('unknown_query' as const),
          name: fc.oneof(
            fc.constantFrom('accountId', 'account', 'keyId', '__proto__', 'constructor', 'LIMIT'),
            fc.string({ minLength: 1, maxLength: 12 }),
          ),
          value: fc.string({ maxLength: 12 }),
        })
        .filter((d) => !queryParams.some((p) => p.name === d.name)),
    )
  }
  for (const param of headerParams) {
    defects.push(
      fc
        .oneof(
          headerText(100).filter((t) => !/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(t)),
          fc.constant('a'.repeat(65)),
          fc.constant('-leading-dash'),
        )
        .map((value) => ({ kind: 'header_param' as const, header: param.name, value })),
    )
  }
  defects.push(
    fc
      .constantFrom('PUT', 'PATCH', 'OPTIONS', 'POST', 'DELETE', 'GET', 'PROPFIND')
      .filter((method) => !methodsOf(world, op.template).includes(method))
      .map((method) => ({ kind: 'wrong_method' as const, method })),
  )

  // The ids of another account.
  if (op.auth === 'signed') {
    const other = world.other
    const ids: Record<string, string[]> = {
      withdrawalId: [other.withdrawalId],
      orderId: [other.openOrder.orderId, other.filledOrder.orderId],
      clientOrderId: [other.openOrder.clientOrderId, other.filledOrder.clientOrderId],
      cursor: [other.ledgerCursor, other.fillsCursor],
    }
    for (const param of op.params) {
      const values = ids[param.name]
      if (values === undefined) continue
      defects.push(
        fc.constantFrom(...values).map((value) => ({
          kind: 'other_account_id' as const,
          param: param.name,
          value,
        })),
      )
    }
  }

  if (op.auth === 'mesh') {
    defects.push(
      fc
        .oneof(headerText(80), fc.constant(''), fc.constant('node.a.1.00'))
        .map((token) => ({ kind: 'no_upgrade' as const, token })),
    )
  }
  return defects
}

function methodsOf(world: World, template: string): string[] {
  return world.operations.filter((o) => o.template === template).map((o) => o.method)
}

/** One case: an operation of the world and one of its defects. */
export function fuzzCase(world: World, options: GenerateOptions): fc.Arbitrary<FuzzCase> {
  const byOperation = world.operations.map((op) => {
    const defects = defectsFor(op, world, options)
    return fc.oneof(...defects).map((defect) => ({ op: op.id, defect }))
  })
  return fc.oneof(...byOperation)
}

/**
 * One case of every defect of every operation, drawn from `seed`: a sweep that covers the whole
 * matrix whatever the random runs pick.
 */
export function everyDefect(world: World, options: GenerateOptions, seed: number): FuzzCase[] {
  return world.operations.flatMap((op) =>
    defectsFor(op, world, options).map((defects, i) => ({
      op: op.id,
      defect: fc.sample(defects, { seed: seed + i, numRuns: 1 })[0]!,
    })),
  )
}

// --- turning a case into a request --------------------------------------------------------------

export type BuiltRequest = {
  method: string
  path: string
  headers: Record<string, string>
  body: Uint8Array | undefined
  /** Only a 4xx is right (only 503 not_executed may also come back when false). */
  mustReject: boolean
  /** The statuses that are right, when the defect decides it. */
  statuses: number[] | undefined
}

const utf8 = new TextEncoder()
const fromUtf8 = (bytes: Uint8Array) => new TextDecoder().decode(bytes)

const encodeEntries = (entries: Entries): string =>
  `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`

let serial = 0
/** An id no other case uses (so a case that is accepted never replays another). */
const freshId = (world: World, what: string) =>
  `${world.tag}-${what}-${(++serial).toString(36)}-${Math.floor(Math.random() * 1e9).toString(36)}`

/** A valid value for each parameter and field name the document uses. */
function goodValue(world: World, op: Operation, name: string, schema: JsonSchema): unknown {
  switch (name) {
    case 'accountId':
      return world.own.accountId
    case 'keyId':
      // Revoking a key again replays: an accepted case never revokes the key the cases sign with.
      return world.revokedKey.keyId
    case 'withdrawalId':
      return op.method === 'GET' ? world.own.withdrawalId : freshId(world, 'wd')
    case 'orderId':
      return world.own.filledOrder.orderId
    case 'clientOrderId':
      return op.method === 'GET' ? world.own.filledOrder.clientOrderId : freshId(world, 'co')
    case 'depositId':
      return freshId(world, 'dep')
    case 'instrument':
      return 'BTC-PERP'
    case 'asset':
      return 'USD'
    case 'amount':
      return '1'
    case 'price':
      return world.marks['BTC-PERP'] ?? '60000'
    case 'size':
      return '0.001'
    case 'side':
      return 'buy'
    case 'type':
      return 'limit'
    case 'timeInForce':
      return 'IOC'
    case 'reduceOnly':
      return false
    case 'scopes':
      return ['read']
    case 'label':
      return 'fuzz'
    case 'ts':
      return Date.now()
    case 'shard':
      return '0'
    case 'status':
      return 'open'
    case 'kind':
      return 'shard'
    case 'name':
      return '0'
    case 'limit':
      return '1'
    case 'node':
      // The one node of the runtime tests: a failback to it has nothing to hand over.
      return 'a'
  }
  if (schema.enum !== undefined) return schema.enum[0]
  const type = [schema.type ?? 'string'].flat()[0]
  return type === 'integer' || type === 'number'
    ? 1
    : type === 'boolean'
      ? false
      : type === 'array'
        ? []
        : type === 'object'
          ? {}
          : 'x'
}

/** Query parameters a valid request of `op` sends (required ones, and one mode of GET /v1/orders). */
function baseQuery(op: Operation, world: World): [string, string][] {
  if (op.id === 'GET /v1/orders') return [['status', 'open']]
  return op.params
    .filter((p) => p.in === 'query' && p.required)
    .map((p) => [p.name, String(goodValue(world, op, p.name, p.schema))])
}

/** A valid body of `op`: every field but a few optional ones (an accepted order is an IOC). */
function baseEntries(op: Operation, world: World): Entries {
  const properties = op.body?.properties ?? {}
  return Object.keys(properties)
    .filter((f) => (op.body?.required ?? []).includes(f) || !['reduceOnly', 'label'].includes(f))
    .map((f) => [f, goodValue(world, op, f, properties[f]!)])
}

const nested = (depth: number, shape: 'array' | 'object') =>
  shape === 'array'
    ? '['.repeat(depth) + ']'.repeat(depth)
    : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)

/** Builds the request a case sends (signatures are added at send time, see `sendCase`). */
export function buildRequest(world: World, fuzz: FuzzCase): BuiltRequest & { signing: Signing } {
  const op = world.operations.find((o) => o.id === fuzz.op)
  if (op === undefined) throw new Error(`no operation ${fuzz.op}`)
  const d = fuzz.defect
  let method = op.method
  const pathValues = new Map<string, string>(
    op.params
      .filter((p) => p.in === 'path')
      .map((p) => [p.name, encodeURIComponent(String(goodValue(world, op, p.name, p.schema)))]),
  )
  let query: [string, string][] = baseQuery(op, world)
  let rawQuerySuffix = ''
  const headers: Record<string, string> = {}
  let entries = baseEntries(op, world)
  let bodyText: string | undefined
  let bodyBytes: Uint8Array | undefined
  const mediaType = op.binaryBody ? 'application/octet-stream' : 'application/json'
  let contentType: string | null = mediaType
  let mustReject = true
  let statuses: number[] | undefined
  const signing: Signing = { mode: op.auth === 'signed' ? 'valid' : 'none' }

  switch (d.kind) {
    case 'admin_auth':
      statuses = [401]
      break
    case 'missing_signature_header':
    case 'bad_signature':
    case 'signed_other':
    case 'replayed_signature':
    case 'skewed_timestamp':
    case 'bad_timestamp':
    case 'wrong_key':
      signing.mode = 'defect'
      signing.defect = d
      statuses = [401]
      break
    case 'wrong_scope':
      signing.key = world.own.readKey
      statuses = [403]
      break
    case 'content_type':
      contentType = d.contentType
      statuses = [415]
      bodyText = op.body !== undefined ? encodeEntries(entries) : '{}'
      break
    case 'huge_body': {
      const base = op.body !== undefined ? encodeEntries(entries) : '{}'
      const room = Math.max(0, d.bytes - base.length)
      bodyText =
        d.filler === 'whitespace'
          ? base + ' '.repeat(room)
          : d.filler === 'array'
            ? encodeEntries([...entries, ['pad', []]]).replace(
                '[]',
                `[${'0,'.repeat(Math.floor(room / 2))}0]`,
              )
            : encodeEntries([...entries, ['pad', 'x'.repeat(room)]])
      statuses = [413]
      break
    }
    case 'malformed_json': {
      const text = encodeEntries(entries)
      const at = d.at % text.length
      bodyText =
        d.how === 'truncate'
          ? text.slice(0, at)
          : d.how === 'append'
            ? text + d.text
            : text.slice(0, at) + d.text + text.slice(at + 1)
      // A replacement can land on a value and happen to keep the JSON valid (a digit for a digit).
      mustReject = d.how !== 'replace' || !parsesAsObject(bodyText)
      if (mustReject) statuses = [400]
      break
    }
    case 'not_an_object':
      bodyText = d.json
      statuses = [400]
      break
    case 'wrong_type':
      entries = withField(entries, d.field, d.value)
      statuses = [400]
      break
    case 'missing_field':
      entries = entries.filter(([k]) => k !== d.field)
      statuses = [400]
      break
    case 'extra_field':
      entries = [...entries, [d.field, d.value]]
      statuses = [400]
      break
    case 'deep_nesting': {
      const withPlaceholder =
        d.where === 'extra'
          ? [...entries, ['nest', '\u0000nest\u0000'] as [string, unknown]]
          : withField(entries, d.where, '\u0000nest\u0000')
      bodyText = encodeEntries(withPlaceholder).replace(
        JSON.stringify('\u0000nest\u0000'),
        nested(d.depth, d.shape),
      )
      statuses = utf8.encode(bodyText).byteLength > bodyBytesMax ? [413] : [400]
      break
    }
    case 'bad_utf8': {
      const marker = '\u0001bad\u0001'
      const current = entries.find(([k]) => k === d.field)?.[1]
      const text = encodeEntries(
        withField(entries, d.field, `${typeof current === 'string' ? current : 'x'}${marker}`),
      )
      const [before, after] = text.split(JSON.stringify(marker).slice(1, -1))
      bodyBytes = concat(utf8.encode(before!), new Uint8Array(d.bytes), utf8.encode(after!))
      // U+FFFD is a valid character of free text; of an id, an enum or a decimal it is not.
      mustReject =
        restrictedString(op.body!.properties![d.field]!) || !freeTextFields.includes(d.field)
      if (mustReject) statuses = [400]
      break
    }
    case 'utf16_body': {
      const text = encodeEntries(entries)
      const bytes = new Uint8Array((text.length + (d.bom ? 1 : 0)) * 2)
      const all = (d.bom ? '\uFEFF' : '') + text
      for (let i = 0; i < all.length; i++) {
        bytes[i * 2] = all.charCodeAt(i) & 0xff
        bytes[i * 2 + 1] = all.charCodeAt(i) >> 8
      }
      bodyBytes = bytes
      contentType = 'application/json; charset=utf-16'
      statuses = [400]
      break
    }
    case 'path_param':
      pathValues.set(d.param, d.segment)
      mustReject = d.mustReject
      if (mustReject) statuses = [400, 404]
      break
    case 'query_param':
      query = [...query.filter(([k]) => k !== d.param), [d.param, d.value]]
      mustReject = d.mustReject
      if (op.id === 'GET /v1/orders' && d.param === 'clientOrderId') {
        // With status=open as well, the pair is refused whatever the id.
        mustReject = true
      }
      if (mustReject) statuses = op.auth === 'mesh' ? [426] : [400]
      break
    case 'unknown_query':
      rawQuerySuffix = `${encodeURIComponent(d.name)}=${encodeURIComponent(d.value)}`
      statuses = [400]
      break
    case 'header_param':
      headers[d.header] = d.value
      statuses = [400]
      break
    case 'wrong_method':
      method = d.method
      statuses = [404, 405]
      break
    case 'other_account_id':
      if (op.params.find((p) => p.name === d.param)?.in === 'path') {
        pathValues.set(d.param, encodeURIComponent(d.value))
      } else {
        query = [...query.filter(([k]) => k !== d.param && k !== 'status'), [d.param, d.value]]
      }
      statuses = d.param === 'cursor' ? [400] : [404]
      break
    case 'no_upgrade':
      query = [['token', d.token]]
      statuses = [426]
      break
    case 'arbitrary_field':
      entries = withField(entries, d.field, d.value)
      mustReject = false
      break
    case 'arbitrary_body_text':
      bodyText = d.text
      mustReject = false
      break
  }

  let path = op.template.replace(/\{(\w+)\}/g, (_, name: string) => pathValues.get(name) ?? 'x')
  const search = [
    ...query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`),
    ...(rawQuerySuffix === '' ? [] : [rawQuerySuffix]),
  ].join('&')
  if (search !== '') path += `?${search}`

  const sendsBody = method !== 'GET' && method !== 'HEAD'
  if (bodyBytes === undefined && sendsBody) {
    if (bodyText === undefined && op.body !== undefined && method === op.method) {
      bodyText = encodeEntries(entries)
    }
    if (bodyText !== undefined) bodyBytes = utf8.encode(bodyText)
  }
  if (!sendsBody) bodyBytes = undefined
  if (bodyBytes !== undefined && contentType !== null) headers['content-type'] = contentType
  // Over HTTP a bodiless request other than GET and HEAD may still carry `Content-Length: 0`,
  // which the node reads as a body (see the "bodiless POST" test in test/api/fuzz.test.ts).
  if (bodyBytes === undefined && sendsBody) {
    headers['content-type'] = mediaType
  }
  if (op.auth === 'admin' && d.kind !== 'admin_auth') {
    headers.authorization = `Bearer ${world.adminToken}`
  } else if (d.kind === 'admin_auth' && d.header !== null) {
    headers.authorization = d.header
  }
  return { method, path, headers, body: bodyBytes, mustReject, statuses, signing }
}

function parsesAsObject(text: string): boolean {
  try {
    const value = JSON.parse(text)
    return value !== null && typeof value === 'object' && !Array.isArray(value)
  } catch {
    return false
  }
}

const withField = (entries: Entries, field: string, value: unknown): Entries =>
  entries.some(([k]) => k === field)
    ? entries.map(([k, v]) => [k, k === field ? value : v])
    : [...entries, [field, value]]

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}

// --- signing a case -----------------------------------------------------------------------------

type SignatureDefect = Extract<
  Defect,
  {
    kind:
      | 'missing_signature_header'
      | 'bad_signature'
      | 'signed_other'
      | 'replayed_signature'
      | 'skewed_timestamp'
      | 'bad_timestamp'
      | 'wrong_key'
  }
>

type Signing = { mode: 'none' | 'valid' | 'defect'; key?: ApiKey; defect?: SignatureDefect }

/** The path and query as the node sees them (the URL parser folds dot segments). */
const seenPath = (base: string, path: string) => {
  const url = new URL(path, base)
  return url.pathname + url.search
}

async function signatureHeaders(
  world: World,
  base: string,
  request: BuiltRequest & { signing: Signing },
): Promise<Record<string, string>> {
  const { signing } = request
  if (signing.mode === 'none') return {}
  const key = signing.key ?? world.own.key
  const body = request.body === undefined ? '' : fromUtf8(request.body)
  const idempotencyKey = Object.entries(request.headers).find(
    ([name]) => name.toLowerCase() === 'idempotency-key',
  )?.[1]
  const sign = (
    secret: string,
    timestamp: string,
    method: string,
    pathWithQuery: string,
    text: string,
    idem = idempotencyKey ?? '',
  ) => hmacHex(secret, signingPayload(timestamp, method, pathWithQuery, text, idem))
  const path = seenPath(base, request.path)
  const now = String(Date.now())
  const headers = {
    'X-API-Key': key.keyId,
    'X-API-Timestamp': now,
    'X-API-Signature': await sign(key.secret, now, request.method, path, body),
  }
  const d = signing.defect
  if (signing.mode === 'valid' || d === undefined) return headers
  switch (d.kind) {
    case 'missing_signature_header': {
      const { [d.header]: _dropped, ...rest } = headers
      return rest
    }
    case 'bad_signature':
      return { ...headers, 'X-API-Signature': d.signature }
    case 'signed_other': {
      const signed = {
        method: d.what === 'method' ? (request.method === 'GET' ? 'POST' : 'GET') : request.method,
        path:
          d.what === 'path'
            ? path.replace(/^\/v1\//, '/v1/x/')
            : d.what === 'query'
              ? `${path}${path.includes('?') ? '&' : '?'}limit=1`
              : path,
        body: d.what === 'body' ? `${body} ` : body,
        idem: d.what === 'idempotency_key' ? `${idempotencyKey ?? ''}x` : (idempotencyKey ?? ''),
        timestamp: d.what === 'timestamp' ? String(Number(now) - 1) : now,
      }
      return {
        ...headers,
        'X-API-Signature': await sign(
          key.secret,
          signed.timestamp,
          signed.method,
          signed.path,
          signed.body,
          signed.idem,
        ),
      }
    }
    case 'replayed_signature': {
      if (d.from === 'another_route') {
        // A real signature of another request, sent now with this one.
        const another = path === '/v1/account' ? '/v1/positions' : '/v1/account'
        return {
          ...headers,
          'X-API-Signature': await sign(key.secret, now, 'GET', another, ''),
        }
      }
      // This very request, signed long ago (replayed after its window).
      const then = String(Number(now) - d.ageMs)
      return {
        ...headers,
        'X-API-Timestamp': then,
        'X-API-Signature': await sign(key.secret, then, request.method, path, body),
      }
    }
    case 'skewed_timestamp': {
      const at = String(Number(now) + d.skewMs)
      return {
        ...headers,
        'X-API-Timestamp': at,
        'X-API-Signature': await sign(key.secret, at, request.method, path, body),
      }
    }
    case 'bad_timestamp':
      return {
        ...headers,
        'X-API-Timestamp': d.text,
        'X-API-Signature': await sign(key.secret, d.text, request.method, path, body),
      }
    case 'wrong_key': {
      const secret = d.variant === 'other_accounts_secret' ? world.other.key.secret : key.secret
      const signingSecret = d.variant === 'revoked_key' ? world.revokedKey.secret : secret
      return {
        ...headers,
        'X-API-Key': d.text,
        'X-API-Signature': await sign(signingSecret, now, request.method, path, body),
      }
    }
  }
}

// --- the property -------------------------------------------------------------------------------

/** 503 codes a valid-looking request may get: not executed, the client retries. */
const notExecutedCodes = ['home_node_unreachable', 'mark_stale', 'mark_unavailable']

export type FuzzTarget = {
  client: ApiClient
  /** The base URL the client sends to (signatures cover the path as the node parses it). */
  base: string
  world: World
  /** What the node holds; equal before and after a rejected case. Defaults to `nodeFingerprint`. */
  fingerprint?: () => Promise<unknown>
}

export type FuzzReport = {
  seed: number
  runs: number
  /** Cases sent, shrinking included. */
  cases: number
  accepted: number
  byOperation: Record<string, number>
  byDefect: Record<string, number>
  byStatus: Record<string, number>
  ms: number
}

export type FuzzOptions = GenerateOptions & {
  seed: number
  numRuns: number
  /** Replays one counterexample (fast-check's `path` from a failure report). */
  path?: string
  /** Marks are set again every this many cases (stale marks make valid orders 503). */
  refreshMarksEvery?: number
  /** Called every `progressEvery` cases with the report so far. */
  onProgress?: (report: FuzzReport) => void
  progressEvery?: number
  /** A request that takes longer fails the case. */
  requestTimeoutMs?: number
  /** Before the random cases, one case of every defect of every operation (`everyDefect`). */
  sweep?: boolean
}

/** Sends one case and checks the property; throws with what went wrong. */
export async function sendCase(
  target: FuzzTarget,
  fuzz: FuzzCase,
  before: unknown,
  requestTimeoutMs = 30_000,
): Promise<{ reply: Reply; after: unknown; rejected: boolean }> {
  const { client, world, base } = target
  const fingerprint = target.fingerprint ?? (() => nodeFingerprint(client, world))
  const request = buildRequest(world, fuzz)
  const headers = { ...request.headers, ...(await signatureHeaders(world, base, request)) }
  const send = () => {
    let timer: ReturnType<typeof setTimeout> | undefined
    return Promise.race([
      client.raw(request.method, request.path, headers, request.body),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${requestTimeoutMs} ms`)),
          requestTimeoutMs,
        )
      }),
    ]).finally(() => clearTimeout(timer))
  }
  let reply: Reply
  try {
    reply = await send()
  } catch (error) {
    // A node that answers an oversize body before reading it may reset the connection while the
    // client still sends (workerd does, now and then): the client never sees its 413. Such a case
    // is sent again; if every try is reset, it counts as refused by closing, and must still have
    // changed nothing (checked below).
    if ((request.body?.byteLength ?? 0) <= bodyBytesMax) throw error
    reply = await send()
      .catch(() => send())
      .catch(() => ({ status: 0, headers: new Headers(), body: 'connection reset' }))
  }
  const context = () =>
    `${request.method} ${request.path} (${request.body?.byteLength ?? 0} body bytes)` +
    ` -> ${reply.status} ${JSON.stringify(reply.body).slice(0, 600)}`
  const fail = (why: string): never => {
    throw new Error(`${why}\n  case: ${JSON.stringify(fuzz).slice(0, 600)}\n  ${context()}`)
  }
  if (reply.status === 0) {
    const after = await fingerprint()
    if (JSON.stringify(after) !== JSON.stringify(before))
      fail('a reset oversize request changed the node')
    return { reply, after, rejected: true }
  }
  const code = reply.body?.error?.code
  if (reply.status >= 500) {
    const notExecuted =
      reply.status === 503 &&
      !request.mustReject &&
      notExecutedCodes.includes(code) &&
      reply.body?.error?.executionStatus === 'not_executed' &&
      reply.body?.error?.retryable === true
    if (!notExecuted) fail(`a ${reply.status} for a client's request`)
  }
  const rejected = reply.status >= 400
  if (!rejected && request.mustReject) fail('a defective request was accepted')
  if (rejected) {
    const error = reply.body?.error
    if (
      typeof error !== 'object' ||
      error === null ||
      typeof error.code !== 'string' ||
      error.code === '' ||
      typeof error.message !== 'string' ||
      error.message === '' ||
      typeof error.retryable !== 'boolean' ||
      typeof error.requestId !== 'string' ||
      error.requestId === ''
    ) {
      fail('a rejection without the error envelope')
    }
    if (!/^application\/json/.test(reply.headers.get('content-type') ?? '')) {
      fail(`a rejection answered as ${reply.headers.get('content-type')}`)
    }
    if (reply.headers.get('x-request-id') !== error.requestId) {
      fail('the envelope requestId is not the X-Request-Id header')
    }
    if (reply.headers.get('idempotent-replayed') !== null) fail('a rejection marked as replayed')
    if (request.statuses !== undefined && !request.statuses.includes(reply.status)) {
      fail(`expected ${request.statuses.join(' or ')}`)
    }
  }
  const after = await fingerprint()
  if (rejected && JSON.stringify(after) !== JSON.stringify(before)) {
    fail(
      `a rejected request changed the node:\n  before ${JSON.stringify(before)}\n  after  ${JSON.stringify(after)}`,
    )
  }
  return { reply, after, rejected }
}

/**
 * Runs `numRuns` generated cases against the node (fast-check, seeded: a failure reports its seed
 * and path, and shrinks to a smallest case). Throws on the first property failure.
 */
export async function fuzzApi(target: FuzzTarget, options: FuzzOptions): Promise<FuzzReport> {
  const { client, world } = target
  const fingerprint = target.fingerprint ?? (() => nodeFingerprint(client, world))
  const started = Date.now()
  const report: FuzzReport = {
    seed: options.seed,
    runs: options.numRuns,
    cases: 0,
    accepted: 0,
    byOperation: {},
    byDefect: {},
    byStatus: {},
    ms: 0,
  }
  const count = (table: Record<string, number>, key: string) => (table[key] = (table[key] ?? 0) + 1)
  let baseline: unknown = await fingerprint()
  const refreshEvery = options.refreshMarksEvery ?? 200
  const property = fc.asyncProperty(fuzzCase(world, options), async (fuzz) => {
    if (report.cases > 0 && report.cases % refreshEvery === 0) {
      await setMarks(client, world.marks)
      baseline = await fingerprint()
    }
    report.cases += 1
    count(report.byOperation, fuzz.op)
    count(report.byDefect, fuzz.defect.kind)
    let outcome: Awaited<ReturnType<typeof sendCase>>
    try {
      outcome = await sendCase(target, fuzz, baseline, options.requestTimeoutMs)
    } catch (error) {
      // The next case starts from what the node holds now.
      baseline = await fingerprint().catch(() => undefined)
      throw error
    }
    count(report.byStatus, String(outcome.reply.status))
    if (!outcome.rejected) report.accepted += 1
    baseline = outcome.after
    if (options.onProgress && report.cases % (options.progressEvery ?? 500) === 0) {
      options.onProgress({ ...report, ms: Date.now() - started })
    }
  })
  // The sweep runs first (fast-check's examples, which count as runs), then `numRuns` random cases.
  const examples =
    options.sweep === true
      ? everyDefect(world, options, options.seed).map((fuzz) => [fuzz] as [FuzzCase])
      : []
  report.runs = examples.length + options.numRuns
  await fc.assert(property, {
    seed: options.seed,
    numRuns: report.runs,
    examples,
    ...(options.path !== undefined && { path: options.path }),
  })
  report.ms = Date.now() - started
  return report
}
