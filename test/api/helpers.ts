// Shared pieces of the HTTP API tests: a client bound to the Worker under test, raw signed
// requests that tests can tamper with, the shard- and market-state fingerprints that prove a
// rejected request changed nothing, and the assertions every rejection gets.

import { env, exports } from 'cloudflare:workers'
import { beforeAll, expect, vi } from 'vitest'
import type { Env } from '../../src/config'
import { signingPayload } from '../../src/api/signing'
import { hmacHex } from '../../src/hmac'
import { readCatalog } from '../../src/instruments'
import { apiClient, type ApiKey, type Fetch, type Reply } from '../support/api-client'

export type { ApiKey, Reply }

/** The bindings of the Worker under test (secrets come from vitest.config.ts `testSecrets`). */
export const bindings = env as unknown as Env

export const base = 'http://node-a.test'
/** The Worker's default export (the plugin's `Exports` type does not declare it). */
const worker = (exports as unknown as { default: Fetcher }).default
export const fetcher: Fetch = (url, init) => worker.fetch(url, init)
export const api = apiClient(fetcher, base, bindings.ADMIN_TOKEN)

/** Shard count the runtime project binds (vitest.config.ts). */
export const shardCount = 4

/** Every API test file: a longer per-test timeout and a warm Worker before the first test. */
export function setUpApiTests(): void {
  vi.setConfig({ testTimeout: 30_000 })
  beforeAll(async () => {
    const health = await fetcher(`${base}/health`)
    expect(health.status).toBe(200)
  }, 60_000)
}

let counter = 0
/** A fresh id, unique within the test file (storage is shared by the tests of one file). */
export const uid = (prefix: string): string =>
  `${prefix}-${(++counter).toString(36)}-${crypto.randomUUID().slice(0, 8)}`

/** Creates an account with `deposit` USD and a key holding `scopes`; returns the id and key. */
export async function newAccount(
  deposit = '0',
  scopes: string[] = ['read', 'trade', 'withdraw'],
  prefix = 'acc',
): Promise<{ accountId: string; key: ApiKey }> {
  const accountId = uid(prefix)
  const key = await api.fundedAccount(accountId, deposit, scopes)
  return { accountId, key }
}

/** Creates another key on an existing account. */
export async function newKey(accountId: string, scopes: string[]): Promise<ApiKey> {
  const created = await api.admin('POST', `/v1/admin/accounts/${accountId}/keys`, { scopes })
  expect(created.status, JSON.stringify(created.body)).toBe(201)
  return { keyId: created.body.keyId, secret: created.body.secret }
}

export async function deposit(accountId: string, amount: string, depositId = uid('dep')) {
  const reply = await api.admin('POST', '/v1/admin/deposits', {
    depositId,
    accountId,
    asset: 'USD',
    amount,
    signedAt: Date.now(),
  })
  expect(reply.status, JSON.stringify(reply.body)).toBe(201)
  return reply
}

export async function withdraw(key: ApiKey, amount: string, withdrawalId = uid('wd')) {
  const reply = await api.signed(key, 'POST', '/v1/withdrawals', {
    withdrawalId,
    asset: 'USD',
    amount,
  })
  expect(reply.status, JSON.stringify(reply.body)).toBe(201)
  return reply
}

export async function accountOf(key: ApiKey) {
  const reply = await api.signed(key, 'GET', '/v1/account')
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  return reply.body
}

/** What every shard of the node holds: equal fingerprints mean nothing was written. */
export type ShardFingerprint = {
  shard: string
  contentDigest: string | null
  stateVectorDigest: string | null
  lastSeq: number
  logRows: number
}

export async function shardFingerprints(): Promise<ShardFingerprint[]> {
  const reply = await api.admin('GET', '/v1/admin/shards')
  expect(reply.status, JSON.stringify(reply.body)).toBe(200)
  expect(reply.body.shards).toHaveLength(shardCount)
  return reply.body.shards.map((s: any) => ({
    shard: s.shard,
    contentDigest: s.contentDigest,
    stateVectorDigest: s.stateVectorDigest,
    lastSeq: s.storage.lastSeq,
    logRows: s.storage.logRows,
  }))
}

export type Expected = {
  status: number
  code: string
  retryable?: boolean
}

/** Asserts the one error envelope: status, code, retryable, a message and the request id. */
export function expectError(reply: Reply, expected: Expected): void {
  const context = JSON.stringify(reply.body)
  expect(reply.status, context).toBe(expected.status)
  expect(reply.headers.get('content-type') ?? '', context).toMatch(/^application\/json/)
  expect(reply.body, context).toEqual({
    error: expect.objectContaining({
      code: expected.code,
      message: expect.any(String),
      retryable: expected.retryable ?? false,
      requestId: expect.any(String),
    }),
  })
  expect(reply.body.error.message.length, context).toBeGreaterThan(0)
  expect(reply.body.error.requestId.length, context).toBeGreaterThan(0)
  expect(reply.headers.get('x-request-id'), context).toBe(reply.body.error.requestId)
  expect(reply.headers.get('idempotent-replayed'), context).toBeNull()
}

/** Symbols of the catalog the runtime project binds (vitest.config.ts INSTRUMENTS). */
export const marketSymbols = [...readCatalog(bindings.INSTRUMENTS).keys()]

