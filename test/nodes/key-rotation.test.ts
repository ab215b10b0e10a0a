// Rotation and revocation of API keys across a real three-node mesh: a key made on one node signs
// on every node; rotated on another, the old key is refused on every node once the revocation has
// replicated and the new one (made and revoked in one write) signs everywhere; a key revoked on a
// third node is refused on the others too.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiKey } from '../support/api-client'
import { startMesh, waitFor, type Mesh } from './support/mesh'

describe('key rotation and revocation across the mesh', () => {
  let mesh: Mesh
  const accountId = 'rotating'

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b', 'c'], shards: 4 })
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  /** The status of a signed read with `key` on `node`, and its error code. */
  async function readWith(node: string, key: ApiKey) {
    const reply = await mesh.client(node).signed(key, 'GET', '/v1/account')
    return { status: reply.status, code: reply.body?.error?.code as string | undefined }
  }

  /** Waits until every node answers reads with `key` as `expected`. */
  async function everywhere(
    what: string,
    key: ApiKey,
    expected: { status: number; code?: string },
  ) {
    for (const node of mesh.ids) {
      await waitFor(`${what} on ${node}`, async () => {
        const read = await readWith(node, key)
        return read.status === expected.status && read.code === expected.code ? true : undefined
      })
    }
  }

  it('a key rotated on one node is refused on every node; its replacement signs everywhere', async () => {
    const old = await mesh.client('a').fundedAccount(accountId, '50', ['read'])
    await everywhere('the new account key', old, { status: 200 })
    const rotated = await mesh.client('b').admin('POST', `/v1/admin/keys/${old.keyId}/rotate`)
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(201)
    const fresh: ApiKey = { keyId: rotated.body.keyId, secret: rotated.body.secret }
    await everywhere('the revoked old key', old, { status: 401, code: 'api_key_revoked' })
    await everywhere('the replacement', fresh, { status: 200 })
    // Revoked on a third node, the replacement is refused on the first two as well.
    expect((await mesh.client('c').admin('DELETE', `/v1/admin/keys/${fresh.keyId}`)).status).toBe(
      200,
    )
    await everywhere('the revoked replacement', fresh, { status: 401, code: 'api_key_revoked' })
    // Neither can be rotated again anywhere: one replays, the other was revoked.
    const again = await mesh.client('c').admin('POST', `/v1/admin/keys/${old.keyId}/rotate`)
    expect(again.status).toBe(201)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(again.body.keyId).toBe(fresh.keyId)
    const refused = await mesh.client('a').admin('POST', `/v1/admin/keys/${fresh.keyId}/rotate`)
    expect(refused.status, JSON.stringify(refused.body)).toBe(409)
    await mesh.converge('after the rotations')
  })
})
