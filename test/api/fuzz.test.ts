// Generated hostile requests to every route of the OpenAPI document (test/support/fuzz-requests.ts,
// the same generators `npm run fuzz` runs for longer against a node process): broken auth, replayed
// and skewed signatures, wrong content types and encodings, malformed, huge and deeply nested
// bodies, wrong types, missing and unknown fields, path traversal, bad query parameters and other
// accounts' ids. Each gets a 4xx with the error envelope, changes no document nor mark of the
// node, and the node keeps serving. A failure prints fast-check's seed and path; the same cases
// replay against a node process with `npm run fuzz -- --seed <seed> --path <path>`.

import { beforeAll, describe, expect, it } from 'vitest'
import {
  documentsFingerprint,
  everyDefect,
  fuzzApi,
  prepareWorld,
  type FuzzReport,
  type World,
} from '../support/fuzz-requests'
import { api, base, bindings, marketFingerprints, setUpApiTests, uid } from './helpers'

setUpApiTests()

/** A new seed every run (printed in the test name); a failure replays from its seed and path. */
const seed = Math.floor(Math.random() * 2 ** 31)
const numRuns = 100
const windowMs = Number(bindings.SIGNATURE_WINDOW_MS ?? 5_000)

describe(`API fuzz (seed ${seed})`, () => {
  let world: World
  let report: FuzzReport | undefined

  beforeAll(async () => {
    world = await prepareWorld(api, { tag: uid('fz'), adminToken: bindings.ADMIN_TOKEN })
  }, 60_000)

  it(`every defect of every route, then ${numRuns} random ones: 4xx, envelope, nothing changed`, async () => {
    // Every document (through the API), and each market's matcher sequence and latest mark
    // (through the replicas: marks are kept outside the documents).
    const fingerprint = async () => ({
      documents: await documentsFingerprint(api),
      markets: await marketFingerprints(),
    })
    report = await fuzzApi(
      { client: api, base, world, fingerprint },
      { seed, numRuns, sweep: true, windowMs, maxBodyBytes: 256 * 1024, refreshMarksEvery: 100 },
    )
    console.log(`api fuzz (seed ${seed}): ${JSON.stringify(report)}`)
    const sweep = everyDefect(world, { windowMs, maxBodyBytes: 256 * 1024 }, seed).length
    expect(sweep).toBeGreaterThan(200)
    expect(report.cases).toBe(sweep + numRuns)
    // Every documented operation and every kind of defect was exercised.
    const documented = world.operations.filter((op) => op.documented).map((op) => op.id)
    expect(documented.length).toBeGreaterThanOrEqual(20)
    for (const op of documented) expect(report.byOperation[op], op).toBeGreaterThan(0)
    for (const kind of [
      'admin_auth',
      'missing_signature_header',
      'bad_signature',
      'signed_other',
      'replayed_signature',
      'skewed_timestamp',
      'bad_timestamp',
      'wrong_key',
      'wrong_scope',
      'content_type',
      'huge_body',
      'malformed_json',
      'wrong_type',
      'extra_field',
      'deep_nesting',
      'path_param',
      'query_param',
      'wrong_method',
    ]) {
      expect(report.byDefect[kind], kind).toBeGreaterThan(0)
    }
    // Almost every case is a mistake: most answers are 4xx.
    const rejected = Object.entries(report.byStatus)
      .filter(([status]) => Number(status) >= 400 && Number(status) < 500)
      .reduce((n, [, count]) => n + count, 0)
    expect(rejected).toBeGreaterThan(report.cases * 0.8)
  }, 120_000)

  it('a bodiless POST (an empty body without Content-Type, as fetch sends it) is served', async () => {
    // fetch, curl and every HTTP client send `Content-Length: 0` on a POST without a body: the
    // route takes no body, so there is no media type to refuse.
    const compacted = await api.raw(
      'POST',
      '/v1/admin/shards/0/compact',
      { authorization: `Bearer ${bindings.ADMIN_TOKEN}` },
      new Uint8Array(0),
    )
    expect(compacted.status, JSON.stringify(compacted.body)).toBe(200)
    // And a bad token on it is answered as a bad token.
    const refused = await api.raw(
      'POST',
      '/v1/admin/shards/0/compact',
      { authorization: 'Bearer wrong' },
      new Uint8Array(0),
    )
    expect(refused.status, JSON.stringify(refused.body)).toBe(401)
  })

  it('the node still serves reads and writes after the fuzz, with every balance intact', async () => {
    expect((await api.plain('GET', '/health')).status).toBe(200)
    for (const party of [world.own, world.other]) {
      const before = await api.signed(party.key, 'GET', '/v1/account')
      expect(before.status, JSON.stringify(before.body)).toBe(200)
      expect(before.body.accountId).toBe(party.accountId)
      const withdrawal = await api.signed(party.key, 'GET', `/v1/withdrawals/${party.withdrawalId}`)
      expect(withdrawal.status).toBe(200)
      expect(withdrawal.body).toMatchObject({ accountId: party.accountId, amount: '1.5' })
    }
    // The other account was never written by the cases (they sign with the own account's keys):
    // its ledger still holds exactly its deposit, its withdrawal and the world's trades.
    const ledger = await api.signed(world.other.key, 'GET', '/v1/ledger?limit=500')
    expect(ledger.status).toBe(200)
    const kinds = ledger.body.entries.map((e: { kind: string }) => e.kind).sort()
    expect(kinds.filter((k: string) => k === 'deposit')).toHaveLength(1)
    expect(kinds.filter((k: string) => k === 'withdrawal')).toHaveLength(1)
    const deposited = await api.admin('POST', '/v1/admin/deposits', {
      depositId: uid('after'),
      accountId: world.other.accountId,
      asset: 'USD',
      amount: '2',
      signedAt: Date.now(),
    })
    expect(deposited.status, JSON.stringify(deposited.body)).toBe(201)
  })
})