/** The market replica of `symbol` on this node (node id "a"). */
export const marketReplica = (symbol: string) =>
  bindings.MARKET.get(bindings.MARKET.idFromName(`a/market/${symbol}`))

/** What every market replica of the node holds, and its latest mark (kept outside the document). */
export type MarketFingerprint = {
  market: string
  contentDigest: string | null
  stateVectorDigest: string | null
  lastSeq: number
  logRows: number
  nextSeq: number
  divergence: string | null
  mark: { price: string; ts: number } | null
}

export async function marketFingerprints(): Promise<MarketFingerprint[]> {
  return Promise.all(
    marketSymbols.map(async (symbol) => {
      const replica = marketReplica(symbol)
      const [status, mark] = await Promise.all([replica.status(), replica.mark()])
      return {
        market: status.shard,
        contentDigest: status.contentDigest,
        stateVectorDigest: status.stateVectorDigest,
        lastSeq: status.storage.lastSeq,
        logRows: status.storage.logRows,
        nextSeq: status.nextSeq,
        divergence: status.divergence,
        mark: mark === null ? null : { price: String(mark.price), ts: mark.ts },
      }
    }),
  )
}

/**
 * Sends a request that must be rejected, asserts its error envelope, and asserts that no shard
 * of the node changed (content digest, state vector digest, log sequence and rows), nor any
 * market replica (the same, its matcher sequence and its latest mark).
 */
export async function expectRejectedUnchanged(
  send: () => Promise<Reply>,
  expected: Expected,
): Promise<Reply> {
  const before = await shardFingerprints()
  const marketsBefore = await marketFingerprints()
  const reply = await send()
  expectError(reply, expected)
  expect(await shardFingerprints(), `${expected.code}: shards changed`).toEqual(before)
  expect(await marketFingerprints(), `${expected.code}: markets changed`).toEqual(marketsBefore)
  return reply
}

/** Sends a raw request and parses its JSON answer like the test client does. */
export const sendRaw = (
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: BodyInit,
): Promise<Reply> => api.raw(method, path, headers, body)

export type Tamper = {
  /** What is signed; defaults to what is sent. */
  signMethod?: string
  signPath?: string
  signBody?: string
  /** X-API-Timestamp to sign and send; defaults to now. */
  timestamp?: string
  /** Overrides of the sent headers (`undefined` drops one). */
  headers?: Record<string, string | undefined>
  /** Signs with this secret instead of the key's. */
  secret?: string
  /** Sends the body as bytes, so that the runtime adds no Content-Type of its own. */
  bodyAsBytes?: boolean
  /** Rewrites the computed signature before it is sent. */
  mapSignature?: (signature: string) => string
}

/** A signed request whose signed parts or headers a test can change. */
export async function signedRaw(
  key: ApiKey,
  method: string,
  path: string,
  body: string | undefined,
  tamper: Tamper = {},
): Promise<Reply> {
  const timestamp = tamper.timestamp ?? String(Date.now())
  const signature = await hmacHex(
    tamper.secret ?? key.secret,
    signingPayload(
      timestamp,
      tamper.signMethod ?? method,
      tamper.signPath ?? path,
      tamper.signBody ?? body ?? '',
    ),
  )
  const headers: Record<string, string | undefined> = {
    'content-type': 'application/json',
    'X-API-Key': key.keyId,
    'X-API-Timestamp': timestamp,
    'X-API-Signature': tamper.mapSignature ? tamper.mapSignature(signature) : signature,
    ...tamper.headers,
  }
  const sent = Object.fromEntries(
    Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== undefined),
  )
  const payload = tamper.bodyAsBytes && body !== undefined ? new TextEncoder().encode(body) : body
  return sendRaw(method, path, sent, payload)
}

const shardNamePattern = new RegExp(`^a/shard/[0-${shardCount - 1}]$`)

/**
 * Asserts what a read reflects: this node, the replicas it read (exactly one of them an account
 * shard of this node; others, such as markets, may follow), none pending, and the node's time.
 */
export function expectReflects(reflects: any, options: { from: number } = { from: 0 }): void {
  expect(reflects).toEqual({
    node: 'a',
    shards: expect.any(Array),
    at: expect.any(Number),
  })
  expect(reflects.shards.length).toBeGreaterThanOrEqual(1)
  for (const shard of reflects.shards) {
    expect(shard).toEqual({
      shard: expect.stringMatching(/^a\//),
      stateVectorDigest: expect.stringMatching(/^[0-9a-f]{16,}$/),
      pending: false,
    })
  }
  accountShardOf(reflects)
  expect(Number.isInteger(reflects.at)).toBe(true)
  expect(reflects.at).toBeGreaterThanOrEqual(options.from)
  expect(reflects.at).toBeLessThanOrEqual(Date.now() + 1_000)
}

/** The account shard entry of a `reflects` (there is exactly one). */
export function accountShardOf(reflects: any): {
  shard: string
  stateVectorDigest: string
  pending: boolean
} {
  const shards = reflects.shards.filter((s: { shard: string }) => shardNamePattern.test(s.shard))
  expect(shards, JSON.stringify(reflects)).toHaveLength(1)
  return shards[0]
}
