// Three real nodes replicating over y-protocols sync links (direct sockets, no proxy). Accounts are
// created on a, their keys on b, and deposits and signed withdrawals go to a, b and c at once:
// every node converges to the same digests (I1) and holds every acknowledged write (I2), read back
// through the client API of every node. Then replication lag is measured: from a 2xx on one node to
// the withdrawal reading back on the next. Last, the sync endpoint refuses links without a valid
// mesh token (and a follower's write) and nothing changes.

import * as Y from 'yjs'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import * as protocol from '../../src/mesh/protocol'
import * as meshToken from '../../src/mesh/token'
import { percentile, startMesh, waitFor, type Mesh } from './support/mesh'
import { upgrade } from './support/raw-websocket'
import {
  checkLedgers,
  micros,
  readAccount,
  readLedger,
  seededRandom,
  send,
  testSeed,
  type Account,
  type Write,
} from './support/ledger-writes'

const seed = testSeed()
const random = seededRandom(seed)
const accountCount = 6
/** Concurrent writers per node during the mixed phase, and writes each sends. */
const writersPerNode = 3
const writesPerWriter = 20
/** Writes whose replication lag is measured, and the steady rate they are sent at. */
const lagSamples = 100
const lagIntervalMs = 40

const cents = (max: number) => `${1 + Math.floor(random() * max)}.${Math.floor(random() * 100)}`

