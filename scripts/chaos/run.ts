// The partition harness (design.md §5): a fresh local mesh behind TCP proxies, a seeded workload,
// seeded faults, heal, quiescence, then every checker over the history and the final states.
// Exit status 0 only if every checker passed; a failure prints the command that replays it.
//
//   npm run chaos -- --seed 42 --duration 60 --nodes 5 --faults partition,kill,pause
//   npm run chaos -- --check .mesh/chaos/seed-42-... [--plant lost-write,overdraft]

import { resolve } from 'node:path'
import { runMain } from '../lib/cli'
import { runCheckers } from './checkers'
import { parseChaosArgs, usage } from './options'
import { applyPlants, plants } from './plant'
import { loadRun, runScenario, summaryTable, summaryText } from './scenario'

async function main(argv: string[]): Promise<number> {
  const { options, check, plant } = parseChaosArgs(argv)
  if (check !== undefined) {
    const input = applyPlants(await loadRun(resolve(check)), plant)
    const results = runCheckers(input)
    console.log(summaryTable(results))
    if (plant.length > 0)
      console.log(
        `planted: ${plant.map((p) => `${p} (must fail ${plants[p]!.expect.join(', ')})`).join('; ')}`,
      )
    const passed = results.every((r) => r.valid)
    console.log(`verdict: ${passed ? 'PASS' : 'FAIL'}`)
    return passed ? 0 : 1
  }
  const result = await runScenario(options)
  console.log(`\n${summaryText(result)}`)
  if (plant.length > 0) {
    const results = runCheckers(applyPlants(await loadRun(result.dir), plant))
    console.log(`\nthe same run with ${plant.join(', ')} planted:\n${summaryTable(results)}`)
  }
  return result.passed ? 0 : 1
}

runMain('clearmesh chaos', usage, main)
