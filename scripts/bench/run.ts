// The benchmark suite (`npm run bench`): the ceiling of this machine, one node's durable writes,
// replication lag, convergence after heal, recovery, edge versus central, and the mesh's closing
// figures, each the median of at least 3 runs with its spread, comparisons as ratios of runs made
// side by side. Load comes from autocannon (closed loop) or the steady pacer (open loop), each in
// its own process, against loopback only. Prints one table per section and writes them, with
// every figure, to bench/results/<stamp>.{json,md} and bench/results/latest.{json,md}, plus the
// lag curve as bench/results/lag.svg. Every node, proxy and load process it starts is stopped,
// whatever happens; a section over its time budget ends the suite.
//
//   npm run bench -- [--quick | --full] [--only throughput,lag,...] [--runs 3] [--seconds 10]

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, totalmem, type as osType, release } from 'node:os'
import { dirname, join } from 'node:path'
import { integerOption, parseOptions, runMain, UsageError } from '../lib/cli'
import type { Mode, Options, Section, SectionResult } from './context'
import { log, repoRoot } from './harness'
import { markdownReport, textTables, type SuiteDocument } from './report'
import { runClosing, runConvergence } from './converge'
import { runEdge } from './edge'
import { runEscrow } from './escrow'
import { runFailover } from './failover'
import { runLag } from './lag'
import { runRecovery } from './recovery'
import { runThroughput } from './throughput'

const sections: Section[] = [
  { id: 'throughput', title: "1-2. Ceiling and one node's durable writes", run: runThroughput },
  { id: 'lag', title: '3. Replication lag at steady write rates', run: runLag },
  { id: 'converge', title: '4. Convergence after heal', run: runConvergence },
  { id: 'recovery', title: '5. Recovery vs shard size', run: runRecovery },
  { id: 'edge', title: '7. Edge vs central', run: runEdge },
  { id: 'escrow', title: 'Escrow refusals for lack of local rights (C10)', run: runEscrow },
  { id: 'failover', title: 'Matcher failover: recovery time', run: runFailover },
  {
    id: 'closing',
    title: 'Issue 5 closing figures: lag, catch-up after a partition, restart',
    run: runClosing,
  },
]

const usage = `usage: npm run bench -- [--quick | --full] [--only <sections>] [--runs <n>] [--seconds <s>]
  --quick     every section, short runs and small sizes (about 12 minutes here)
  --full      every section at the sizes of the benchmarks issue (default; 25-35 minutes here)
  --only      comma-separated sections: ${sections.map((s) => s.id).join(', ')}
  --runs      runs behind every figure (default 3, at least 3)
  --seconds   length of each load run (default: 4 quick, 10 full)
  --shard-mb  shard sizes of the recovery section, MB (default: 1 quick; 1,10,100 full)
  --ops       divergent operations per side of the convergence section (default: 1000; 1000,10000)
  --rates     steady write rates of the lag section, per second (default: 20,50,100; 20,50,100,150)
  --out       folder of the results (default bench/results)
  --no-write  print the tables, write nothing
  --render    <results.json>: write its markdown and charts again beside it, run nothing`

function modeOptions(mode: Mode, tmpDir: string): Options {
  const quick = mode === 'quick'
  return {
    mode,
    runs: 3,
    seconds: quick ? 4 : 10,
    connections: 16,
    lagRates: quick ? [20, 50, 100] : [20, 50, 100, 150],
    lagMeshSizes: [3, 5],
    divergentOps: quick ? [1_000] : [1_000, 10_000],
    shardMegabytes: quick ? [1] : [1, 10, 100],
    groupDelaysMs: [20, 60, 120],
    edgeDelayMs: 5,
    partitionSeconds: quick ? 10 : 30,
    closingRate: 30,
    tmpDir,
  }
}

/** Per-section budgets: a section past its budget ends the suite (every process is killed). */
const budgetMinutes: Record<Mode, number> = { quick: 30, full: 120 }

