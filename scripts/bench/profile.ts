// Where a node spends its CPU under one workload: a node started like scripts/node.ts (same
// bundle, bindings and Durable Objects) but with workerd's inspector open, autocannon loading it
// from its own process, and a V8 CPU profile of the Worker's isolate (which runs the Durable
// Objects too) taken over the load through the Chrome DevTools Protocol. Writes the .cpuprofile
// under bench/tmp/ (open it in Chrome DevTools) and prints where the samples fell: by bundled
// module (esbuild marks each module's start in the bundle) and by function, self time.
//
//   npx tsx scripts/bench/profile.ts [--workload deposit|withdrawal|order|health] [--seconds 10]

import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Log, LogLevel, Miniflare } from 'miniflare'
import WebSocket from 'ws'
import { apiClient } from '../../test/support/api-client'
import { bundleWorker } from '../lib/bundle'
import { integerOption, parseOptions, runMain, UsageError } from '../lib/cli'
import { reservePorts } from '../lib/tcp-proxy'
import { loadWorkerConfig } from '../lib/worker-config'
import { log, repoRoot, runScript } from './harness'
import type { LoadResult, Workload } from './load'
import { fundAccounts, keepMarksFresh, orderGrid } from './setup'

const usage = `usage: npx tsx scripts/bench/profile.ts [--workload deposit] [--seconds 10] [--connections 16]
  --workload     deposit, withdrawal, order or health (default deposit)
  --seconds      length of the profiled load (default 10)
  --connections  autocannon connections (default 16)
  --out          also write the summary to this file`

type ProfileNode = {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount: number
  children?: number[]
}
type Profile = { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] }

/** A minimal Chrome DevTools Protocol session over the inspector's WebSocket. */
async function devtools(url: string) {
  const socket = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  let next = 1
  const waiting = new Map<number, (result: any) => void>()
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString()) as {
      id?: number
      result?: unknown
      error?: unknown
    }
    if (message.id !== undefined) waiting.get(message.id)?.(message.error ?? message.result)
  })
  return {
    call: (method: string, params: Record<string, unknown> = {}) =>
      new Promise<any>((resolve) => {
        const id = next++
        waiting.set(id, resolve)
        socket.send(JSON.stringify({ id, method, params }))
      }),
    close: () => socket.close(),
  }
}

/** Line → bundled module, from the `// path` comments esbuild puts before every module. */
async function moduleIndex(bundle: string): Promise<(line: number) => string> {
  const lines = (await readFile(bundle, 'utf8')).split('\n')
  const starts: [number, string][] = []
  lines.forEach((text, i) => {
    const match = /^\/\/ (node_modules\/(?:@[^/]+\/)?[^/]+|src\/[^ ]+)/.exec(text)
    if (match !== null) starts.push([i, match[1]!])
  })
  return (line) => {
    let found = '(bundle)'
    for (const [start, name] of starts) {
      if (start > line) break
      found = name
    }
    return found
  }
}

