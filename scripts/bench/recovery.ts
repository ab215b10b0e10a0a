// Item 5 of the benchmarks issue: recovery against the size of a shard document. Two real nodes
// (a, b; one shard, so every entry lands in one document; direct links). Before any data, and
// after the document is grown to each size (scripts/bench/seed.ts, handed to a as a peer would),
// the suite measures, run by run:
//   - restart to serving: SIGKILL a, start it again from its folder, spawn to its ready line (the
//     runner prints it once the Worker answers and every replica is loaded), and the resident
//     memory of its workerd then, against the encoded size of the document;
//   - rebuild of a wiped node: SIGKILL b, delete its folder, start it empty with the same secrets
//     and peers; spawn to serving, and spawn to holding everything a holds (a follower on b sees
//     the moment b made the catch-up durable), and the bytes b's links took in.

import { startMesh, type Mesh } from '../../test/nodes/support/mesh'
import { covers, follow, unionOf } from '../lib/follower'
import { workerdRss } from '../lib/process-memory'
import type { Options, SectionResult } from './context'
import { cell, epochMs, figure, log, sleep } from './harness'
import { meshClients } from './lag'
import { buildSeed, pushSeed, type Seed } from './seed'
import { agreed, linkBytesIn, meshStatus } from './setup'

type SizeRun = {
  megabytes: number
  encodedBytes: number
  storedBytes: number
  entries: number
  restartMs: number[]
  rssBytes: number[]
  wipeReadyMs: number[]
  wipeRebuiltMs: number[]
  /** Spawn to a's link to b up (a redials b on its backoff). */
  wipeLinkUpMs: number[]
  wipeBytes: number[]
  /** One GET /v1/mesh/status on a: it digests every document's content on every call. */
  statusMs: number
  failure?: string
}

/** A size's run before its restarts and wipes: what node a holds and how fast it reports it. */
async function sizeRun(
  mesh: Mesh,
  size: Pick<SizeRun, 'megabytes' | 'encodedBytes' | 'entries'>,
): Promise<SizeRun> {
  return {
    ...size,
    storedBytes: await storedBytes(mesh, 'a'),
    restartMs: [],
    rssBytes: [],
    wipeReadyMs: [],
    wipeRebuiltMs: [],
    wipeLinkUpMs: [],
    wipeBytes: [],
    statusMs: await statusMs(mesh, 'a'),
  }
}

async function storedBytes(mesh: Mesh, id: string): Promise<number> {
  const reply = await mesh.client(id).admin('GET', '/v1/admin/shards')
  if (reply.status !== 200) throw new Error(`shards: ${reply.status}`)
  return (reply.body.shards as any[]).reduce(
    (sum, shard) => sum + shard.storage.logBytes + (shard.storage.snapshot?.bytes ?? 0),
    0,
  )
}

/** Milliseconds of one GET /v1/mesh/status on `id`. */
async function statusMs(mesh: Mesh, id: string): Promise<number> {
  const startedAt = performance.now()
  const reply = await mesh.client(id).admin('GET', '/v1/mesh/status')
  if (reply.status !== 200) throw new Error(`mesh status: ${reply.status}`)
  return performance.now() - startedAt
}

async function restartRuns(mesh: Mesh, run: SizeRun, options: Options): Promise<void> {
  for (let i = 0; i < options.runs; i++) {
    const a = mesh.node('a')
    await a.kill()
    run.restartMs.push(await a.restart())
    await sleep(1_000)
    run.rssBytes.push(workerdRss(a.pid()))
    log(
      `recovery ${run.megabytes} MB restart ${i + 1}: ${run.restartMs.at(-1)!.toFixed(0)} ms, ` +
        `workerd ${(run.rssBytes.at(-1)! / 1e6).toFixed(0)} MB`,
    )
  }
}

async function wipeRuns(
  mesh: Mesh,
  run: SizeRun,
  options: Options,
  target: Map<number, number>,
  timeoutMs: number,
): Promise<void> {
  for (let i = 0; i < options.runs; i++) {
    const b = mesh.node('b')
    const spawnedAt = epochMs()
    const readyMs = await b.wipe()
    run.wipeReadyMs.push(readyMs)
    let rebuiltAt: number | undefined
    const follower = await follow('b', b.url(), mesh.meshSecret, 'shard/0', {
      timeoutMs: timeoutMs,
      onUpdate: (_update, at, self) => {
        if (rebuiltAt === undefined && covers(self.stateVector(), target)) rebuiltAt = at
      },
    })
    if (covers(follower.stateVector(), target)) rebuiltAt ??= epochMs()
    const deadline = performance.now() + timeoutMs
    // When a's link to b came up (a dials b: the smaller id dials), polled while b is still empty
    // and its status cheap: the rebuild splits into waiting for a's redial and the catch-up itself.
    let linkUpAt: number | undefined
    while (rebuiltAt === undefined && performance.now() < deadline) {
      if (linkUpAt === undefined) {
        const asked = epochMs()
        const { docs } = await meshStatus(mesh.client('b')).catch(() => ({ docs: new Map() }))
        const links = (docs.get('shard/0')?.links ?? []) as { peer: string; state: string }[]
        if (links.some((link) => link.peer === 'a' && link.state === 'up')) linkUpAt = asked
      }
      await sleep(50)
    }
    follower.close()
    if (rebuiltAt === undefined) {
      // Why, from b's log: the reason its link to a closed, if it did.
      const closes = [...b.output().matchAll(/"closing mesh link".*?"reason":"([^"]+)"/g)]
      const reason = closes.at(-1)?.[1]
      run.failure =
        `wiped b not rebuilt within ${timeoutMs} ms` +
        (reason === undefined ? '' : ` (b closes a's link: ${reason})`)
      log(
        `recovery ${run.megabytes} MB: ${run.failure}\n${b.output().split('\n').slice(-8).join('\n')}`,
      )
      return
    }
    run.wipeRebuiltMs.push(rebuiltAt - spawnedAt)
    run.wipeLinkUpMs.push((linkUpAt ?? rebuiltAt) - spawnedAt)
    run.wipeBytes.push(await linkBytesIn({ b: mesh.client('b') }))
    log(
      `recovery ${run.megabytes} MB wipe ${i + 1}: serving ${readyMs.toFixed(0)} ms, ` +
        `link up ${run.wipeLinkUpMs.at(-1)!.toFixed(0)} ms, rebuilt ${(rebuiltAt - spawnedAt).toFixed(0)} ms, ` +
        `${(run.wipeBytes.at(-1)! / 1e6).toFixed(1)} MB in`,
    )
  }
}

