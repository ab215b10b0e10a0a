// F10 in a mesh of three real nodes: a damaged shard repairs itself from its peers. Writes land on
// all three nodes; node c is drained (its writers stop and the mesh converges, so its peers hold
// everything it acknowledged), killed, and the newest stored update of one of its shards is zeroed
// or halved with the sqlite3 tool (as the partition harness's `corrupt` does). b is down too when
// c restarts: c keeps what verifies, quarantines the rest and syncs with a, but a single peer is
// not enough (with 3 nodes a quorum write may be held by c and b alone), so the shard refuses its
// clients. Once b is back c finishes the repair: every acknowledged write is present on every
// node, the digests converge, and the repair is a finding every node shows.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { corruptNewestUpdate } from '../../scripts/chaos/cluster'
import { shardOf } from '../../src/state/shard-of'
import type { ApiClient } from '../support/api-client'
import { fundedEverywhere } from './support/funding'
import { startMesh, waitFor, type Mesh } from './support/mesh'
import {
  checkLedgers,
  checkShards,
  seededRandom,
  send,
  testSeed,
  type Account,
  type Write,
} from './support/ledger-writes'

const seed = testSeed()
const random = seededRandom(seed)
const shardCount = 16
/** Accounts on this many distinct shards, so a damaged shard has neighbours that keep serving. */
const accountShards = 6
const ackedWrites = 90

type RepairStatus = {
  state: 'repairing' | 'repaired'
  startedAt: number
  finishedAt: number | null
  damage: { where: string; reason: string; seq?: number }
  peers: string[]
  peersNeeded: number
}

type DocumentStatus = {
  shard: string
  damage: unknown
  repair: RepairStatus | null
  findings?: { id: string; kind: string; node: string; message: string; evidence: any }[]
}

/** Document `name` (`shard/3`) in a node's mesh status, where it carries the node's id. */
async function documentOf(client: ApiClient, name: string): Promise<DocumentStatus | undefined> {
  const reply = await client.admin('GET', '/v1/mesh/status')
  if (reply.status !== 200) return undefined
  const documents = reply.body.documents as DocumentStatus[]
  return documents.find((doc) => doc.shard === `${reply.body.node}/${name}`)
}

