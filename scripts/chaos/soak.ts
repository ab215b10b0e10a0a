// Many chaos runs in a row, one seed after another, and a table of their results.
//
//   npm run chaos:soak -- --seeds 100 [--from 1] [--duration 30] [--nodes 3] [--faults <list>]
//   npm run chaos:soak -- --table .mesh/chaos     # the table again, from recorded runs
//
// Without --faults the runs rotate through fault mixes so that every fault is covered; the table
// (markdown) goes to the results folder and the terminal. Exit status 0 only if every run passed.

import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { integerOption, parseOptions, runMain } from '../lib/cli'
import type { Fault } from './nemesis'
import { chaosOptionSpec, chaosOptionsOf, soakMixes as mixes } from './options'
import { parseFaults } from './nemesis'
import { runScenario, type ChaosOptions, type RunResult } from './scenario'

const usage = `usage: npm run chaos:soak -- --seeds <n> [--from <seed>] [--stop-on-failure] [chaos options]
       npm run chaos:soak -- --table <results folder>
  --seeds            how many runs (default 10)
  --from             first seed; runs use from, from+1, ... (default 1)
  --stop-on-failure  stop at the first failing run
  --table            print (and write) the table of every run recorded under the folder instead
  chaos options      as npm run chaos (--duration default 30, --nodes default 3); without
                     --faults the runs rotate through: ${mixes.join(' | ')}`

type Row = { seed: number; nodes: number; faults: string; result: RunResult | Error }

async function main(argv: string[]): Promise<number> {
  const values = parseOptions(argv, {
    ...chaosOptionSpec,
    duration: { type: 'string', default: '30' },
    nodes: { type: 'string', default: '3' },
    faults: { type: 'string' },
    seeds: { type: 'string', default: '10' },
    from: { type: 'string', default: '1' },
    'stop-on-failure': { type: 'boolean', default: false },
    table: { type: 'string' },
  })
  if (values.table !== undefined) {
    const rows = await recordedRows(resolve(values.table))
    return report(rows, resolve(values.table))
  }
  const seeds = integerOption('--seeds', values.seeds, 1, 100_000)
  const from = integerOption('--from', values.from, 0, 2 ** 32 - 1)
  const fixedFaults = values.faults !== undefined
  const base = chaosOptionsOf({ ...values, faults: values.faults ?? 'none' })
  const rows: Row[] = []
  for (let n = 0; n < seeds; n++) {
    const seed = from + n
    const faultsText = fixedFaults ? base.faultsText : mixes[n % mixes.length]!
    const options = { ...base, seed, faultsText, faults: parseFaults(faultsText) }
    console.log(`\n=== soak run ${n + 1}/${seeds}: seed ${seed}, faults ${faultsText}`)
    const result = await runScenario(options).catch((error: Error) => error)
    rows.push({ seed, nodes: base.nodes, faults: faultsText, result })
    console.log(
      result instanceof Error
        ? `run failed: ${result.message}`
        : `verdict: ${result.passed ? 'PASS' : 'FAIL'}`,
    )
    if (values['stop-on-failure'] && (result instanceof Error || !result.passed)) break
  }
  return report(rows, base.out)
}

