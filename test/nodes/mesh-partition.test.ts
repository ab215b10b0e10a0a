// F2 (one node isolated) on real sockets: three nodes whose links all run through TCP proxies. c is
// cut off at the proxies (open connections reset, new ones refused); both sides keep serving
// deposits and signed withdrawals, to accounts of their own and to one account both sides draw on
// (together within its balance). While cut, neither side sees the other's writes. After the heal
// every node converges (I1) with no acknowledged write lost (I2) and no request id doubled (I3).
// A second cut leaves each side with more than 128 KiB of one shard the other lacks: the heal's
// catch-up update is then larger than one stored log row, and must still converge.
// Peer liveness is per node: at the heal, the first of a node's links to c that redials on its
// own backoff makes every other document's link to c redial at once (a prompt), so all come back
// long before the slowest backoff (5 s at its cap) would have fired.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { unlimitedRate } from '../support/api-client'
import { depositAt } from './support/funding'
import { bulkDeposits, dialledLinks, startMesh, waitFor, type Mesh } from './support/mesh'
import {
  checkLedgers,
  checkShards,
  micros,
  readAccount,
  seededRandom,
  send,
  testSeed,
  type Account,
  type Write,
} from './support/ledger-writes'

const seed = testSeed()
const random = seededRandom(seed)
/**
 * How long both sides keep writing while c is isolated: longer than the heartbeat timeout (5 s) and
 * the redial backoff ceiling (5 s), so the heal finds links that gave up and backed off.
 */
const cutWritingMs = 6_000
/** Deposits to one account on each side of a second cut: ~175 KB of updates per shard. */
const backlogDeposits = 400

const cents = (max: number) => `${1 + Math.floor(random() * max)}.${Math.floor(random() * 100)}`

