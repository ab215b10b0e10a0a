// Forged money from a peer that holds the mesh secret (a compromised node): on a real two-node
// mesh, a rogue peer opens an authenticated link to node a and sends valid y-protocols updates
// carrying a deposit the operator never signed (unsigned, signed by another key, a genuine
// deposit's signature replayed onto a larger one) and a venue halt the operator never signed.
// Each: the whole update is refused and the link closes with 1008, nothing of it counts on any
// node (balances, ledgers, breakers), the forged entry is recorded as a finding with its evidence
// (GET /v1/mesh/status, on both nodes once replicated), and the mesh keeps replicating. So is a
// checkpoint acknowledgement signed in node b's name by another key than b's pinned one.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as protocol from '../../src/mesh/protocol'
import * as merkle from '../../src/domain/merkle'
import { generateOperatorKey, seal, signContent } from '../../src/state/operator-signature'
import { ackKey } from '../../src/state/shard-doc'
import { shardOf } from '../../src/state/shard-of'
import type { ApiClient, ApiKey } from '../support/api-client'
import { startMesh, waitFor, type Mesh } from './support/mesh'
import { roguePeer } from './support/rogue-peer'

const shards = 4
const rogueKey = generateOperatorKey()

describe('forged money from a peer holding the mesh secret', () => {
  let mesh: Mesh
  let victim: { accountId: string; key: ApiKey; doc: string }
  const rogue = roguePeer(() => mesh)
  const client = (id: string): ApiClient => mesh.client(id)

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b'], shards })
    const accountId = 'victim'
    const key = await client('a').fundedAccount(accountId, '100')
    victim = { accountId, key, doc: `shard/${shardOf(accountId, shards)}` }
    await mesh.converge('victim funded')
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  /** What counts of the victim on `node`: collateral and ledger entry ids. */
  async function counted(node: string) {
    const account = await client(node).signed(victim.key, 'GET', '/v1/account')
    const ledger = await client(node).signed(victim.key, 'GET', '/v1/ledger?limit=500')
    expect(account.status, JSON.stringify(account.body)).toBe(200)
    expect(ledger.status, JSON.stringify(ledger.body)).toBe(200)
    return {
      collateral: account.body.collateral as string,
      entries: (ledger.body.entries as { id: string }[]).map((e) => e.id).sort(),
    }
  }

  /** The findings of `doc` on `node`. */
  async function findingsOf(node: string, doc: string): Promise<any[]> {
    const status = await client(node).admin('GET', '/v1/mesh/status')
    expect(status.status).toBe(200)
    const document = status.body.documents.find((d: any) => d.shard.endsWith(`/${doc}`))
    expect(document, doc).toBeDefined()
    return document.findings
  }

  /** Sends `forge`'s change to a copy of node a's `doc` on one rogue link; how the link ended. */
  async function sendForged(doc: string, forge: (copy: Y.Doc) => void) {
    const link = await rogue.openLink(doc)
    try {
      const copy = await rogue.stateOf(link)
      const vector = Y.encodeStateVector(copy)
      forge(copy)
      link.socket.sendBinary(protocol.writeUpdate(Y.encodeStateAsUpdate(copy, vector)))
      return await rogue.settle(link)
    } finally {
      link.socket.destroy()
    }
  }

  it('refuses forged deposits whole, counts nothing anywhere and records the evidence', async () => {
    const before = { a: await counted('a'), b: await counted('b') }
    const genuineId = `deposit/${victim.accountId}/initial-${victim.accountId}`
    const forgeries: [string, (genuine: any, id: string) => Record<string, unknown>][] = [
      ['unsigned', (genuine, id) => ({ ...genuine, id, amount: '1000000', signature: undefined })],
      [
        'signed by another key',
        (genuine, id) => {
          const { signature: _signature, ...entry } = { ...genuine, id, amount: '1000000' }
          return { ...entry, signature: seal(rogueKey.signingKey, 'transfers', entry) }
        },
      ],
      ['a genuine signature replayed', (genuine, id) => ({ ...genuine, id, amount: '1000000' })],
    ]
    for (const [what, make] of forgeries) {
      const id = `deposit/${victim.accountId}/forged-${forgeries.findIndex(([w]) => w === what)}`
      let forged: Record<string, unknown> | undefined
      const settled = await sendForged(victim.doc, (copy) => {
        const transfers = copy.getMap<any>('transfers')
        const genuine = transfers.get(genuineId)
        expect(genuine?.signature, 'the genuine deposit is signed').toMatch(/^[A-Za-z0-9_-]{86}$/)
        forged = JSON.parse(JSON.stringify(make(genuine, id)))
        transfers.set(id, forged)
        // Beside it, an entry that would be fine alone: the whole update is refused.
        copy
          .getMap('accounts')
          .set('mallory-shell', { accountId: 'mallory-shell', createdAt: 1, node: 'z' })
      })
      expect(settled, what).toMatchObject({ closed: { code: 1008 } })
      expect('closed' in settled && settled.closed.reason, what).toMatch(/operator's signature/)
      // The evidence: on node a at once, on b once it has replicated.
      for (const node of ['a', 'b']) {
        const finding = await waitFor(`${node} records ${what}`, async () =>
          (await findingsOf(node, victim.doc)).find((f) => f.id === `forged/transfers/${id}`),
        )
        expect(finding, what).toMatchObject({
          kind: 'forged_entry',
          invariant: 'I6',
          accountId: victim.accountId,
          node: 'a',
          evidence: { map: 'transfers', key: id, entry: forged, origin: 'peer:mallory' },
        })
      }
    }
    // Nothing counted, on either node: the same balance and ledger as before.
    await mesh.converge('after the forgeries')
    expect(await counted('a')).toEqual(before.a)
    expect(await counted('b')).toEqual(before.b)
    expect(before.a.collateral).toBe('100')
  })

  it("refuses a checkpoint acknowledgement in another node's name, under the pinned keys", async () => {
    for (const node of ['a', 'b']) {
      const status = await client(node).admin('GET', '/v1/mesh/status')
      expect(status.body.peerKeysPinned, node).toBe(true)
    }
    // Validly signed, over a real shard and epoch, but by a key that is not b's: unpinned, the
    // remote checks would take it (they check the signature against the key the ack carries).
    const shard = shardOf(victim.accountId, shards)
    const root = 'ab'.repeat(32)
    const id = ackKey(1, 'b')
    const forged = {
      id,
      epoch: 1,
      node: 'b',
      root,
      publicKey: rogueKey.publicKey,
      signature: signContent(rogueKey.signingKey, merkle.checkpointSignedContent(shard, 1, root)),
    }
    const settled = await sendForged(victim.doc, (copy) =>
      copy.getMap('checkpointAcks').set(id, forged),
    )
    expect(settled).toMatchObject({ closed: { code: 1008 } })
    expect('closed' in settled && settled.closed.reason).toMatch(/not node b's pinned key/)
    for (const node of ['a', 'b']) {
      const finding = await waitFor(`${node} records the forged acknowledgement`, async () =>
        (await findingsOf(node, victim.doc)).find((f) => f.id === `forged/checkpointAcks/${id}`),
      )
      expect(finding, node).toMatchObject({
        kind: 'forged_entry',
        node: 'a',
        evidence: { map: 'checkpointAcks', key: id, entry: forged, origin: 'peer:mallory' },
      })
    }
    // Nothing of it was applied: node a does not hold it, and b holds what a does.
    await mesh.converge('after the forged acknowledgement')
    const link = await rogue.openLink(victim.doc)
    try {
      expect((await rogue.stateOf(link)).getMap('checkpointAcks').has(id)).toBe(false)
    } finally {
      link.socket.destroy()
    }
  })

  it('refuses a forged venue halt; orders are still taken and the mesh still replicates', async () => {
    const settled = await sendForged('market/BTC-PERP', (copy) => {
      copy.getMap('breakers').set('breaker/venue/*/1/z/forged', {
        id: 'breaker/venue/*/1/z/forged',
        scope: 'venue',
        instrument: null,
        mode: 'halted',
        reason: 'forged',
        ts: Date.now(),
        node: 'z',
      })
    })
    expect(settled).toMatchObject({ closed: { code: 1008 } })
    for (const node of ['a', 'b']) {
      const breakers = await client(node).admin('GET', '/v1/admin/breakers')
      expect(breakers.body.instruments['BTC-PERP'], node).toBe('normal')
    }
    const finding = await waitFor('a records the forged breaker', async () =>
      (await findingsOf('a', 'market/BTC-PERP')).find(
        (f) => f.id === 'forged/breakers/breaker/venue/*/1/z/forged',
      ),
    )
    expect(finding).toMatchObject({ kind: 'forged_entry', evidence: { map: 'breakers' } })
    // A genuine deposit at a still reaches b.
    const deposited = await client('a').admin('POST', '/v1/admin/deposits', {
      depositId: 'after-forgeries',
      accountId: victim.accountId,
      asset: 'USD',
      amount: '5',
      signedAt: Date.now(),
    })
    expect(deposited.status, JSON.stringify(deposited.body)).toBe(201)
    await waitFor('b counts the genuine deposit', async () =>
      (await counted('b')).collateral === '105' ? true : undefined,
    )
  })
})
