// What market checkpoints do to one market document: the encoded size, the heap of the document
// loaded and replayed, and the time to replay it, with and without checkpoints, for N matcher
// steps taken one every `--step-ms` (state layer only: the same take, checkpoint, check and
// compaction the replica runs; a second node acknowledges each checkpoint at once).
//
//   node --expose-gc --import tsx scripts/bench/market-checkpoint.ts -- [--steps 20000]
//     [--accounts 50] [--step-ms 200] [--settle-every 300] [--seed 1]
//
// With the defaults the history spans 67 min, three times the retention window (closed orders
// and fills older than it are no longer kept), so the folded document holds the open book,
// every account's totals and the last 21 min.

import * as Y from 'yjs'
import { signatureWindowMsDefault } from '../../src/constants'
import { recognizeMs } from '../../src/domain/checkpoint'
import * as reconciler from '../../src/domain/reconciler'
import { readCatalog } from '../../src/instruments'
import * as market from '../../src/state/market-doc'
import * as marketCheckpoint from '../../src/state/market-checkpoint'
import * as marketState from '../../src/state/market-state'
import { integerOption, parseOptions, runMain, UsageError } from '../lib/cli'
import { integerBetween, seededRandom } from '../lib/random'

const usage =
  'usage: node --expose-gc --import tsx scripts/bench/market-checkpoint.ts -- [--steps N] ' +
  '[--accounts N] [--step-ms N] [--settle-every N] [--seed N]'

const t0 = 1_700_000_000_000
const instrument = readCatalog(undefined).get('BTC-PERP')!
const options: marketState.MarketOptions = {
  retentionMs: recognizeMs(signatureWindowMsDefault),
  members: ['a', 'b'],
}
const checkpointIntervalMs = 60_000

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect === undefined) throw new UsageError('run node with --expose-gc')
  for (let i = 0; i < 3; i++) collect()
}

/** Heap and time taken by a document loaded from `update` and its market state replayed. */
function load(update: Uint8Array): { heapBytes: number; replayMs: number; state: unknown } {
  gc()
  const before = process.memoryUsage().heapUsed
  const started = performance.now()
  const doc = new Y.Doc()
  Y.applyUpdate(doc, update)
  const state = marketState.replay(instrument, doc, options)
  const replayMs = performance.now() - started
  gc()
  return { heapBytes: process.memoryUsage().heapUsed - before, replayMs, state: [doc, state] }
}

/** One matcher's history, written into a document with checkpoints or without. */
function build(
  steps: number,
  accounts: number,
  stepMs: number,
  settleEvery: number,
  seed: number,
  folded: boolean,
) {
  const random = seededRandom(seed)
  const doc = new Y.Doc()
  const state = marketState.replay(instrument, doc, options)
  const mark = 60_000n * 10n ** BigInt(instrument.priceDecimals)
  let epoch = 0
  for (let i = 1; i <= steps; i++) {
    const ts = t0 + i * stepMs
    const input: market.StepInput =
      i % settleEvery === 0
        ? {
            kind: 'settle',
            epoch: epoch++,
            mark: mark.toString(),
            fundingRate: reconciler.fundingRate(state.book, mark).toString(),
            liquidate: [],
            receivedAt: ts,
          }
        : {
            kind: 'order',
            orderId: `o${i}`,
            clientOrderId: `c${i}`,
            accountId: `acct-${integerBetween(random, 0, accounts - 1)}`,
            side: random() < 0.5 ? 'buy' : 'sell',
            type: 'limit',
            price: String(integerBetween(random, 59_980, 60_020)),
            size: `0.0${integerBetween(random, 1, 9)}`,
            timeInForce: random() < 0.3 ? 'IOC' : 'GTC',
            reduceOnly: false,
            receivedAt: ts,
          }
    doc.transact(() => {
      const step = marketState.take(state, input, { ts, node: 'a' }, 0)
      market.steps(doc).set(market.stepKeyOf(0, step.seq), step)
      if (!folded || input.kind !== 'settle') return
      if (!marketCheckpoint.due(doc, state, ts, checkpointIntervalMs)) return
      const checkpoint = marketState.checkpointHere(state, input.epoch, ts, 'a')
      market.marketCheckpoints(doc).set(checkpoint.id, checkpoint)
      for (const node of options.members) {
        const id = market.marketAckKey(checkpoint.id, node)
        market.marketCheckpointAcks(doc).set(id, { id, checkpoint: checkpoint.id, node })
      }
    })
    if (!folded || input.kind !== 'settle') continue
    marketState.catchUp(state, doc)
    if (state.base !== null) doc.transact(() => marketCheckpoint.compact(doc, state.base!))
  }
  return { doc, state }
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseOptions(argv, {
    steps: { type: 'string', default: '20000' },
    accounts: { type: 'string', default: '50' },
    'step-ms': { type: 'string', default: '200' },
    'settle-every': { type: 'string', default: '300' },
    seed: { type: 'string', default: '1' },
  })
  const steps = integerOption('--steps', parsed.steps, 10, 1_000_000)
  const accounts = integerOption('--accounts', parsed.accounts, 2, 100_000)
  const stepMs = integerOption('--step-ms', parsed['step-ms'], 1, 3_600_000)
  const settleEvery = integerOption('--settle-every', parsed['settle-every'], 2, 1_000_000)
  const seed = integerOption('--seed', parsed.seed, 0, 2 ** 31)
  const rows = []
  for (const folded of [false, true]) {
    const { doc, state } = build(steps, accounts, stepMs, settleEvery, seed, folded)
    const update = Y.encodeStateAsUpdate(doc)
    const loaded = load(update)
    rows.push({
      document: folded ? 'checkpoints' : 'whole history',
      encodedBytes: update.byteLength,
      heapBytes: loaded.heapBytes,
      replayMs: Math.round(loaded.replayMs),
      stepsHeld: market.steps(doc).size,
      ordersKept: state.orders.size,
      resting: state.book.orders.size,
      checkpointBytes:
        state.base === null ? 0 : new TextEncoder().encode(JSON.stringify(state.base)).byteLength,
    })
  }
  console.log(JSON.stringify({ steps, accounts, stepMs, settleEvery, seed, rows }, null, 2))
  return 0
}

runMain('market-checkpoint', usage, main)
