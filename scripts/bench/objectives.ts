// Recovery objectives (docs/recovery.md): RTO and RPO of a node destroyed on a 2-node mesh (a, b;
// one shard, so each size is one document; links through TCP proxies so b can be cut off).
//
//   npx tsx scripts/bench/objectives.ts --sizes 1,10,50 --runs 3 [--out FILE]
//
// For each size the shard is grown on a (scripts/bench/seed.ts), a snapshot of b is exported, 200
// deposits more go to a, and a backup follower (scripts/lib/backup-follower.ts) catches up on b.
// RTO, run by run, from spawning a wiped b to b holding every clock of a's state (a follower on b
// sees the moment b made it durable; a wiped b serves reads from the start, so holding is serving):
//   peers     b wiped and started, catching up from a alone;
//   snapshot  b cut off, wiped, restored from the snapshot, healed: a fills in what came after;
//   follower  b cut off, wiped, restored from the follower's files, healed.
// RPO, at the first size (--rpo-runs times, default --runs): deposits at b, 8 at a time, with durability `local` or `quorum`; 1.5 s
// in, b is wiped under the load (SIGKILL, folder deleted, started empty); once b has caught up
// from a, the deposits b acknowledged that no node holds are lost; then the follower's files are
// restored into b and they are counted again.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startMesh, type Mesh } from '../../test/nodes/support/mesh'
import { transfers } from '../../src/state/shard-doc'
import { snapshotOfFolder, startBackupFollower } from '../lib/backup-follower'
import { integerOption, parseOptions, runMain } from '../lib/cli'
import { covers, follow } from '../lib/follower'
import { exportSnapshot, nodeDocuments, restoreSnapshot, type SnapshotFile } from '../lib/snapshot'
import { cell, epochMs, figure, log, sleep } from './harness'
import { meshClients } from './lag'
import { buildSeed, pushSeed } from './seed'
import { agreed } from './setup'

const usage = `usage: npx tsx scripts/bench/objectives.ts [--sizes 1,10,50] [--runs 3] [--rpo-runs 3] [--out FILE]`
const rebuildTimeoutMs = 600_000
const deltaDeposits = 200
const loadWorkers = 8
const wipeAfterMs = 1_500

type Method = 'peers' | 'snapshot' | 'follower'
/** One rebuild: spawn to full state, spawn to serving, and the restore's own ms (0 for peers). */
type Rebuild = { fullMs: number; servingMs: number; restoreMs: number }
type SizeResult = {
  megabytes: number
  encodedBytes: number
  rto: Record<Method, Rebuild[]>
  /** Why the snapshot method did not run (its export failed), if it did not. */
  snapshotFailure?: string
}
type RpoResult = { durability: string; acked: number; lostPeers: number; lostFollower: number }

/** Deposits of 1.25 to `accountId` at node `id`, `concurrency` at a time; the acknowledged ids. */
async function deposits(
  mesh: Mesh,
  id: string,
  accountId: string,
  tag: string,
  options: { count?: number; durability?: string; until?: () => boolean },
): Promise<string[]> {
  const acked: string[] = []
  let next = 0
  const more = () => (options.count === undefined ? !options.until!() : next < options.count)
  await Promise.all(
    Array.from({ length: loadWorkers }, async () => {
      while (more()) {
        const depositId = `${tag}-${next++}`
        const body = { depositId, accountId, asset: 'USD', amount: '1.25', signedAt: Date.now() }
        const durability =
          options.durability === undefined ? {} : { durability: options.durability }
        const reply = await mesh
          .client(id)
          .admin('POST', '/v1/admin/deposits', { ...body, ...durability })
          .catch(() => undefined)
        if (reply !== undefined && reply.status >= 200 && reply.status < 300)
          acked.push(`deposit/${accountId}/${depositId}`)
        else if (reply === undefined) await sleep(50) // the node is down: do not spin
      }
    }),
  )
  return acked
}

/** What node `id` holds of shard 0, read whole over a follower link. */
async function shardOf(mesh: Mesh, id: string) {
  const follower = await follow(id, mesh.node(id).url(), mesh.meshSecret, 'shard/0', {
    timeoutMs: rebuildTimeoutMs,
  })
  // Give the catch-up pieces after the first SyncStep2 time to arrive.
  await sleep(1_000)
  follower.close()
  return follower
}

