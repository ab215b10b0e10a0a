// The reconciler's audits across a real two-node mesh: a rogue peer holding the mesh secret
// sends node a a valid y-protocols update with a withdrawal that passes every per-entry check
// but moves the victim's cash to the fee account, approved by a node holding no rights (I6, I4).
// The update is taken (nothing in it is malformed). Both nodes audit; each records the same
// findings, which merge into one entry each without either node refusing the other's copy (the
// mesh still converges); both show them in GET /v1/mesh/status; on both the victim's withdrawals
// wait for the operator while another account of the same shard withdraws (at b once a has
// granted it rights: its deposit was recorded at a).

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as protocol from '../../src/mesh/protocol'
import { shardOf } from '../../src/state/shard-of'
import type { ApiKey } from '../support/api-client'
import { startMesh, waitFor, type Mesh } from './support/mesh'
import { roguePeer } from './support/rogue-peer'

const shards = 4

describe('audits on a mesh', () => {
  let mesh: Mesh
  const rogue = roguePeer(() => mesh)
  const accounts: { accountId: string; key: ApiKey }[] = []

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b'], shards })
    // Two accounts of one shard: victim-0 and the next id that hashes beside it.
    const ids = Array.from({ length: 64 }, (_, n) => `victim-${n}`)
    const shard = shardOf(ids[0]!, shards)
    for (const accountId of ids.filter((id) => shardOf(id, shards) === shard).slice(0, 2)) {
      accounts.push({ accountId, key: await mesh.client('a').fundedAccount(accountId, '100') })
    }
    await mesh.converge('accounts funded')
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  it('records one finding per violation from both nodes and halts the victim on both', async () => {
    const [victim, other] = accounts
    const doc = `shard/${shardOf(victim!.accountId, shards)}`
    const planted = {
      id: `withdrawal/${victim!.accountId}/planted`,
      kind: 'withdrawal',
      from: victim!.accountId,
      to: '@fees',
      amount: '30',
      ts: Date.now(),
      node: 'z',
      requestDigest: 'planted',
    }
    const link = await rogue.openLink(doc)
    try {
      const copy = await rogue.stateOf(link)
      const vector = Y.encodeStateVector(copy)
      copy.getMap('transfers').set(planted.id, planted)
      link.socket.sendBinary(protocol.writeUpdate(Y.encodeStateAsUpdate(copy, vector)))
      expect(await rogue.settle(link)).toEqual({ answered: true })
    } finally {
      link.socket.destroy()
    }
    await mesh.converge('planted withdrawal replicated')
    const ids = [
      `violation/I6/${doc}/${planted.id}/${victim!.accountId}`,
      `violation/I4/${doc}/${victim!.accountId}/z/${victim!.accountId}`,
    ]
    // Both audit at once: both write the same findings, which must merge.
    const audited = await Promise.all(
      ['a', 'b'].map((node) => mesh.client(node).admin('POST', '/v1/admin/audits')),
    )
    for (const reply of audited) expect(reply.status).toBe(200)
    await mesh.converge('findings replicated')
    for (const node of ['a', 'b']) {
      const status = await mesh.client(node).admin('GET', '/v1/mesh/status')
      const shown = status.body.documents.find((d: any) => d.shard === `${node}/${doc}`).findings
      for (const id of ids) {
        expect(
          shown.filter((f: any) => f.id === id),
          `${node} ${id}`,
        ).toHaveLength(1)
      }
      expect(shown.find((f: any) => f.id === ids[0])).toMatchObject({
        kind: 'violation',
        invariant: 'I6',
        accountId: victim!.accountId,
        evidence: { transfer: planted },
      })
      const refused = await mesh.client(node).signed(victim!.key, 'POST', '/v1/withdrawals', {
        withdrawalId: `after-${node}`,
        asset: 'USD',
        amount: '1',
      })
      expect(refused.status, JSON.stringify(refused.body)).toBe(503)
      expect(refused.body.error).toMatchObject({ code: 'withdrawals_halted', retryable: true })
      // The neighbour's cash was deposited at a: at b its first try waits for a's grant.
      const approved = await waitFor(`${other!.accountId} withdraws at ${node}`, async () => {
        const reply = await mesh.client(node).signed(other!.key, 'POST', '/v1/withdrawals', {
          withdrawalId: `after-${node}`,
          asset: 'USD',
          amount: '1',
        })
        if (reply.status === 503) expect(reply.body.error.code).toBe('insufficient_local_rights')
        return reply.status === 503 ? undefined : reply
      })
      expect(approved.status, JSON.stringify(approved.body)).toBe(201)
    }
  })
})
