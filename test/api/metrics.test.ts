// GET /metrics inside the Workers runtime: admin only, Prometheus text, request series labelled by
// route pattern (never the raw URL), refusals by code, durable writes counted by the replicas, and
// every document's link and queue gauges.

import { describe, expect, it } from 'vitest'
import { api, deposit, newAccount, setUpApiTests, shardCount, uid } from './helpers'

setUpApiTests()

/** The samples of an exposition, by `name{labels}` exactly as written. */
async function scrape(): Promise<Map<string, number>> {
  const reply = await api.admin('GET', '/metrics')
  expect(reply.status).toBe(200)
  expect(reply.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
  const samples = new Map<string, number>()
  for (const line of String(reply.body).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    samples.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return samples
}

const sample = (samples: Map<string, number>, series: string) => samples.get(series) ?? 0

describe('GET /metrics', () => {
  it('refuses a request without the admin token', async () => {
    const reply = await api.plain('GET', '/metrics')
    expect(reply.status).toBe(401)
    expect(reply.body.error.code).toBe('missing_admin_token')
  })

  it('counts requests by route pattern and status, never by raw URL', async () => {
    const before = await scrape()
    const { accountId } = await newAccount('0')
    const id = uid('unseen-withdrawal')
    await api.admin('GET', `/v1/withdrawals/${id}`)
    await api.plain('GET', `/no/such/${id}`)
    const after = await scrape()
    const deposits =
      'clearmesh_http_requests_total{method="POST",route="/v1/admin/deposits",status="201"}'
    // newAccount creates the account and a key; its deposit of 0 is skipped.
    const accounts =
      'clearmesh_http_requests_total{method="POST",route="/v1/admin/accounts",status="201"}'
    expect(sample(after, accounts) - sample(before, accounts)).toBe(1)
    await deposit(accountId, '5')
    const later = await scrape()
    expect(sample(later, deposits) - sample(after, deposits)).toBe(1)
    const unmatched = 'clearmesh_http_requests_total{method="GET",route="unmatched",status="404"}'
    expect(sample(after, unmatched) - sample(before, unmatched)).toBe(1)
    const keys = [...later.keys()].join('\n')
    expect(keys).not.toContain(id)
    expect(keys).toContain('route="/v1/withdrawals/:withdrawalId"')
    const count = `clearmesh_http_request_duration_ms_count{method="POST",route="/v1/admin/deposits",status="201"}`
    const inf = `clearmesh_http_request_duration_ms_bucket{method="POST",route="/v1/admin/deposits",status="201",le="+Inf"}`
    expect(sample(later, count)).toBe(sample(later, deposits))
    expect(sample(later, inf)).toBe(sample(later, count))
  })

  it('counts refusals by error code', async () => {
    const before = await scrape()
    await api.plain('GET', '/v1/admin/shards')
    await api.admin('POST', '/v1/admin/deposits', { depositId: uid('d') })
    const after = await scrape()
    for (const code of ['missing_admin_token', 'validation_failed']) {
      const series = `clearmesh_refusals_total{code="${code}"}`
      expect(sample(after, series) - sample(before, series), code).toBe(1)
    }
  })

  it("counts a market's settle calls by outcome", async () => {
    const settles = (samples: Map<string, number>) =>
      [...samples]
        .filter(([series]) =>
          series.startsWith('clearmesh_settlements_total{instrument="BTC-PERP"'),
        )
        .reduce((n, [, value]) => n + value, 0)
    const before = await scrape()
    // No mark has been set in this file's storage: the settle call is refused, and counted.
    const reply = await api.admin('POST', '/v1/admin/settlements', {
      instrument: 'BTC-PERP',
      epoch: 1,
    })
    expect(reply.status).toBe(503)
    const after = await scrape()
    expect(settles(after) - settles(before)).toBe(1)
    const refused = `clearmesh_settlements_total{instrument="BTC-PERP",outcome="${reply.body.error.code}"}`
    expect(sample(after, refused) - sample(before, refused)).toBe(1)
    expect(after.get('clearmesh_settlement_last_epoch{instrument="BTC-PERP"}')).toBe(-1)
  })

  it("reports the replicas' durable writes, documents and queues", async () => {
    const before = await scrape()
    const { accountId } = await newAccount('0')
    await deposit(accountId, '7')
    const after = await scrape()
    const writes = 'clearmesh_durable_write_duration_ms_count{kind="shard",source="local"}'
    // The account, its key and the deposit: three durable updates in its shard.
    expect(sample(after, writes) - sample(before, writes)).toBe(3)
    for (let shard = 0; shard < shardCount; shard++) {
      expect(after.get(`clearmesh_document_pending{doc="shard/${shard}"}`)).toBe(0)
      expect(after.get(`clearmesh_document_damaged{doc="shard/${shard}"}`)).toBe(0)
      expect(after.get(`clearmesh_account_lock_queue_depth{doc="shard/${shard}"}`)).toBe(0)
      expect(after.get(`clearmesh_quorum_waiters{doc="shard/${shard}"}`)).toBe(0)
    }
    expect(after.get('clearmesh_document_pending{doc="market/BTC-PERP"}')).toBe(0)
    expect(after.get('clearmesh_settlement_last_epoch{instrument="BTC-PERP"}')).toBeDefined()
    expect(after.get('clearmesh_replicas_unanswered')).toBe(0)
  })
})
