// Many chaos runs in a row, one seed after another, and a table of their results.
//
//   npm run chaos:soak -- --seeds 100 [--from 1] [--duration 30] [--nodes 3] [--faults <list>]
//
// Without --faults the runs rotate through fault mixes so that every fault is covered; the table
// (markdown) goes to the results folder and the terminal. Exit status 0 only if every run passed.

import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { integerOption, parseOptions, runMain } from '../lib/cli'
import { chaosOptionSpec, chaosOptionsOf, soakMixes as mixes } from './options'
import { parseFaults } from './nemesis'
import { runScenario, type RunResult } from './scenario'

const usage = `usage: npm run chaos:soak -- --seeds <n> [--from <seed>] [--stop-on-failure] [chaos options]
  --seeds            how many runs (default 10)
  --from             first seed; runs use from, from+1, ... (default 1)
  --stop-on-failure  stop at the first failing run
  chaos options      as npm run chaos (--duration default 30, --nodes default 3); without
                     --faults the runs rotate through: ${mixes.join(' | ')}`

async function main(argv: string[]): Promise<number> {
  const values = parseOptions(argv, {
    ...chaosOptionSpec,
    duration: { type: 'string', default: '30' },
    nodes: { type: 'string', default: '3' },
    faults: { type: 'string' },
    seeds: { type: 'string', default: '10' },
    from: { type: 'string', default: '1' },
    'stop-on-failure': { type: 'boolean', default: false },
  })
  const seeds = integerOption('--seeds', values.seeds, 1, 100_000)
  const from = integerOption('--from', values.from, 0, 2 ** 32 - 1)
  const fixedFaults = values.faults !== undefined
  const base = chaosOptionsOf({ ...values, faults: values.faults ?? 'none' })
  const rows: { seed: number; faults: string; result: RunResult | Error }[] = []
  for (let n = 0; n < seeds; n++) {
    const seed = from + n
    const faultsText = fixedFaults ? base.faultsText : mixes[n % mixes.length]!
    const options = { ...base, seed, faultsText, faults: parseFaults(faultsText) }
    console.log(`\n=== soak run ${n + 1}/${seeds}: seed ${seed}, faults ${faultsText}`)
    const result = await runScenario(options).catch((error: Error) => error)
    rows.push({ seed, faults: faultsText, result })
    console.log(
      result instanceof Error
        ? `run failed: ${result.message}`
        : `verdict: ${result.passed ? 'PASS' : 'FAIL'}`,
    )
    if (values['stop-on-failure'] && (result instanceof Error || !result.passed)) break
  }
  const table = soakTable(rows)
  const file = join(base.out, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.md`)
  await writeFile(file, `${table}\n`)
  console.log(`\n${table}\n\ntable: ${file}`)
  return rows.every((row) => !(row.result instanceof Error) && row.result.passed) ? 0 : 1
}

function soakTable(rows: { seed: number; faults: string; result: RunResult | Error }[]): string {
  const ids = ['C1', 'C2', 'C3', 'C4', 'C5', 'C6', 'C7', 'C8', 'C9', 'C10']
  const lines = [
    `| seed | faults | ${ids.join(' | ')} | converge ms | relink ms (max) | ops ok/fail/info | verdict |`,
    `| --- | --- | ${ids.map(() => '---').join(' | ')} | --- | --- | --- | --- |`,
  ]
  for (const { seed, faults, result } of rows) {
    if (result instanceof Error) {
      lines.push(
        `| ${seed} | ${faults} | ${ids.map(() => '-').join(' | ')} | - | - | - | error: ${result.message.split('\n')[0]} |`,
      )
      continue
    }
    const status = (id: string) => result.results.find((r) => r.id === id)?.status ?? '-'
    const ops = (type: string) =>
      Object.entries(result.counts)
        .filter(([key]) => key.endsWith(`.${type}`))
        .reduce((n, [, v]) => n + v, 0)
    lines.push(
      `| ${seed} | ${faults} | ${ids.map(status).join(' | ')} | ${result.convergeMs ?? 'never'} | ` +
        `${result.relinkMs.length === 0 ? '-' : Math.max(...result.relinkMs)} | ` +
        `${ops('ok')}/${ops('fail')}/${ops('info')} | ${result.passed ? 'PASS' : `FAIL (${result.dir})`} |`,
    )
  }
  const runs = rows
    .filter((row) => !(row.result instanceof Error))
    .map((row) => row.result as RunResult)
  const converge = runs
    .map((r) => r.convergeMs)
    .filter((ms): ms is number => ms !== null)
    .sort((x, y) => x - y)
  if (converge.length > 0)
    lines.push(
      '',
      `convergence after the final heal over ${converge.length} runs: ` +
        `median ${converge[Math.floor(converge.length / 2)]} ms, max ${converge.at(-1)} ms`,
    )
  return lines.join('\n')
}

runMain('clearmesh chaos:soak', usage, main)