describe(`a damaged shard repairs from its peers (seed ${seed})`, () => {
  let mesh: Mesh
  const accounts: Account[] = []
  const writes: Write[] = []

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b', 'c'], shards: shardCount })
    await mesh.converge('start')
    const shardsTaken = new Set<number>()
    for (let i = 0; shardsTaken.size < accountShards && i < 1_000; i++) {
      const accountId = `rep-${i}`
      if (shardsTaken.has(shardOf(accountId, shardCount))) continue
      shardsTaken.add(shardOf(accountId, shardCount))
      const funded = await fundedEverywhere(mesh, accountId, '1000')
      accounts.push(funded.account)
      writes.push(...funded.writes)
    }
    expect(accounts).toHaveLength(accountShards)
    await mesh.converge('accounts')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  it('keeps refusing with one peer synced, then repairs with every acknowledged write', async () => {
    // Deposits and small withdrawals at every node, one at a time per node.
    let sequence = 0
    const writer = async (id: string) => {
      while (writes.filter((w) => w.outcome === 'acked').length < ackedWrites) {
        const account = accounts[Math.floor(random() * accounts.length)]!
        const withdrawal = random() < 0.4
        const write: Write = {
          kind: withdrawal ? 'withdrawal' : 'deposit',
          accountId: account.accountId,
          requestId: `${id}-${sequence++}`,
          amount: withdrawal ? '1.25' : `${1 + Math.floor(random() * 20)}.5`,
        }
        writes.push(write)
        await send(mesh.client(id), account, write)
      }
    }
    await Promise.all(mesh.ids.map(writer))
    expect(writes.filter((w) => w.outcome === 'unknown')).toEqual([])
    // Drained: c's peers hold everything c acknowledged.
    await mesh.converge('before the damage')

    const b = mesh.node('b')
    const c = mesh.node('c')
    await c.kill()
    const damaged = await corruptNewestUpdate(c.dataDir, random() < 0.5 ? 'flip' : 'truncate')
    const replica = /^c\/(shard\/\d+) update (\d+)/.exec(damaged)
    expect(replica, damaged).not.toBeNull()
    const name = replica![1]!
    const damagedSeq = Number(replica![2])
    const shard = Number(name.slice('shard/'.length))
    const victim = accounts.find((x) => shardOf(x.accountId, shardCount) === shard)
    const neighbour = accounts.find((x) => shardOf(x.accountId, shardCount) !== shard)
    expect(victim, `an account on ${name}`).toBeDefined()
    console.log(`[repair] damaged ${damaged}; victim ${victim!.accountId}`)

    await b.kill()
    await c.restart()
    const clientC = mesh.client('c')
    let lastSeen: DocumentStatus | undefined
    const repairing = await waitFor(
      `${name} on c synced with a`,
      async () => {
        const doc = await documentOf(clientC, name)
        lastSeen = doc
        return doc?.repair?.state === 'repairing' && doc.repair.peers.includes('a')
          ? doc
          : undefined
      },
      { timeoutMs: 30_000 },
    ).catch((error) => {
      throw new Error(`${String(error)}; last seen ${JSON.stringify(lastSeen)}`)
    })
    expect(repairing.repair).toMatchObject({
      damage: { where: 'update_log', seq: damagedSeq },
      peers: ['a'],
      peersNeeded: 2,
    })
    // While repairing it refuses the shard's reads and writes, retryable and not executed.
    const read = await clientC.signed(victim!.key, 'GET', '/v1/account')
    expect(read.status).toBe(503)
    expect(read.body.error).toMatchObject({ code: 'shard_damaged', retryable: true })
    const refusedWrite: Write = {
      kind: 'deposit',
      accountId: victim!.accountId,
      requestId: 'while-repairing',
      amount: '3',
    }
    writes.push(refusedWrite)
    await send(clientC, victim!, refusedWrite)
    expect(refusedWrite.outcome).toBe('refused')
    // Its other shards serve.
    expect((await clientC.signed(neighbour!.key, 'GET', '/v1/account')).status).toBe(200)

    await b.restart()
    const repaired = await waitFor(
      `${name} on c repaired`,
      async () => {
        const doc = await documentOf(clientC, name)
        return doc?.repair?.state === 'repaired' ? doc : undefined
      },
      { timeoutMs: 60_000 },
    )
    expect(repaired.damage).toBeNull()
    expect(repaired.repair).toMatchObject({ peers: ['a', 'b'] })
    expect(repaired.repair!.finishedAt).toBeGreaterThanOrEqual(repaired.repair!.startedAt)
    console.log(
      `[repair] ${name} on c: repairing for ${repaired.repair!.finishedAt! - repaired.repair!.startedAt} ms ` +
        `(b was down for part of it)`,
    )
    await mesh.converge('after the repair', { timeoutMs: 60_000 })

    // Every acknowledged write on every node, the refused one nowhere; the same ledgers.
    const found = new Map<string, string[]>()
    for (const id of mesh.ids) {
      const client = mesh.client(id)
      expect((await checkShards(client)).problems, `node ${id}`).toEqual([])
      const check = await checkLedgers(client, accounts, writes)
      expect(check.problems, `node ${id}`).toEqual([])
      found.set(id, check.presentIds.sort())
    }
    expect(found.get('c')).toEqual(found.get('a'))
    expect(found.get('b')).toEqual(found.get('a'))

    // The repair is a finding of the document, on every node once replicated.
    for (const id of mesh.ids) {
      const doc = await documentOf(mesh.client(id), name)
      const finding = doc?.findings?.find((f) => f.kind === 'repair')
      expect(finding, `repair finding on ${id}`).toMatchObject({
        node: 'c',
        evidence: {
          peers: ['a', 'b'],
          damage: { where: 'update_log', seq: damagedSeq },
          quarantined: [expect.objectContaining({ seq: damagedSeq, verified: false })],
        },
      })
    }
    // And the shard takes writes again.
    const after: Write = {
      kind: 'deposit',
      accountId: victim!.accountId,
      requestId: 'after-repair',
      amount: '4',
    }
    await send(clientC, victim!, after)
    expect(after.outcome).toBe('acked')
  })
})