async function report(rows: Row[], out: string): Promise<number> {
  const table = soakTable(rows)
  const file = join(out, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.md`)
  await writeFile(file, `${table}\n`)
  console.log(`\n${table}\n\ntable: ${file}`)
  return rows.every((row) => !(row.result instanceof Error) && row.result.passed) ? 0 : 1
}

/** Every run recorded under `folder` (its plan.json, and its summary.json once it was checked). */
async function recordedRows(folder: string): Promise<Row[]> {
  const dirs = (await readdir(folder, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory() && entry.name.startsWith('seed-'))
    .map((entry) => join(folder, entry.name))
  const rows = await Promise.all(
    dirs.map(async (dir): Promise<Row> => {
      const { options } = JSON.parse(await readFile(join(dir, 'plan.json'), 'utf8')) as {
        options: ChaosOptions
      }
      const result = await readFile(join(dir, 'summary.json'), 'utf8').then(
        (text) => JSON.parse(text) as RunResult,
        () => new Error(`no summary.json: the run stopped before its checks (${dir})`),
      )
      return { seed: options.seed, nodes: options.nodes, faults: options.faultsText, result }
    }),
  )
  return rows.sort((x, y) => x.nodes - y.nodes || x.seed - y.seed)
}

/** A planned fault as the table shows it: kind, node, and what sets it apart. */
const faultLabel = (fault: Fault): string => {
  const details = [
    fault.node,
    fault.skewMs === undefined ? undefined : `${(fault.skewMs / 1_000).toFixed(1)}s`,
    fault.how === 'blackhole' ? 'blackhole' : undefined,
  ].filter((part) => part !== undefined)
  return details.length === 0 ? fault.kind : `${fault.kind}(${details.join(' ')})`
}

const checkIds = ['C1', 'C2', 'C3', 'C4', 'C5', 'C6', 'C7', 'C8', 'C9', 'C10', 'C11']

function soakTable(rows: Row[]): string {
  const lines = [
    `| seed | nodes | mix | faults run | ${checkIds.join(' | ')} | converge ms | relink ms (max) | ops ok/fail/info | verdict |`,
    `| --- | --- | --- | --- | ${checkIds.map(() => '---').join(' | ')} | --- | --- | --- | --- |`,
  ]
  for (const { seed, nodes, faults, result } of rows) {
    if (result instanceof Error) {
      lines.push(
        `| ${seed} | ${nodes} | ${faults} | - | ${checkIds.map(() => '-').join(' | ')} | - | - | - | error: ${result.message.split('\n')[0]} |`,
      )
      continue
    }
    const status = (id: string) => result.results.find((r) => r.id === id)?.status ?? '-'
    const ops = (type: string) =>
      Object.entries(result.counts)
        .filter(([key]) => key.endsWith(`.${type}`))
        .reduce((n, [, v]) => n + v, 0)
    const ran = result.plan.map(faultLabel).join(', ')
    const skipped = result.plan.length - result.faultsStarted
    lines.push(
      `| ${seed} | ${nodes} | ${faults} | ${ran || '-'}${skipped > 0 ? ` (${skipped} skipped)` : ''} | ` +
        `${checkIds.map(status).join(' | ')} | ${result.convergeMs ?? 'never'} | ` +
        `${result.relinkMs.length === 0 ? '-' : Math.max(...result.relinkMs)} | ` +
        `${ops('ok')}/${ops('fail')}/${ops('info')} | ${result.passed ? 'PASS' : `FAIL (${result.dir})`} |`,
    )
  }
  return [...lines, '', ...tallies(rows)].join('\n')
}

/** Per checker, how many runs passed, failed or did not apply; faults by kind; convergence. */
function tallies(rows: Row[]): string[] {
  const runs = rows.flatMap((row) => (row.result instanceof Error ? [] : [row.result]))
  const lines = [
    `${runs.filter((r) => r.passed).length} of ${rows.length} runs passed` +
      (runs.length < rows.length ? ` (${rows.length - runs.length} ended in an error)` : ''),
  ]
  const perChecker = checkIds.map((id) => {
    const count = (status: string) =>
      runs.filter((r) => r.results.find((c) => c.id === id)?.status === status).length
    return `${id} ${count('pass')}/${count('fail')}/${count('n/a')}`
  })
  lines.push(`per checker (pass/fail/n/a): ${perChecker.join(', ')}`)
  const kinds = new Map<string, number>()
  for (const fault of runs.flatMap((r) => r.plan))
    kinds.set(fault.kind, (kinds.get(fault.kind) ?? 0) + 1)
  lines.push(
    `faults planned, by kind: ${[...kinds]
      .sort()
      .map(([kind, n]) => `${kind} ${n}`)
      .join(', ')}`,
  )
  const sorted = (values: number[]) => [...values].sort((x, y) => x - y)
  const converge = sorted(runs.flatMap((r) => (r.convergeMs === null ? [] : [r.convergeMs])))
  if (converge.length > 0)
    lines.push(
      `convergence after the final heal over ${converge.length} runs: ` +
        `median ${converge[Math.floor(converge.length / 2)]} ms, max ${converge.at(-1)} ms`,
    )
  const relink = sorted(runs.flatMap((r) => r.relinkMs))
  if (relink.length > 0)
    lines.push(
      `links back up after a heal, over ${relink.length} heals: ` +
        `median ${relink[Math.floor(relink.length / 2)]} ms, max ${relink.at(-1)} ms`,
    )
  return lines
}

runMain('clearmesh chaos:soak', usage, main)