describe(`three nodes converge (seed ${seed})`, () => {
  let mesh: Mesh
  const accounts: Account[] = []
  const writes: Write[] = []
  const figures: Record<string, number> = {}

  beforeAll(async () => {
    const startedAt = performance.now()
    mesh = await startMesh({ ids: ['a', 'b', 'c'] })
    figures.meshStartMs = Math.round(performance.now() - startedAt)
    figures.initialConvergeMs = await mesh.converge('start')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    console.log(`mesh-converge figures (seed ${seed}): ${JSON.stringify(figures)}`)
    await mesh?.stop()
  })

  it('replicates accounts, keys, deposits and withdrawals written on every node', async () => {
    const [a, b, c] = (['a', 'b', 'c'] as const).map((id) => mesh.client(id)) as [
      ReturnType<Mesh['client']>,
      ReturnType<Mesh['client']>,
      ReturnType<Mesh['client']>,
    ]
    const ids = Array.from({ length: accountCount }, (_, i) => `conv-${i}`)
    for (const accountId of ids) {
      const created = await a.admin('POST', '/v1/admin/accounts', { accountId })
      expect(created.status, JSON.stringify(created.body)).toBe(201)
    }
    // Keys are created on b, so b must first hold the accounts a created.
    figures.accountsToBMs = await mesh.converge('accounts created on a')
    for (const accountId of ids) {
      const key = await b.admin('POST', `/v1/admin/accounts/${accountId}/keys`, {
        scopes: ['read', 'withdraw'],
      })
      expect(key.status, JSON.stringify(key.body)).toBe(201)
      accounts.push({ accountId, key: { keyId: key.body.keyId, secret: key.body.secret } })
    }
    // Initial deposits on every node: escrow lets a node withdraw only within the rights its own
    // deposits gave it, and withdrawals then need the keys everywhere.
    for (const account of accounts) {
      for (const [nodeId, client] of [
        ['a', a],
        ['b', b],
        ['c', c],
      ] as const) {
        const write: Write = {
          kind: 'deposit',
          accountId: account.accountId,
          requestId: `initial-${account.accountId}-${nodeId}`,
          amount: '1000',
        }
        writes.push(write)
        await send(client, account, write)
        expect(write.outcome, `initial deposit: ${write.status}`).toBe('acked')
      }
    }
    figures.keysAndDepositsMs = await mesh.converge('keys on b, deposits everywhere')

    // Every node takes deposits and signed withdrawals at once; withdrawals stay far below each
    // node's rights, so none is refused (escrow is tested in escrow.test.ts).
    const writer = async (nodeId: string, w: number) => {
      const client = mesh.client(nodeId)
      for (let n = 0; n < writesPerWriter; n++) {
        const account = accounts[Math.floor(random() * accounts.length)]!
        const withdrawal = random() < 0.5
        const write: Write = {
          kind: withdrawal ? 'withdrawal' : 'deposit',
          accountId: account.accountId,
          requestId: `${nodeId}${w}-${n}`,
          amount: withdrawal ? cents(5) : cents(50),
        }
        writes.push(write)
        await send(client, account, write)
      }
    }
    const mixedAt = performance.now()
    await Promise.all(
      mesh.ids.flatMap((id) => Array.from({ length: writersPerNode }, (_, w) => writer(id, w))),
    )
    const mixed = writes.filter((write) => !write.requestId.startsWith('initial-'))
    figures.mixedWrites = mixed.length
    figures.mixedWritesPerSecond = Math.round((mixed.length * 1000) / (performance.now() - mixedAt))
    // Nothing was refused or left unanswered: each write was valid on the node it reached.
    expect(
      mixed.filter((write) => write.outcome !== 'acked').map((w) => `${w.requestId}:${w.status}`),
    ).toEqual([])
    figures.mixedConvergeMs = await mesh.converge('mixed writes on a, b, c')

    // Every node holds every acknowledged write, and reads back exactly the same ledgers.
    const views = new Map<string, unknown>()
    for (const id of mesh.ids) {
      const client = mesh.client(id)
      const check = await checkLedgers(client, accounts, writes)
      expect(check.problems, `node ${id}`).toEqual([])
      const view: Record<string, unknown> = {}
      for (const account of accounts) {
        const ledger = await readLedger(client, account)
        const summary = await readAccount(client, account)
        view[account.accountId] = { collateral: summary.collateral, ledger }
        expect(micros(summary.collateral)).toBe(check.balances.get(account.accountId))
      }
      views.set(id, view)
      for (const write of writes.filter((w) => w.kind === 'withdrawal' && w.outcome === 'acked')) {
        const account = accounts.find((x) => x.accountId === write.accountId)!
        const read = await client.signed(account.key, 'GET', `/v1/withdrawals/${write.requestId}`)
        expect(read.status, `${write.requestId} on ${id}`).toBe(200)
        expect(micros(read.body.amount)).toBe(micros(write.amount))
      }
    }
    expect(views.get('b')).toEqual(views.get('a'))
    expect(views.get('c')).toEqual(views.get('a'))
  })

  it('measures replication lag from a 2xx on one node to the read on the next', async () => {
    expect(accounts.length).toBe(accountCount)
    const next = (id: string) => mesh.ids[(mesh.ids.indexOf(id) + 1) % mesh.ids.length]!
    const lags: number[] = []
    const readRtts: number[] = []
    /** Samples already visible on the first read after the 2xx: their lag is below one read. */
    let visibleOnFirstRead = 0
    const pending: Promise<void>[] = []
    const startedAt = performance.now()
    for (let i = 0; i < lagSamples; i++) {
      // A steady rate: sample i leaves at startedAt + i * interval, whatever the others do.
      const due = startedAt + i * lagIntervalMs
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())))
      const from = mesh.ids[i % mesh.ids.length]!
      const to = next(from)
      const account = accounts[i % accounts.length]!
      const write: Write = {
        kind: 'withdrawal',
        accountId: account.accountId,
        requestId: `lag-${i}`,
        amount: '0.01',
      }
      writes.push(write)
      pending.push(
        (async () => {
          await send(mesh.client(from), account, write)
          expect(write.outcome, `lag-${i} on ${from}: ${write.status}`).toBe('acked')
          const ackedAt = performance.now()
          const reader = mesh.client(to)
          let reads = 0
          await waitFor(
            `lag-${i} written on ${from} visible on ${to}`,
            async () => {
              const sentAt = performance.now()
              const read = await reader.signed(account.key, 'GET', `/v1/withdrawals/lag-${i}`)
              readRtts.push(performance.now() - sentAt)
              reads++
              return read.status === 200 ? true : undefined
            },
            { timeoutMs: 10_000, intervalMs: 0 },
          )
          lags.push(performance.now() - ackedAt)
          if (reads === 1) visibleOnFirstRead++
        })(),
      )
    }
    await Promise.all(pending)
    const round = (ms: number) => Math.round(ms * 10) / 10
    figures.lagSamples = lags.length
    figures.lagP50Ms = round(percentile(lags, 50))
    figures.lagP99Ms = round(percentile(lags, 99))
    figures.lagMaxMs = round(percentile(lags, 100))
    figures.readRttP50Ms = round(percentile(readRtts, 50))
    figures.visibleOnFirstRead = visibleOnFirstRead
    console.log(
      `[mesh] replication lag over ${lags.length} withdrawals at ${1000 / lagIntervalMs}/s: ` +
        `p50 ${figures.lagP50Ms} ms, p99 ${figures.lagP99Ms} ms, max ${figures.lagMaxMs} ms ` +
        `(one read round trip: p50 ${figures.readRttP50Ms} ms; ` +
        `${visibleOnFirstRead}/${lags.length} visible on the first read)`,
    )
    expect(lags.length).toBe(lagSamples)
    await mesh.converge('lag writes')
  })

  it('refuses a sync link without a valid mesh token, and a follower write, changing nothing', async () => {
    const before = await Promise.all(mesh.ids.map((id) => mesh.digests(id)))
    const node = mesh.node('c')
    const doc = 'shard/0'
    const syncUrl = (token?: string) =>
      `${node.url()}/v1/mesh/sync/${doc}` +
      (token === undefined ? '' : `?token=${encodeURIComponent(token)}`)
    const expiresAt = Date.now() + 60_000
    const refusals: Record<string, string | undefined> = {
      'no token': undefined,
      'forged signature': `node.a.${expiresAt}.${'0'.repeat(64)}`,
      'signed with another secret': await meshToken.issue(
        'not-the-mesh-secret-0123456789',
        { role: 'node', id: 'a' },
        doc,
        expiresAt,
      ),
      'signed for another document': await meshToken.issue(
        mesh.meshSecret,
        { role: 'node', id: 'a' },
        'shard/1',
        expiresAt,
      ),
      expired: await meshToken.issue(
        mesh.meshSecret,
        { role: 'node', id: 'a' },
        doc,
        Date.now() - 1_000,
      ),
      malformed: 'node.a',
    }
    for (const [what, token] of Object.entries(refusals)) {
      const answer = await upgrade(syncUrl(token))
      expect(answer.status, what).toBe(401)
      const body = JSON.parse(answer.body ?? 'null')
      expect(body?.error?.code, what).toBe(
        what === 'expired' ? 'expired_mesh_token' : 'invalid_mesh_token',
      )
    }

    // A follower holds a valid token: it is let in and sent the state, but whatever it sends to
    // write is refused by closing the link.
    const followerToken = await meshToken.issue(
      mesh.meshSecret,
      { role: 'follower', id: 'backup' },
      doc,
      expiresAt,
    )
    const follower = await upgrade(syncUrl(followerToken))
    expect(follower.status).toBe(101)
    if (follower.body !== undefined) throw new Error('expected an open socket')
    const socket = follower.socket
    // The node opens with its SyncStep1.
    await waitFor('the node greets the follower', async () =>
      socket.messages.some((m) => protocol.readFrame(m).type === 'sync_step1') ? true : undefined,
    )
    const evil = new Y.Doc()
    evil.getMap('accounts').set('mallory', { accountId: 'mallory', createdAt: Date.now() })
    socket.sendBinary(protocol.writeUpdate(Y.encodeStateAsUpdate(evil)))
    const close = await Promise.race([
      socket.closed,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the link stayed open')), 10_000),
      ),
    ])
    expect(close.code).toBe(1008)
    socket.destroy()

    const after = await Promise.all(mesh.ids.map((id) => mesh.digests(id)))
    const digestsOf = (views: typeof before) =>
      views.map((view) =>
        [...view.values()].map((d) => [d.doc, d.stateVectorDigest, d.contentDigest, d.pending]),
      )
    expect(digestsOf(after)).toEqual(digestsOf(before))
  })
})