export async function runRecovery(options: Options): Promise<SectionResult> {
  const mesh = await startMesh({ ids: ['a', 'b'], shards: 1 })
  const runs: SizeRun[] = []
  try {
    await agreed(meshClients(mesh), 60_000)
    const empty = await sizeRun(mesh, { megabytes: 0, encodedBytes: 0, entries: 0 })
    await restartRuns(mesh, empty, options)
    await wipeRuns(mesh, empty, options, new Map(), 60_000)
    runs.push(empty)
    // Each size adds a seed of its own (its own Yjs client): the document is their union.
    let grown = 0
    let encodedBytes = 0
    let entries = 0
    const seeded: Map<number, number>[] = []
    for (const megabytes of options.shardMegabytes) {
      let seed: Seed | undefined = buildSeed(
        megabytes - grown,
        'a',
        `s${megabytes}`,
        mesh.operatorSigningKey,
      )
      await pushSeed(mesh.node('a').url(), mesh.meshSecret, 'shard/0', seed, 600_000)
      grown = megabytes
      encodedBytes += seed.encodedBytes
      entries += seed.entries
      seeded.push(seed.stateVector)
      seed = undefined // a seed of 100 MB holds a GB of heap: let it go before the next one
      await agreed(meshClients(mesh), 900_000, 1_000)
      const run = await sizeRun(mesh, { megabytes, encodedBytes, entries })
      log(
        `recovery: shard grown to ${(run.encodedBytes / 1e6).toFixed(1)} MB encoded ` +
          `(${run.entries} entries, ${(run.storedBytes / 1e6).toFixed(1)} MB stored)`,
      )
      runs.push(run)
      await restartRuns(mesh, run, options)
      await wipeRuns(mesh, run, options, unionOf(seeded), 180_000)
      if (run.failure !== undefined) break
    }
  } finally {
    await mesh.stop()
  }
  return recoveryReport(runs)
}

const signed = (ms: number) => `${ms < 0 ? '−' : '+'}${Math.abs(Math.round(ms))}`

function recoveryReport(runs: SizeRun[]): SectionResult {
  const base = runs[0]!
  const baseRss = figure(base.rssBytes, 'B', 0).median
  const rows = runs.map((run) => {
    const rss = figure(
      run.rssBytes.map((b) => b / 1e6),
      'MB',
      0,
    )
    const grownBy = figure(
      run.rssBytes.map((b) => (b - baseRss) / Math.max(run.encodedBytes, 1)),
      'x',
      2,
    )
    return [
      run.megabytes === 0 ? 'empty' : `${run.megabytes} MB`,
      run.megabytes === 0
        ? '–'
        : `${(run.encodedBytes / 1e6).toFixed(1)} / ${(run.storedBytes / 1e6).toFixed(1)} ` +
          `(${Math.round(run.storedBytes / run.entries)} B/entry)`,
      run.megabytes === 0
        ? cell(figure(run.restartMs, 'ms', 0))
        : `${cell(figure(run.restartMs, 'ms', 0))}; ${signed(figure(run.restartMs, 'ms').median - figure(base.restartMs, 'ms').median)} vs empty`,
      cell(rss),
      run.megabytes === 0 ? '–' : cell(grownBy),
      `${cell(figure(run.wipeReadyMs, 'ms', 0))} / ${cell(figure(run.wipeLinkUpMs, 'ms', 0))}`,
      run.wipeRebuiltMs.length === 0
        ? (run.failure ?? 'n/a')
        : `${cell(figure(run.wipeRebuiltMs, 'ms', 0))}; link up to rebuilt ` +
          cell(
            figure(
              run.wipeRebuiltMs.map((at, i) => at - (run.wipeLinkUpMs[i] ?? at)),
              'ms',
              0,
            ),
          ),
      run.wipeBytes.length === 0
        ? '–'
        : cell(
            figure(
              run.wipeBytes.map((b) => b / 1e6),
              'MB',
              1,
            ),
          ),
      run.statusMs.toFixed(0),
    ]
  })
  return {
    tables: [
      {
        title:
          'Recovery vs shard document size (2 nodes, 1 shard; SIGKILL + restart of a, wipe + rebuild of b)',
        columns: [
          'shard',
          'encoded / stored MB',
          'restart to serving ms',
          'workerd RSS MB',
          '(RSS − empty) / encoded',
          'wiped: spawn to serving / link up ms',
          'wiped: spawn to rebuilt ms; link up to rebuilt',
          'wiped: bytes in MB',
          'one GET /v1/mesh/status ms',
        ],
        rows,
      },
    ],
    figures: {
      sizes: runs.map((run) => ({
        ...run,
        restart: figure(run.restartMs, 'ms', 0),
        rss: figure(run.rssBytes, 'B', 0),
        rebuilt: figure(run.wipeRebuiltMs, 'ms', 0),
      })),
    },
  }
}
