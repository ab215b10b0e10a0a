// Options of a chaos run, shared by `npm run chaos` and `npm run chaos:soak`, parsed the way every
// script parses its arguments (scripts/lib/cli.ts).

import { resolve } from 'node:path'
import { signatureWindowMsDefault } from '../../src/constants'
import { recognizeMs } from '../../src/domain/checkpoint'
import { integerOption, parseOptions, UsageError } from '../lib/cli'
import { faultGroups, faultKinds, parseFaults } from './nemesis'
import { plants } from './plant'
import type { ChaosOptions } from './scenario'

export const usage = `usage: npm run chaos -- [--seed <n>] [--duration <s>] [--nodes <n>] [--faults <list>] [options]
       npm run chaos -- --check <results folder> [--plant <list>]
  --seed              seed of the workload and the fault plan (default: random, printed)
  --duration          seconds of workload and faults before the final heal (default 60)
  --nodes             nodes in the mesh, named a, b, c... (default 5)
  --faults            comma-separated: ${Object.keys(faultGroups).join(', ')} (groups) or
                      ${faultKinds.join(', ')} (default partition,kill,pause; "none" for none)
  --shards            shard documents per node (default 4)
  --accounts          accounts the clients share (default 3 per node)
  --clients           concurrent clients (default one per node)
  --drain             percent of operations that withdraw 80-100% of what a node says is
                      withdrawable (default 3): across a partition they overdraw without escrow
  --request-timeout   ms before an unanswered request counts as unknown (default 3000)
  --settle-every      settlement epoch length in ms on every node (default 5000; 0 for none)
  --checkpoint-every  epoch checkpoint length in ms of the shard documents, and the least time
                      between market checkpoints (default 0: none)
  --converge-timeout  seconds to wait for convergence after the final heal (default 60)
  --out               folder for results (default .mesh/chaos)
  --keep              keep the nodes' data folders even when every checker passed
  --check             check a results folder again instead of running
  --plant             with --check (or after a run): doctor the recorded run first, as one of
                      these bugs would have: ${Object.keys(plants).join(', ')}`

/**
 * Fault mixes `npm run chaos:soak` rotates through when --faults is not given: together, every
 * fault (test/chaos/nemesis.test.ts holds it to that).
 */
export const soakMixes = [
  'partition',
  'network',
  'kill,pause',
  'wipe,corrupt,isolate',
  'skew,kill',
  'membership,skew',
  'failover,pause',
  'all',
]

/** The options every chaos run takes (node:util parseArgs form). */
export const chaosOptionSpec = {
  seed: { type: 'string' },
  duration: { type: 'string', default: '60' },
  nodes: { type: 'string', default: '5' },
  faults: { type: 'string', default: 'partition,kill,pause' },
  shards: { type: 'string', default: '4' },
  accounts: { type: 'string' },
  clients: { type: 'string' },
  'request-timeout': { type: 'string', default: '3000' },
  'settle-every': { type: 'string', default: '5000' },
  'checkpoint-every': { type: 'string', default: '0' },
  drain: { type: 'string', default: '3' },
  'converge-timeout': { type: 'string', default: '60' },
  out: { type: 'string', default: '.mesh/chaos' },
  keep: { type: 'boolean', default: false },
} as const

type ChaosValues = {
  seed?: string
  duration: string
  nodes: string
  faults: string
  shards: string
  accounts?: string
  clients?: string
  'request-timeout': string
  'settle-every': string
  'checkpoint-every': string
  drain: string
  'converge-timeout': string
  out: string
  keep: boolean
}

/** A run's options from parsed values; throws UsageError on a bad one. */
export function chaosOptionsOf(values: ChaosValues): ChaosOptions {
  const nodes = integerOption('--nodes', values.nodes, 1, 26)
  let faults
  try {
    faults = values.faults === 'none' ? [] : parseFaults(values.faults)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const options: ChaosOptions = {
    seed:
      values.seed === undefined
        ? Math.floor(Math.random() * 2 ** 31)
        : integerOption('--seed', values.seed, 0, 2 ** 32 - 1),
    durationS: integerOption('--duration', values.duration, 1, 86_400),
    nodes,
    faults,
    faultsText: values.faults,
    shards: integerOption('--shards', values.shards, 1, 256),
    accounts:
      values.accounts === undefined
        ? 3 * nodes
        : integerOption('--accounts', values.accounts, 2, 1_000),
    clients:
      values.clients === undefined ? nodes : integerOption('--clients', values.clients, 1, 100),
    out: resolve(values.out),
    keepData: values.keep,
    convergeTimeoutS: integerOption('--converge-timeout', values['converge-timeout'], 1, 3_600),
    requestTimeoutMs: integerOption('--request-timeout', values['request-timeout'], 100, 600_000),
    drainPercent: integerOption('--drain', values.drain, 0, 50),
    settleEveryMs: integerOption('--settle-every', values['settle-every'], 0, 86_400_000),
    checkpointEveryMs: integerOption(
      '--checkpoint-every',
      values['checkpoint-every'],
      0,
      86_400_000,
    ),
  }
  // The checkers read a market's folded history from its checkpoint, which lists closed orders
  // and fills for the retention window only: the whole run must fit in it.
  const runMs = (options.durationS + options.convergeTimeoutS + setupMarginS) * 1_000
  if (options.checkpointEveryMs > 0 && runMs > recognizeMs(signatureWindowMsDefault))
    throw new UsageError(
      `--checkpoint-every with --duration + --converge-timeout over ` +
        `${Math.floor(recognizeMs(signatureWindowMsDefault) / 1_000) - setupMarginS} s: market ` +
        `checkpoints keep ${Math.floor(recognizeMs(signatureWindowMsDefault) / 60_000)} min of history`,
    )
  return options
}

/** Time a run takes beyond its duration and convergence: start, setup, final reads. */
const setupMarginS = 120

export function parseChaosArgs(argv: string[]) {
  const values = parseOptions(argv, {
    ...chaosOptionSpec,
    check: { type: 'string' },
    plant: { type: 'string' },
  })
  const plant = values.plant?.split(',').filter((name) => name !== '') ?? []
  for (const name of plant)
    if (plants[name] === undefined) throw new UsageError(`unknown plant "${name}"`)
  return { options: chaosOptionsOf(values), check: values.check, plant }
}