describe(`an isolated node keeps serving and converges after the heal (seed ${seed})`, () => {
  let mesh: Mesh
  const accounts = new Map<string, Account>()
  const writes: Write[] = []
  const figures: Record<string, number> = {}

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b', 'c'], proxied: true })
    await mesh.converge('start')
    // ab-*: written only by a and b; c-*: only by c; shared: both sides withdraw from it.
    // Escrow (I4): a node withdraws only within the rights its own deposits (or grants) gave it,
    // so each account is funded at every node that withdraws from it. The shared account holds
    // more than both sides can withdraw from it during the cut.
    const funding: Record<string, Record<string, string>> = {
      'ab-0': { a: '500', b: '500' },
      'ab-1': { a: '500', b: '500' },
      'c-0': { c: '1000' },
      'c-1': { c: '1000' },
      shared: { a: '50000', b: '25000', c: '25000' },
    }
    for (const [accountId, byNode] of Object.entries(funding)) {
      // The checks below read every write on every node with these keys, faster than a client's
      // rate limit allows: they are the test's eyes, not clients.
      const key = await mesh
        .client('a')
        .fundedAccount(accountId, '0', ['read', 'withdraw'], unlimitedRate)
      accounts.set(accountId, { accountId, key })
      for (const [node, amount] of Object.entries(byNode)) {
        writes.push(
          await depositAt(mesh, node, { accountId, key }, amount, `initial-${accountId}-${node}`),
        )
      }
    }
    await mesh.converge('accounts')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    console.log(`mesh-partition figures (seed ${seed}): ${JSON.stringify(figures)}`)
    await mesh?.stop()
  })

  /** Links of `id`'s documents that are up, as `doc:peer`. */
  const upLinks = async (id: string) =>
    [...(await mesh.digests(id)).values()].flatMap((doc) =>
      doc.links.filter((link) => link.state === 'up').map((link) => `${doc.doc}:${link.peer}`),
    )

  /** Cuts c off at the proxies and waits until both sides noticed. */
  const isolateC = async () => {
    mesh.isolate('c')
    // c has no link left, and a and b none to c.
    await waitFor('c has no link up', async () =>
      (await upLinks('c')).length === 0 ? true : undefined,
    )
    for (const id of ['a', 'b']) {
      await waitFor(`${id} has no link to c up`, async () =>
        (await upLinks(id)).some((link) => link.endsWith(':c')) ? undefined : true,
      )
    }
  }

  it('serves writes on both sides of the cut and loses none at the heal', async () => {
    const cutAt = performance.now()
    await isolateC()
    figures.cutSeenMs = Math.round(performance.now() - cutAt)

    // Each side: deposits and withdrawals to its own accounts, and small withdrawals from the
    // shared one; the shared account's withdrawals on both sides together stay within its balance.
    const until = performance.now() + cutWritingMs
    const writer = async (nodeId: string, w: number, own: string[]) => {
      const client = mesh.client(nodeId)
      for (let n = 0; performance.now() < until; n++) {
        const shared = random() < 0.3
        const account = accounts.get(shared ? 'shared' : own[n % own.length]!)!
        const withdrawal = shared || random() < 0.5
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
    await Promise.all([
      writer('a', 0, ['ab-0', 'ab-1']),
      writer('b', 0, ['ab-1', 'ab-0']),
      writer('c', 0, ['c-0', 'c-1']),
      writer('c', 1, ['c-1', 'c-0']),
    ])
    const during = writes.filter((write) => !write.requestId.startsWith('initial-'))
    expect(
      during.filter((w) => w.outcome !== 'acked').map((w) => `${w.requestId}:${w.status}`),
    ).toEqual([])
    figures.writesDuringCut = during.length

    // The cut is real: a and b agree with each other, c holds none of their writes and they none
    // of c's.
    await mesh.converge('a and b during the cut', { among: ['a', 'b'] })
    const sharedAccount = accounts.get('shared')!
    for (const write of during.filter((w) => w.kind === 'withdrawal')) {
      const account = accounts.get(write.accountId)!
      const elsewhere = write.requestId.startsWith('c') ? ['a', 'b'] : ['c']
      for (const id of elsewhere) {
        const read = await mesh
          .client(id)
          .signed(account.key, 'GET', `/v1/withdrawals/${write.requestId}`)
        expect(read.status, `${write.requestId} seen on ${id} during the cut`).toBe(404)
      }
    }
    const sharedOn = async (id: string) =>
      (await readAccount(mesh.client(id), sharedAccount)).collateral
    expect(await sharedOn('c')).not.toBe(await sharedOn('a'))
    const stats = ['a', 'b'].map((id) => mesh.proxy(id, 'c').stats())
    figures.refusedWhileCut = stats.reduce((n, s) => n + s.refused, 0)

    // Every document's link from a and from b to c is down, and has backed off.
    const before = new Map<string, Awaited<ReturnType<typeof dialledLinks>>>()
    for (const id of ['a', 'b']) {
      const links = await dialledLinks(mesh, id, 'c')
      expect(links.filter((link) => link.state !== 'down').map((link) => link.doc)).toEqual([])
      before.set(id, links)
    }
    const healedAt = performance.now()
    mesh.healAll()
    for (const id of ['a', 'b']) {
      const links = await waitFor(`every link from ${id} to c up`, async () => {
        const now = await dialledLinks(mesh, id, 'c')
        return now.every((link) => link.state === 'up') ? now : undefined
      })
      figures[`${id}AllLinksUpAfterHealMs`] = Math.round(performance.now() - healedAt)
      // Links came back on a prompt, not each on its own backoff (the figures say how many; how
      // many found the peer by themselves first depends on timing, so only the mechanism is
      // asserted, and the time to all links up is measured by the bench, not here).
      const prompted = links.filter(
        (link, i) => link.prompted > before.get(id)![i]!.prompted,
      ).length
      figures[`${id}PromptedLinks`] = prompted
      expect(prompted, `links of ${id} brought back by a prompt`).toBeGreaterThan(0)
    }
    figures.convergeAfterHealMs = await mesh.converge('heal', { timeoutMs: 30_000 })
    figures.partitionMs = Math.round(healedAt - cutAt)
    console.log(
      `[mesh] c isolated for ${figures.partitionMs} ms (${figures.writesDuringCut} writes); ` +
        `converged ${figures.convergeAfterHealMs} ms after the heal`,
    )

    // Every node holds every acknowledged write and the same ledgers and balances.
    const found = new Map<string, string[]>()
    for (const id of mesh.ids) {
      const client = mesh.client(id)
      expect((await checkShards(client)).problems, `node ${id}`).toEqual([])
      const check = await checkLedgers(client, [...accounts.values()], writes)
      expect(check.problems, `node ${id}`).toEqual([])
      found.set(id, check.presentIds.sort())
      for (const write of writes.filter((w) => w.kind === 'withdrawal' && w.outcome === 'acked')) {
        const account = accounts.get(write.accountId)!
        const read = await client.signed(account.key, 'GET', `/v1/withdrawals/${write.requestId}`)
        expect(read.status, `${write.requestId} on ${id}`).toBe(200)
        expect(micros(read.body.amount)).toBe(micros(write.amount))
      }
    }
    expect(found.get('b')).toEqual(found.get('a'))
    expect(found.get('c')).toEqual(found.get('a'))
    for (const account of accounts.values()) {
      const collateral = await Promise.all(
        mesh.ids.map(async (id) => (await readAccount(mesh.client(id), account)).collateral),
      )
      expect(new Set(collateral).size, `${account.accountId}: ${collateral.join(' ')}`).toBe(1)
    }

    // A request id acknowledged on c during the cut, retried on a after the heal, replays.
    const fromC = writes.find((w) => w.requestId.startsWith('c') && w.kind === 'withdrawal')
    if (fromC !== undefined) {
      const retry: Write = { ...fromC, outcome: undefined }
      const reply = await send(mesh.client('a'), accounts.get(fromC.accountId)!, retry)
      expect(reply?.status).toBe(201)
      expect(reply?.headers.get('Idempotent-Replayed')).toBe('true')
    }
  })
  it('converges after a cut whose backlog on each side exceeds one stored value (128 KiB)', async () => {
    // One account per side, with ids such that each deposit id reaches the 64-character limit.
    const ids = { ab: 'bulk-ab-'.padEnd(56, 'a'), c: 'bulk-c-'.padEnd(56, 'c') }
    const bulk: Account[] = []
    for (const accountId of Object.values(ids)) {
      const key = await mesh.client('a').fundedAccount(accountId, '1', ['read'])
      bulk.push({ accountId, key })
      writes.push({
        kind: 'deposit',
        accountId,
        requestId: `initial-${accountId}`,
        amount: '1',
        outcome: 'acked',
      })
    }
    await mesh.converge('bulk accounts')
    const cutAt = performance.now()
    await isolateC()
    // Each side writes ~175 KB into one shard the other side lacks: each heal catch-up update is
    // larger than the 128 KiB a node stores as one log row.
    const [onA, onC] = await Promise.all([
      bulkDeposits(mesh.client('a'), ids.ab, backlogDeposits, 'ab'),
      bulkDeposits(mesh.client('c'), ids.c, backlogDeposits, 'c'),
    ])
    writes.push(...onA, ...onC)
    expect([...onA, ...onC].filter((w) => w.outcome !== 'acked').map((w) => w.status)).toEqual([])
    const healedAt = performance.now()
    mesh.healAll()
    figures.backlogPartitionMs = Math.round(healedAt - cutAt)
    figures.backlogConvergeAfterHealMs = await mesh.converge('heal after a backlog over 128 KiB', {
      timeoutMs: 20_000,
    })
    for (const id of mesh.ids) {
      const check = await checkLedgers(mesh.client(id), bulk, writes)
      expect(check.problems, `node ${id}`).toEqual([])
    }
  })
})