async function main(argv: string[]): Promise<number> {
  const values = parseOptions(argv, {
    quick: { type: 'boolean', default: false },
    full: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string' },
    seconds: { type: 'string' },
    'shard-mb': { type: 'string' },
    ops: { type: 'string' },
    rates: { type: 'string' },
    out: { type: 'string', default: join(repoRoot, 'bench', 'results') },
    'no-write': { type: 'boolean', default: false },
    render: { type: 'string' },
  })
  if (values.render !== undefined) return render(values.render)
  if (values.quick && values.full) throw new UsageError('--quick or --full, not both')
  const mode: Mode = values.quick ? 'quick' : 'full'
  const chosen =
    values.only === undefined
      ? sections
      : values.only.split(',').map((id) => {
          const section = sections.find((s) => s.id === id)
          if (section === undefined) throw new UsageError(`--only: no section ${id}`)
          return section
        })
  await mkdir(join(repoRoot, 'bench', 'tmp'), { recursive: true })
  const tmpDir = await mkdtemp(join(repoRoot, 'bench', 'tmp', 'run-'))
  const options = modeOptions(mode, tmpDir)
  if (values.runs !== undefined) options.runs = integerOption('--runs', values.runs, 3, 50)
  if (values.seconds !== undefined)
    options.seconds = integerOption('--seconds', values.seconds, 1, 600)

  const list = (name: string, text: string | undefined, max: number) =>
    text?.split(',').map((item) => integerOption(name, item, 1, max))
  options.shardMegabytes = list('--shard-mb', values['shard-mb'], 1_000) ?? options.shardMegabytes
  options.divergentOps = list('--ops', values.ops, 1_000_000) ?? options.divergentOps
  options.lagRates = list('--rates', values.rates, 10_000) ?? options.lagRates
  const budgetMs = budgetMinutes[mode] * 60_000
  const watchdog = setTimeout(() => {
    console.error(`bench: over its ${budgetMinutes[mode]} minute budget, stopping`)
    process.exit(1) // the exit hooks SIGKILL every node and load process
  }, budgetMs)
  watchdog.unref()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))

  const startedAt = new Date()
  const results: {
    id: string
    title: string
    seconds: number
    result?: SectionResult
    error?: string
  }[] = []
  try {
    for (const section of chosen) {
      log(`section ${section.id}: ${section.title}`)
      const sectionStart = performance.now()
      try {
        const result = await section.run(options)
        results.push({
          id: section.id,
          title: section.title,
          seconds: Math.round((performance.now() - sectionStart) / 1000),
          result,
        })
        console.log(textTables(section.title, result))
      } catch (error) {
        const message = (error as Error)?.stack ?? String(error)
        log(`section ${section.id} failed: ${message}`)
        results.push({
          id: section.id,
          title: section.title,
          seconds: Math.round((performance.now() - sectionStart) / 1000),
          error: message.split('\n').slice(0, 12).join('\n'),
        })
      }
    }
  } finally {
    clearTimeout(watchdog)
    await rm(tmpDir, { recursive: true, force: true })
  }
  const machine = {
    os: `${osType()} ${release()}`,
    cpus: `${availableParallelism()} x ${cpus()[0]?.model ?? 'unknown'}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    note: 'shared with other engineers running tests: absolute figures swing with their load; ratios of runs made side by side swing less',
  }
  const document = {
    startedAt: startedAt.toISOString(),
    seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    mode,
    options: { ...options, tmpDir: undefined },
    machine,
    sections: results,
  }
  if (!values['no-write']) {
    await mkdir(values.out, { recursive: true })
    const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
    const markdown = markdownReport(document)
    for (const name of [stamp, 'latest']) {
      await writeFile(join(values.out, `${name}.json`), JSON.stringify(document, null, 2))
      await writeFile(join(values.out, `${name}.md`), markdown.text)
    }
    for (const [name, svg] of Object.entries(markdown.charts)) {
      await writeFile(join(values.out, name), svg)
    }
    log(`results written to ${values.out}/latest.{json,md} and ${stamp}.{json,md}`)
  }
  return results.some((r) => r.error !== undefined) ? 1 : 0
}

/** Writes a results file's markdown and charts again (after a change to how they are drawn). */
async function render(file: string): Promise<number> {
  const document = JSON.parse(await readFile(file, 'utf8')) as SuiteDocument
  const markdown = markdownReport(document)
  await writeFile(file.replace(/\.json$/, '.md'), markdown.text)
  for (const [name, svg] of Object.entries(markdown.charts)) {
    await writeFile(join(dirname(file), name), svg)
  }
  log(`rendered ${file.replace(/\.json$/, '.md')} and ${Object.keys(markdown.charts).join(', ')}`)
  return 0
}

runMain('bench', usage, main)