/** Resolves with when b first holds every clock of `target`. */
async function heldAt(mesh: Mesh, target: Map<number, number>): Promise<number> {
  let at: number | undefined
  const follower = await follow('b', mesh.node('b').url(), mesh.meshSecret, 'shard/0', {
    timeoutMs: rebuildTimeoutMs,
    onUpdate: (_update, arrived, self) => {
      if (at === undefined && covers(self.stateVector(), target)) at = arrived
    },
  })
  if (covers(follower.stateVector(), target)) at ??= epochMs()
  const deadline = performance.now() + rebuildTimeoutMs
  while (at === undefined && performance.now() < deadline) await sleep(20)
  follower.close()
  if (at === undefined) throw new Error(`b not rebuilt within ${rebuildTimeoutMs} ms`)
  return at
}

/** Spawn of a wiped b to b holding `target`, rebuilt by `method`. */
async function rtoRun(
  mesh: Mesh,
  method: Method,
  target: Map<number, number>,
  restoreFrom: () => Promise<SnapshotFile>,
): Promise<Rebuild> {
  const b = mesh.node('b')
  if (method !== 'peers') mesh.isolate('b')
  const spawnedAt = epochMs() // b.wipe() kills, deletes and spawns in one
  const servingMs = await b.wipe()
  let restoreMs = 0
  if (method !== 'peers') {
    const file = await restoreFrom()
    const restoreStart = epochMs()
    await restoreSnapshot(b.url(), mesh.adminToken, file)
    restoreMs = epochMs() - restoreStart
    mesh.healAll()
  }
  const fullMs = (await heldAt(mesh, target)) - spawnedAt
  await agreed(meshClients(mesh), rebuildTimeoutMs, 500)
  return { fullMs, servingMs, restoreMs }
}

/** Follows b into `folder` until every document is synced and no clock behind; then stops. */
async function followerFiles(mesh: Mesh, folder: string) {
  const { nodeId, names } = await nodeDocuments(mesh.node('b').url(), mesh.adminToken)
  const follower = await startBackupFollower({
    node: mesh.node('b').url(),
    folder,
    meshSecret: mesh.meshSecret,
    nodeId,
    documents: names,
    id: 'bench',
    onFailure: (error) => log(`follower failed: ${String(error)}`),
  })
  const caughtUp = () => follower.documents.every((d) => d.provider.synced && d.lag() === 0)
  const deadline = performance.now() + rebuildTimeoutMs
  while (!caughtUp() && performance.now() < deadline) await sleep(100)
  await sleep(1_000) // live updates after the first catch-up
  return follower
}

/** Grows the shard to `megabytes`, then times every method `runs` times. */
async function sizeRuns(
  mesh: Mesh,
  megabytes: number,
  grownFrom: number,
  runs: number,
  folder: string,
): Promise<SizeResult> {
  const seed = buildSeed(megabytes - grownFrom, 'a', `s${megabytes}`, mesh.operatorSigningKey)
  await pushSeed(mesh.node('a').url(), mesh.meshSecret, 'shard/0', seed, rebuildTimeoutMs)
  await agreed(meshClients(mesh), rebuildTimeoutMs, 1_000)
  const snapshot = await exportSnapshot(mesh.node('b').url(), mesh.adminToken).catch(
    (error: Error) => error,
  )
  await deposits(mesh, 'a', `s${megabytes}-0`, `delta-${megabytes}`, { count: deltaDeposits })
  await agreed(meshClients(mesh), rebuildTimeoutMs, 1_000)
  const target = (await shardOf(mesh, 'a')).stateVector()
  const files = join(folder, `follower-${megabytes}`)
  await (await followerFiles(mesh, files)).stop()
  const fromFollower = await snapshotOfFolder(files)
  const result: SizeResult = {
    megabytes,
    encodedBytes: seed.encodedBytes,
    rto: { peers: [], snapshot: [], follower: [] },
    ...(snapshot instanceof Error && { snapshotFailure: snapshot.message.slice(0, 80) }),
  }
  for (let i = 0; i < runs; i++) {
    for (const method of ['peers', 'snapshot', 'follower'] as const) {
      if (method === 'snapshot' && snapshot instanceof Error) continue
      const rebuild = await rtoRun(mesh, method, target, async () =>
        method === 'snapshot' && !(snapshot instanceof Error) ? snapshot : fromFollower,
      )
      result.rto[method].push(rebuild)
      log(
        `objectives ${megabytes} MB run ${i + 1} ${method}: full state ${rebuild.fullMs.toFixed(0)} ms ` +
          `(serving ${rebuild.servingMs.toFixed(0)} ms, restore ${rebuild.restoreMs.toFixed(0)} ms)`,
      )
    }
  }
  return result
}

