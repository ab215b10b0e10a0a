// The partition harness (scripts/chaos) in the test suite: a short, fixed set of seeded runs on a
// mesh of three real nodes behind TCP proxies (15-20 s of faults each), each with the seeded
// workload and nemesis, a final heal, and every checker over the history and final states.
// Longer and many-seed runs are `npm run chaos` and `npm run chaos:soak`. A failure prints the
// run's table and the command that replays it; its results folder (history.jsonl, final.json,
// node logs) is kept.

import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseFaults } from '../../scripts/chaos/nemesis'
import { runScenario, summaryText, type ChaosOptions } from '../../scripts/chaos/scenario'

const scenario = (seed: number, faults: string, durationS = 15): ChaosOptions => ({
  seed,
  durationS,
  nodes: 3,
  faults: parseFaults(faults),
  faultsText: faults,
  shards: 4,
  accounts: 8,
  clients: 3,
  out: join(tmpdir(), 'clearmesh-chaos'),
  keepData: false,
  convergeTimeoutS: 60,
  requestTimeoutMs: 3_000,
  // No drains here (withdrawals of most of what a node says is withdrawable, on both sides of a
  // cut): `npm run chaos` and the soak run them (3% by default); these scenarios keep the
  // workloads their seeds were chosen with.
  drainPercent: 0,
  // Epochs settle every 5 s: leveraged accounts are liquidated when the mark swings (C9).
  settleEveryMs: 5_000,
  checkpointEveryMs: 0,
})

// Seeds chosen so that each plan holds two faults (see plan.json of a run).
const scenarios = [
  { name: 'a node blackholed, then a one-way link', options: scenario(321, 'partition,oneway') },
  { name: 'SIGSTOP and SIGCONT, then the home node killed', options: scenario(195, 'kill,pause') },
  {
    name: 'a node wiped, then frames reordered',
    options: scenario(261, 'wipe,loss,duplicate,reorder'),
  },
  {
    name: "a node joins empty, then the home node's clock runs 12 s slow",
    options: scenario(5, 'membership,skew', 20),
  },
  {
    name: 'the home node killed, then a node cut off, markets checkpointed every 4 s',
    options: { ...scenario(350, 'partition,kill'), checkpointEveryMs: 4_000 },
  },
]

describe('chaos: seeded partition runs keep every invariant', () => {
  for (const { name, options } of scenarios) {
    it(`${name} (seed ${options.seed})`, { timeout: 180_000 }, async () => {
      const lines: string[] = []
      const result = await runScenario(options, (line) => lines.push(line))
      const text = summaryText(result)
      console.log(`[chaos] ${name}\n${text}`)
      const failed = result.results.filter((r) => !r.valid).map((r) => `${r.id}: ${r.firstError}`)
      expect(failed, `${text}\n${lines.join('\n')}`).toEqual([])
      expect(result.plan.length).toBeGreaterThan(0)
      expect(result.faultsStarted, 'every planned fault ran').toBe(result.plan.length)
      expect(result.convergeMs).not.toBeNull()
      if (options.checkpointEveryMs > 0) {
        const figures = result.results.find((r) => r.id === 'C11')!.figures
        expect(figures['BTC-PERP folded to'], 'a market checkpoint in force').toBeGreaterThan(0)
      }
      await rm(result.dir, { recursive: true, force: true })
    })
  }
})
