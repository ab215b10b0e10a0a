// The recovery time objective of matcher failover (issue #10): on three real nodes (a fresh mesh
// per run, default lease settings), a steady flow of crossing orders enters at c and is forwarded
// to the lease holder; once a fill went through a (the home), a is SIGKILLed, and the figure is
// the time from the kill to the first order answered as filled by the new matcher (b). At least
// five runs: the median and the worst.

import {
  failoverTimeoutMsDefault,
  heartbeatIntervalMs,
  heartbeatTimeoutMs,
  leaseDriftRate,
  leaseDurationMsDefault,
} from '../../src/constants'
import type { ApiKey } from '../../test/support/api-client'
import { fundTraders, untilFill } from '../../test/nodes/support/crossing'
import { startMesh } from '../../test/nodes/support/mesh'
import type { Options, SectionResult } from './context'
import { cell, figure, log } from './harness'

const runsMin = 5

/** One run on a fresh mesh: ms from the home's kill to the first fill by the new matcher. */
async function killToFirstFillMs(): Promise<number> {
  const mesh = await startMesh({ ids: ['a', 'b', 'c'], shards: 2 })
  try {
    const traders = await fundTraders(mesh, 'c')
    const placed: { key: ApiKey; orderId: string }[] = []
    const through = await untilFill(mesh, traders, 0, placed)
    await mesh.node('a').kill()
    return (await untilFill(mesh, traders, through.next, placed)).ms
  } finally {
    await mesh.stop()
  }
}

export async function runFailover(options: Options): Promise<SectionResult> {
  const runs: number[] = []
  for (let i = 0; i < Math.max(runsMin, options.runs); i++) {
    runs.push(await killToFirstFillMs())
    log(`failover: run ${i + 1}: first fill by the new matcher ${runs.at(-1)!.toFixed(0)} ms`)
  }
  const rto = figure(runs, 'ms', 0)
  const settings =
    `lease ${leaseDurationMsDefault} ms, failover timeout ${failoverTimeoutMsDefault} ms, ` +
    `drift bound ${leaseDriftRate}, heartbeat ${heartbeatIntervalMs} ms / ${heartbeatTimeoutMs} ms`
  return {
    tables: [
      {
        title: `Home killed under a steady order flow, to the first fill by the new matcher (${settings})`,
        columns: ['runs', 'p50 (min–max)', 'max'],
        rows: [[String(runs.length), cell(rto, true), `${rto.max} ms`]],
      },
    ],
    figures: { killToFirstFillMs: rto, settings },
  }
}
