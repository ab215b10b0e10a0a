// The backup follower (`npm run follow`) against a proxied 3-node mesh, run as an operator runs
// it, in its own process: it follows node b into a folder. Every deposit acknowledged before and
// while it was stopped ends in its files once it is back; killed with SIGKILL while writes pour
// in, its files load (a torn tail at most, cut off on restart) and it catches up. Then b is wiped
// while cut off from its peers and rebuilt from the follower's files alone: it serves every
// acknowledged deposit with exact balances; until it has caught up from its peers it answers an
// account it lacks 503 `shard_syncing`, not a definite 404. A follower without the mesh secret
// holds nothing.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { loadDocument, storedDocuments } from '../../scripts/lib/backup-store'
import { contentDigest } from '../../src/state/digest'
import { transfers } from '../../src/state/shard-doc'
import {
  checkLedgers,
  entryId,
  micros,
  send,
  type Account,
  type Write,
} from './support/ledger-writes'
import { startMesh, waitFor, type Mesh } from './support/mesh'

const run = promisify(execFile)
const accountCount = 3
const depositsPerPhase = 12

type Follower = { process: ChildProcess; output: () => string; exited: Promise<number | null> }

describe('a backup follower of node b, and b rebuilt from it alone', () => {
  let mesh: Mesh
  let folder: string
  const accounts: Account[] = []
  const writes: Write[] = []
  const followers: Follower[] = []

  /** `npm run follow -- <args>` in its own process (node + tsx, so a signal reaches it). */
  function startFollower(args: string[], env: Record<string, string> = {}): Follower {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/follow.ts', ...args], {
      env: { ...process.env, CLEARMESH_ADMIN_TOKEN: mesh.adminToken, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout!.on('data', (data) => (output += data))
    child.stderr!.on('data', (data) => (output += data))
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
    const follower = { process: child, output: () => output, exited }
    followers.push(follower)
    return follower
  }

  const followB = () =>
    startFollower(['--node', mesh.node('b').url(), '--out', folder], {
      CLEARMESH_MESH_SECRET: mesh.meshSecret,
    })

  async function deposits(phase: string, count = depositsPerPhase, concurrency = 1) {
    let next = 0
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const i = next++
          const account = accounts[i % accountCount]!
          const write: Write = {
            kind: 'deposit',
            accountId: account.accountId,
            requestId: `${phase}-${i}`,
            amount: `${i + 1}.25`,
          }
          await send(mesh.client(i % 2 === 0 ? 'a' : 'b'), account, write)
          expect(write.outcome, JSON.stringify(write)).toBe('acked')
          writes.push(write)
        }
      }),
    )
  }

  /** The folder's documents, loaded as an export reads them (nothing written). */
  async function filesOf(dir: string) {
    const loaded = []
    for (const doc of await storedDocuments(dir)) {
      loaded.push(await loadDocument(dir, doc, { repair: false }))
    }
    return loaded
  }

  /** Waits until the follower's files hold exactly what node b holds, document by document. */
  const caughtUp = (what: string) =>
    waitFor(
      what,
      async () => {
        const held = new Map((await filesOf(folder)).map((d) => [d.doc, contentDigest(d.ydoc)]))
        const node = await mesh.digests('b')
        const same = [...node].every(([doc, digest]) => held.get(doc) === digest.contentDigest)
        return same && held.size === node.size ? true : undefined
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    )

  const unknownAccountDeposit = () =>
    mesh.client('b').admin('POST', '/v1/admin/deposits', {
      depositId: 'to-nobody',
      accountId: 'nobody',
      asset: 'USD',
      amount: '1',
      signedAt: Date.now(),
    })

  /** Every acknowledged write's ledger entry is in one of the follower's shard documents. */
  async function missingFromFiles(): Promise<string[]> {
    const ids = new Set<string>()
    for (const { doc, ydoc } of await filesOf(folder)) {
      if (doc.startsWith('shard/')) for (const id of transfers(ydoc).keys()) ids.add(id)
    }
    return writes.map(entryId).filter((id) => !ids.has(id))
  }

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'clearmesh-follower-'))
    mesh = await startMesh({ ids: ['a', 'b', 'c'], proxied: true })
    for (let i = 0; i < accountCount; i++) {
      const key = await mesh.client('a').fundedAccount(`backup-${i}`, '0', ['read'])
      accounts.push({ accountId: `backup-${i}`, key })
    }
  })

  afterEach((context) => {
    if (context.task.result?.state !== 'fail') return
    console.log(`follower output:\n${followers.map((f) => f.output()).join('\n---\n')}`)
    console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    for (const follower of followers) follower.process.kill('SIGKILL')
    await mesh?.stop()
    await rm(folder, { recursive: true, force: true })
  })

  it('holds every write acknowledged before and while it was stopped', async () => {
    const first = followB()
    await deposits('before')
    await caughtUp('the follower holds what b holds')
    first.process.kill('SIGTERM')
    expect(await first.exited).toBe(0)
    expect(first.output()).toMatch(/follow: stopped; node b: 18\/18 synced/)

    await deposits('stopped')
    followB()
    await caughtUp('the restarted follower caught up')
    expect(await missingFromFiles()).toEqual([])
  })

  it('loads after a SIGKILL mid-write, and catches up once restarted', async () => {
    const pouring = deposits('killed', 40, 4)
    const killedPhase = () => writes.filter((write) => write.requestId.startsWith('killed-'))
    await waitFor('the follower wrote some of the new deposits', async () => {
      const missing = new Set(await missingFromFiles())
      return killedPhase().some((write) => !missing.has(entryId(write))) ? true : undefined
    })
    const running = followers.at(-1)!
    running.process.kill('SIGKILL')
    await running.exited
    await pouring
    // Whatever the kill cut, every document still loads: whole records, a torn tail at most.
    const afterKill = await filesOf(folder)
    expect(afterKill.length).toBe(18)

    followB()
    await caughtUp('the follower restarted after SIGKILL caught up')
    expect(await missingFromFiles()).toEqual([])
    for (const loaded of await filesOf(folder)) expect(loaded.tornBytes, loaded.doc).toBe(0)
  })

  it('rebuilds a wiped, cut-off b from its files alone: every acknowledged deposit, exact', async () => {
    await mesh.converge('before the wipe')
    await caughtUp('the follower holds what b holds before the wipe')
    const running = followers.at(-1)!
    running.process.kill('SIGTERM')
    expect(await running.exited).toBe(0)
    const b = mesh.node('b')
    mesh.isolate('b')
    await b.wipe()
    // Wiped and cut off, b has caught up from no peer: an account it lacks may exist elsewhere.
    const unsure = await unknownAccountDeposit()
    expect(unsure.status).toBe(503)
    expect(unsure.body.error).toMatchObject({ code: 'shard_syncing', retryable: true })
    const restored = await run(
      process.execPath,
      ['--import', 'tsx', 'scripts/follow.ts', 'restore', '--out', folder, '--node', b.url()],
      { env: { ...process.env, CLEARMESH_ADMIN_TOKEN: mesh.adminToken }, timeout: 60_000 },
    )
    expect(restored.stdout).toMatch(/^18 documents of node b's replica restored into /)
    const alone = await checkLedgers(mesh.client('b'), accounts, writes)
    expect(alone.problems).toEqual([])
    const sent = new Map<string, bigint>()
    for (const write of writes) {
      sent.set(write.accountId, (sent.get(write.accountId) ?? 0n) + micros(write.amount))
    }
    expect(alone.balances).toEqual(sent)

    mesh.healAll()
    await mesh.converge('after the rebuild and heal', { timeoutMs: 60_000 })
    // Caught up from its peers, b's answer for an account nobody holds is definite again.
    await waitFor('b answers 404 for an unknown account', async () => {
      const reply = await unknownAccountDeposit()
      return reply.status === 404 && reply.body.error.code === 'account_not_found'
        ? true
        : undefined
    })
  })

  it('gives nothing to a follower without the mesh secret, nor one without the admin token', async () => {
    const intruderFolder = await mkdtemp(join(tmpdir(), 'clearmesh-intruder-'))
    try {
      const intruder = startFollower(['--node', mesh.node('a').url(), '--out', intruderFolder], {
        CLEARMESH_MESH_SECRET: 'not-the-mesh-secret-at-all',
      })
      await waitFor('the intruder dialled every document', async () =>
        (await storedDocuments(intruderFolder)).length === 18 ? true : undefined,
      )
      await new Promise((resolve) => setTimeout(resolve, 3_000)) // refused, redialled, refused
      intruder.process.kill('SIGTERM')
      expect(await intruder.exited).toBe(0)
      expect(intruder.output()).toMatch(/node a: 0\/18 synced, 0 connected, 0\.00 MB on disk/)
      for (const loaded of await filesOf(intruderFolder)) {
        expect(loaded.ydoc.store.clients.size, loaded.doc).toBe(0)
      }

      const noAdmin = startFollower(['--node', mesh.node('a').url(), '--out', intruderFolder], {
        CLEARMESH_ADMIN_TOKEN: 'not-the-admin-token',
        CLEARMESH_MESH_SECRET: mesh.meshSecret,
      })
      expect(await noAdmin.exited).toBe(1)
      expect(noAdmin.output()).toMatch(/GET \/v1\/mesh\/status: 401/)
    } finally {
      await rm(intruderFolder, { recursive: true, force: true })
    }
  })
})
