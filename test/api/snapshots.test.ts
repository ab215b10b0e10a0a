// The snapshot routes inside the Workers runtime: export gives a document's whole state with its
// checksum and state vector; restore takes it back as a peer's update is taken, and refuses a
// wrong media type, a missing or wrong checksum, bytes that are no Yjs update, and an unknown
// document, changing nothing.

import { describe, expect, it } from 'vitest'
import { checksum } from '../../src/replica/checksum'
import { shardOf } from '../../src/state/shard-of'
import { api, base, bindings, fetcher, setUpApiTests, shardCount, uid } from './helpers'

setUpApiTests()

const path = '/v1/admin/snapshots/shard/0'
const auth = { authorization: `Bearer ${bindings.ADMIN_TOKEN}` }

async function exported(doc = path) {
  const response = await fetcher(`${base}${doc}`, { headers: auth })
  expect(response.status).toBe(200)
  const update = new Uint8Array(await response.arrayBuffer())
  expect(response.headers.get('x-snapshot-checksum')).toBe(checksum(update))
  expect(response.headers.get('x-snapshot-state-vector')).toMatch(/^[A-Za-z0-9+/=]+$/)
  return update
}

const restore = (body: Uint8Array, headers: Record<string, string>) =>
  fetcher(`${base}${path}`, { method: 'POST', headers: { ...auth, ...headers }, body })

const digestOfShard0 = async () => {
  const shards = await api.admin('GET', '/v1/admin/shards')
  return JSON.stringify(shards.body)
}

describe('snapshot export and restore of one document', () => {
  it('is in the OpenAPI document, with the admin token and byte bodies', async () => {
    const doc = (await api.plain('GET', '/v1/openapi.json')).body
    const operations = doc.paths['/v1/admin/snapshots/{kind}/{name}']
    expect(operations.get.security).toEqual([{ adminToken: [] }])
    expect(Object.keys(operations.get.responses['200'].content)).toEqual([
      'application/octet-stream',
    ])
    expect(Object.keys(operations.post.requestBody.content)).toEqual(['application/octet-stream'])
    expect(Object.keys(operations.post.responses)).toEqual(
      expect.arrayContaining(['200', '401', '413', '415', '422']),
    )
  })

  it('needs the admin token', async () => {
    expect((await fetcher(`${base}${path}`)).status).toBe(401)
    const response = await fetcher(`${base}${path}`, { method: 'POST', body: new Uint8Array(1) })
    expect(response.status).toBe(401)
  })

  it('exports the state and takes it back', async () => {
    // An account with a deposit in shard 0 makes the document non-empty.
    const accountId = Array.from({ length: 256 }, () => uid('snap')).find(
      (id) => shardOf(id, shardCount) === 0,
    )!
    await api.fundedAccount(accountId, '3')
    const update = await exported()
    expect(update.byteLength).toBeGreaterThan(2)
    const response = await restore(update, {
      'content-type': 'application/octet-stream',
      'x-snapshot-checksum': checksum(update),
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ restored: true, stateVector: expect.any(String) })
    expect(await exported()).toEqual(update)
  })

  it('refuses bad restores and changes nothing', async () => {
    const update = await exported()
    const before = await digestOfShard0()
    const garbage = new Uint8Array([9, 9, 9, 9, 9])
    const cases: [Uint8Array, Record<string, string>, number, string][] = [
      [update, { 'content-type': 'application/json' }, 415, 'unsupported_media_type'],
      [update, { 'content-type': 'application/octet-stream' }, 400, 'validation_failed'],
      [
        update,
        { 'content-type': 'application/octet-stream', 'x-snapshot-checksum': checksum(garbage) },
        422,
        'snapshot_corrupt',
      ],
      [
        garbage,
        { 'content-type': 'application/octet-stream', 'x-snapshot-checksum': checksum(garbage) },
        422,
        'snapshot_refused',
      ],
    ]
    for (const [body, headers, status, code] of cases) {
      const response = await restore(body, headers)
      expect(response.status, code).toBe(status)
      expect(((await response.json()) as any).error.code).toBe(code)
    }
    expect(await digestOfShard0()).toBe(before)
    const unknown = await fetcher(`${base}/v1/admin/snapshots/shard/999`, { headers: auth })
    expect(unknown.status).toBe(404)
  })
})