/** Deposits at b under `durability`, b wiped under the load; acknowledged deposits lost. */
async function rpoRun(
  mesh: Mesh,
  durability: string,
  accountId: string,
  tag: string,
  folder: string,
): Promise<RpoResult> {
  const follower = await followerFiles(mesh, folder)
  let wiped = false
  const load = deposits(mesh, 'b', accountId, tag, { durability, until: () => wiped })
  await sleep(wipeAfterMs)
  await mesh.node('b').wipe()
  wiped = true
  const acked = await load
  await follower.stop()
  await agreed(meshClients(mesh), rebuildTimeoutMs, 500)
  const missing = async () => {
    const held = transfers((await shardOf(mesh, 'a')).ydoc)
    return acked.filter((id) => !held.has(id)).length
  }
  const lostPeers = await missing()
  await restoreSnapshot(mesh.node('b').url(), mesh.adminToken, await snapshotOfFolder(folder))
  await agreed(meshClients(mesh), rebuildTimeoutMs, 500)
  const lostFollower = await missing()
  log(`objectives RPO ${durability}: ${acked.length} acked, lost ${lostPeers} / ${lostFollower}`)
  return { durability, acked: acked.length, lostPeers, lostFollower }
}

function rtoCell(rebuilds: Rebuild[]): string {
  const of = (pick: (rebuild: Rebuild) => number) => figure(rebuilds.map(pick), 'ms', 0)
  const serving = of((r) => r.servingMs).median
  const restore = of((r) => r.restoreMs).median
  return `${cell(of((r) => r.fullMs))} [${serving} / ${restore}]`
}

function report(sizes: SizeResult[], rpo: RpoResult[], runs: number): string {
  const lines = [
    `RTO: spawn of a wiped b to b holding all of a's state, ms, median (min–max) of ${runs};`,
    'in brackets the medians of spawn to serving and of the restore itself',
    '',
    '| shard | encoded MB | from peers | snapshot + peers | follower |',
    '| --- | --- | --- | --- | --- |',
    ...sizes.map(
      (size) =>
        `| ${size.megabytes} MB | ${(size.encodedBytes / 1e6).toFixed(1)} | ` +
        (['peers', 'snapshot', 'follower'] as const)
          .map((method) =>
            method === 'snapshot' && size.snapshotFailure !== undefined
              ? `export failed: ${size.snapshotFailure}`
              : rtoCell(size.rto[method]),
          )
          .join(' | ') +
        ' |',
    ),
    '',
    'RPO: deposits acknowledged by b, b wiped under the load; lost = acknowledged, held by no node',
    '',
    '| durability | acknowledged | lost (peers) | lost (peers + follower) |',
    '| --- | --- | --- | --- |',
    ...rpo.map((r) => `| ${r.durability} | ${r.acked} | ${r.lostPeers} | ${r.lostFollower} |`),
  ]
  return lines.join('\n')
}

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv, {
    sizes: { type: 'string', default: '1,10,50' },
    runs: { type: 'string', default: '3' },
    'rpo-runs': { type: 'string' },
    out: { type: 'string' },
  })
  const sizes = options.sizes.split(',').map((text) => integerOption('--sizes', text, 1, 100))
  const runs = integerOption('--runs', options.runs, 1, 20)
  const rpoRuns = integerOption('--rpo-runs', options['rpo-runs'] ?? options.runs, 0, 20)
  const folder = await mkdtemp(join(tmpdir(), 'clearmesh-objectives-'))
  const mesh = await startMesh({ ids: ['a', 'b'], shards: 1, proxied: true })
  const results: SizeResult[] = []
  const rpo: RpoResult[] = []
  try {
    await agreed(meshClients(mesh), 60_000)
    let grown = 0
    for (const megabytes of sizes) {
      results.push(await sizeRuns(mesh, megabytes, grown, runs, folder))
      grown = megabytes
      if (megabytes !== sizes[0]) continue
      for (const durability of ['local', 'quorum']) {
        for (let i = 0; i < rpoRuns; i++) {
          const tag = `rpo-${durability}-${i}`
          rpo.push(await rpoRun(mesh, durability, `s${megabytes}-1`, tag, join(folder, tag)))
        }
      }
    }
  } finally {
    await mesh.stop()
    await rm(folder, { recursive: true, force: true })
  }
  const text = report(results, rpo, runs)
  console.log(text)
  if (options.out !== undefined) {
    await writeFile(options.out, JSON.stringify({ runs, sizes: results, rpo }, null, 2))
  }
  return 0
}

runMain('objectives', usage, main)
