// Serves scripts/bench/hello-worker.js on miniflare, as scripts/node.ts serves a clearmesh node
// (same miniflare, same compatibility date and flags from wrangler.toml, loopback only), and
// prints `hello listening on <url>` once it answers. Stops on SIGTERM or SIGINT.
//
//   npx tsx scripts/bench/hello-server.ts [--port 0]

import { join } from 'node:path'
import { Log, LogLevel, Miniflare } from 'miniflare'
import { integerOption, parseOptions, runMain } from '../lib/cli'
import { loadWorkerConfig } from '../lib/worker-config'
import { benchDir, repoRoot } from './harness'

const usage = 'usage: npx tsx scripts/bench/hello-server.ts [--port 0]'

async function main(argv: string[]): Promise<number> {
  const { port } = parseOptions(argv, { port: { type: 'string', default: '0' } })
  const config = await loadWorkerConfig(
    join(repoRoot, 'wrangler.toml'),
    join(repoRoot, 'node_modules', '.cache', 'clearmesh'),
  )
  const mf = new Miniflare({
    name: 'hello',
    modules: true,
    scriptPath: join(benchDir, 'hello-worker.js'),
    compatibilityDate: config.compatibilityDate,
    compatibilityFlags: config.compatibilityFlags,
    host: '127.0.0.1',
    port: integerOption('--port', port, 0, 65_535),
    cf: false,
    log: new Log(LogLevel.WARN),
  })
  const url = await mf.ready
  const response = await fetch(url)
  if (response.status !== 200) throw new Error(`hello answered ${response.status}`)
  await response.text()
  console.log(`hello listening on ${url.origin}`)
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve())
    process.once('SIGINT', () => resolve())
  })
  await mf.dispose()
  return 0
}

runMain('hello server', usage, main)