function summarize(profile: Profile, moduleOf: (line: number) => string, top: number): string {
  const total = profile.samples.length
  const counts = new Map<number, number>()
  for (const sample of profile.samples) counts.set(sample, (counts.get(sample) ?? 0) + 1)
  const byModule = new Map<string, number>()
  const byFunction = new Map<string, number>()
  for (const node of profile.nodes) {
    const hits = counts.get(node.id) ?? 0
    if (hits === 0) continue
    const frame = node.callFrame
    const module =
      frame.url === ''
        ? `(${frame.functionName || 'native'})`
        : frame.url.endsWith('worker.mjs')
          ? moduleOf(frame.lineNumber)
          : `(runtime) ${frame.url}`
    byModule.set(module, (byModule.get(module) ?? 0) + hits)
    const name = `${frame.functionName || '(anonymous)'} ${module}:${frame.lineNumber + 1}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + hits)
  }
  const share = (hits: number) => `${((hits / total) * 100).toFixed(1).padStart(5)}%`
  const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]).slice(0, top)
  return [
    `${total} samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s`,
    'self time by module:',
    ...sorted(byModule).map(([name, hits]) => `  ${share(hits)}  ${name}`),
    'self time by function:',
    ...sorted(byFunction).map(([name, hits]) => `  ${share(hits)}  ${name}`),
  ].join('\n')
}

async function main(argv: string[]): Promise<number> {
  const values = parseOptions(argv, {
    workload: { type: 'string', default: 'deposit' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    out: { type: 'string' },
  })
  if (!['deposit', 'withdrawal', 'order', 'health'].includes(values.workload)) {
    throw new UsageError(`--workload: no workload ${values.workload}`)
  }
  const seconds = integerOption('--seconds', values.seconds, 1, 300)
  const connections = integerOption('--connections', values.connections, 1, 256)
  await mkdir(join(repoRoot, 'bench', 'tmp'), { recursive: true })
  const root = await mkdtemp(join(repoRoot, 'bench', 'tmp', 'profile-'))
  const config = await loadWorkerConfig(
    join(repoRoot, 'wrangler.toml'),
    join(repoRoot, 'node_modules', '.cache', 'clearmesh'),
  )
  const bundle = join(root, 'build', 'worker.mjs')
  await bundleWorker(config.main, bundle)
  const reserved = await reservePorts(2)
  const [port, inspectorPort] = reserved.ports as [number, number]
  await reserved.release()
  const adminToken = `admin-${randomBytes(12).toString('hex')}`
  // The options of scripts/node.ts, plus the inspector.
  const mf = new Miniflare({
    name: config.name,
    modules: true,
    scriptPath: bundle,
    modulesRoot: dirname(bundle),
    compatibilityDate: config.compatibilityDate,
    compatibilityFlags: config.compatibilityFlags,
    durableObjects: config.durableObjects,
    durableObjectsPersist: join(root, 'data'),
    bindings: {
      ...config.vars,
      NODE_ID: 'a',
      ADMIN_TOKEN: adminToken,
      KEY_SECRET: `keys-${randomBytes(12).toString('hex')}`,
      MESH_SECRET: `mesh-${randomBytes(12).toString('hex')}`,
      PEERS: '',
    },
    host: '127.0.0.1',
    port,
    inspectorPort,
    cf: false,
    log: new Log(LogLevel.WARN),
  })
  try {
    const url = (await mf.ready).origin
    const client = apiClient(fetch, url, adminToken)
    const marks = keepMarksFresh([() => client])
    await marks.ready
    const accounts = await fundAccounts(client, 'prof', 64)
    const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as {
      title: string
      webSocketDebuggerUrl: string
    }[]
    log(`inspector targets: ${targets.map((t) => t.title).join(', ')}`)
    const target = targets.find((t) => t.title.includes(config.name)) ?? targets[0]
    if (target === undefined) throw new Error('no inspector target')
    const session = await devtools(target.webSocketDebuggerUrl)
    await session.call('Profiler.enable')
    await session.call('Profiler.setSamplingInterval', { interval: 200 })
    await session.call('Profiler.start')
    const workload: Workload =
      values.workload === 'deposit'
        ? { kind: 'deposit', adminToken, accounts: accounts.map((a) => a.accountId), tag: 'prof' }
        : values.workload === 'withdrawal'
          ? { kind: 'withdrawal', accounts, tag: 'prof' }
          : values.workload === 'order'
            ? { kind: 'order', accounts, tag: 'prof', ...orderGrid() }
            : { kind: 'get', path: '/health' }
    const { result } = await runScript<LoadResult>(
      'load.ts',
      { url, connections, seconds, workload },
      seconds * 1000 + 60_000,
      root,
    )
    const { profile } = (await session.call('Profiler.stop')) as { profile: Profile }
    session.close()
    marks.stop()
    const file = join(repoRoot, 'bench', 'tmp', `profile-${values.workload}.cpuprofile`)
    await writeFile(file, JSON.stringify(profile))
    const text =
      `${values.workload}, ${connections} connections, ${seconds} s: ` +
      `${Math.round(result.okPerSecond)} 2xx/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms\n` +
      summarize(profile, await moduleIndex(bundle), 25)
    console.log(`${text}\nprofile: ${file}`)
    if (values.out !== undefined) await writeFile(values.out, `${text}\n`)
    return 0
  } finally {
    await mf.dispose()
    await rm(root, { recursive: true, force: true })
  }
}

runMain('profile', usage, main)
