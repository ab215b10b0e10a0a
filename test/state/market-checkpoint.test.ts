// Market checkpoints on plain documents: the matcher writes the market's state with a settle
// step, a peer's replay checks it, and once every member acknowledged it the steps it folds are
// deleted (a peer's remote checks take exactly those deletions) and a replay from it is exact.

import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { clockSkewMsMax } from '../../src/constants'
import * as audits from '../../src/domain/audits'
import * as fencing from '../../src/domain/fencing'
import * as matcher from '../../src/domain/matcher'
import * as money from '../../src/domain/money'
import { readCatalog } from '../../src/instruments'
import { auditedSteps, marketFiguresOf } from '../../src/state/audit-entries'
import { catchUpPieces } from '../../src/mesh/catch-up'
import * as market from '../../src/state/market-doc'
import { limitOrder } from '../support/instruments'
import * as marketCheckpoint from '../../src/state/market-checkpoint'
import * as marketState from '../../src/state/market-state'
import { marketChecks, refusal } from '../../src/state/remote-checks'

const instrument = readCatalog(undefined).get('BTC-PERP')!
const members = ['a', 'b']
const retentionMs = 1_000
const options: marketState.MarketOptions = { retentionMs, members }
const intervalMs = 1_000

const order = limitOrder

const settle = (epoch: number): market.SettleInput => ({
  kind: 'settle',
  epoch,
  mark: String(60_000n * 10n ** BigInt(instrument.priceDecimals)),
  fundingRate: '100',
  liquidate: [],
  receivedAt: 0,
})

/** The matcher on node `a`: each step at its own time, a settle step with a checkpoint when due. */
function matcherNode() {
  const doc = new Y.Doc()
  const state = marketState.replay(instrument, doc, options)
  return {
    doc,
    state,
    take(input: market.StepInput, ts: number) {
      doc.transact(() => {
        const step = marketState.take(state, { ...input, receivedAt: ts }, { ts, node: 'a' }, 0)
        market.steps(doc).set(market.stepKeyOf(0, step.seq), step)
        if (input.kind !== 'settle' || !marketCheckpoint.due(doc, state, ts, intervalMs)) return
        const checkpoint = marketState.checkpointHere(state, input.epoch, ts, 'a')
        market.marketCheckpoints(doc).set(checkpoint.id, checkpoint)
        acknowledge(doc, checkpoint.id, 'a')
      })
    },
  }
}

function acknowledge(doc: Y.Doc, checkpoint: string, node: string) {
  const id = market.marketAckKey(checkpoint, node)
  market.marketCheckpointAcks(doc).set(id, { id, checkpoint, node })
}

/** A history: an old fill, a later resting pair, a settle step with a checkpoint, and more. */
function history() {
  const a = matcherNode()
  a.take(order('old-ask', 'maker', 'sell', '60000'), 100)
  a.take(order('old-bid', 'taker', 'buy', '60000'), 200) // fills old-ask: both closed
  a.take(order('rests', 'maker', 'sell', '61000', '0.02'), 2_000)
  a.take(order('half', 'taker', 'buy', '61000'), 2_100) // half of rests, closed itself
  a.take(settle(7), 3_000)
  a.take(order('after', 'other', 'buy', '61000'), 3_100) // fills the rest of rests
  return a
}

const peerOf = (from: Y.Doc) => {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(from))
  return doc
}

const viewOf = (state: marketState.MarketState) => ({
  depth: matcher.depth(state.book, 10),
  positions: Object.fromEntries(state.book.positions),
  next: state.nextSeq,
  orders: Object.fromEntries(state.orders),
  accounts: Object.fromEntries(
    [...state.accounts].map(([id, a]) => [
      id,
      { realized: a.realized, fees: a.fees, funding: a.funding },
    ]),
  ),
})

/** Applies `update` to `doc` as a peer's, returning why the remote checks refuse it. */
function fromPeer(doc: Y.Doc, update: Uint8Array, mesh = members): string | undefined {
  const signers = { publicKey: 'x'.repeat(43), nodeKeys: null, onForged: () => undefined }
  const rules = marketChecks(signers, mesh)
  let refused: string | undefined
  doc.once('afterTransaction', (transaction: Y.Transaction) => {
    refused = refusal(doc, transaction, rules, false)
  })
  Y.applyUpdate(doc, update, 'peer:a')
  return refused
}

describe('market checkpoints', () => {
  it("is checked by a peer's own replay, and a tampered one is not acknowledged", () => {
    const a = history()
    const b = marketState.replay(instrument, peerOf(a.doc), options)
    expect(b.checks).toEqual([{ checkpoint: market.stepKeyOf(0, 5), epoch: 7, differences: [] }])

    const forged = peerOf(a.doc)
    const written = market.marketCheckpoints(forged).get(market.stepKeyOf(0, 5))!
    // Another writer's copy differs only in who wrote it: still the same checkpoint.
    market.marketCheckpoints(forged).set(written.id, { ...written, node: 'b' })
    expect(marketState.replay(instrument, forged, options).checks[0]!.differences).toEqual([])
    market.marketCheckpoints(forged).set(written.id, {
      ...written,
      positions: { ...written.positions, maker: { size: '0', cost: '0' } },
    })
    expect(marketState.replay(instrument, forged, options).checks[0]!.differences).toEqual([
      'positions',
    ])
  })

  it('keeps open orders and totals whole, and closed history from the retention window', () => {
    const a = history()
    const checkpoint = marketCheckpoint.latest(a.doc)!
    expect(checkpoint.retainFrom).toBe(3_000 - retentionMs)
    expect(Object.keys(checkpoint.orders).sort()).toEqual(['half', 'rests'])
    expect(checkpoint.resting.map((o) => o.orderId)).toEqual(['rests'])
    expect(checkpoint.accounts.maker!.fills.map((f) => f.ts)).toEqual([2_100])
    // The totals still count the fill of 100 ms that the checkpoint no longer lists.
    const fee = (text: string) => money.parse(text, { ...money.usdTransfer, allowZero: true })
    const fees = [200, 2_100].map((ts) => {
      const fill = a.state.accounts.get('maker')!.fills.find((f) => f.ts === ts)!.fill
      const parsed = fee(fill.makerFee)
      return parsed.ok ? parsed.value : 0n
    })
    expect(BigInt(checkpoint.accounts.maker!.fees)).toBe(fees[0]! + fees[1]!)
    expect(fees[0]).toBeGreaterThan(0n)
    expect(Object.keys(checkpoint.settlements)).toEqual(['7'])
  })

  it('is in force only once every member acknowledged it', () => {
    const a = history()
    expect(marketCheckpoint.inForce(a.doc, members)).toBeUndefined()
    acknowledge(a.doc, market.stepKeyOf(0, 5), 'b')
    expect(marketCheckpoint.inForce(a.doc, members)?.epoch).toBe(7)
    expect(marketCheckpoint.inForce(a.doc, [...members, 'c'])).toBeUndefined()
  })

  it('replays exactly from the checkpoint once its steps are compacted, and goes on alike', () => {
    const a = history()
    acknowledge(a.doc, market.stepKeyOf(0, 5), 'b')
    const whole = marketState.replay(instrument, peerOf(a.doc), options)
    const inForce = marketCheckpoint.inForce(a.doc, members)!
    a.doc.transact(() => marketCheckpoint.compact(a.doc, inForce))
    expect([...market.steps(a.doc).keys()]).toEqual([market.stepKeyOf(0, 6)])

    const reloaded = marketState.replay(instrument, peerOf(a.doc), options)
    expect(reloaded.base?.id).toBe(inForce.id)
    expect(viewOf(reloaded).depth).toEqual(viewOf(whole).depth)
    expect(viewOf(reloaded).positions).toEqual(viewOf(whole).positions)
    expect(viewOf(reloaded).accounts).toEqual(viewOf(whole).accounts)
    expect(reloaded.nextSeq).toBe(whole.nextSeq)
    // Orders closed before the window are no longer kept; every other view is the same.
    expect(Object.keys(viewOf(reloaded).orders).sort()).toEqual(['after', 'half', 'rests'])
    for (const id of ['after', 'half', 'rests']) {
      expect(reloaded.orders.get(id)).toEqual(whole.orders.get(id))
    }

    // The next steps fold the same on the compacted document as on the whole one.
    a.take(order('later', 'other', 'sell', '59000'), 4_000)
    const doc = peerOf(a.doc)
    marketState.catchUp(reloaded, doc)
    const again = marketState.replay(instrument, doc, options)
    expect(viewOf(reloaded)).toEqual(viewOf(again))
    expect(reloaded.divergence).toBeNull()
    expect(reloaded.complete).toBe(true)
  })

  it("takes a peer's compaction only once the checkpoint is in force there", () => {
    const a = history()
    const b = peerOf(a.doc)
    acknowledge(a.doc, market.stepKeyOf(0, 5), 'b')
    a.doc.transact(() => marketCheckpoint.compact(a.doc, marketCheckpoint.inForce(a.doc, members)!))
    // In a mesh of three, c has not acknowledged: not in force there, the deletions are refused.
    const early = peerOf(b)
    const update = Y.encodeStateAsUpdate(a.doc, Y.encodeStateVector(early))
    expect(fromPeer(early, update, [...members, 'c'])).toMatch(/would be deleted/)
    // b's acknowledgement comes with the deletions: a compaction in force, taken.
    expect(fromPeer(b, Y.encodeStateAsUpdate(a.doc, Y.encodeStateVector(b)))).toBeUndefined()
    expect(market.steps(b).size).toBe(1)
  })

  it('rebuilds a wiped node from the compacted document piece by piece', () => {
    const a = history()
    acknowledge(a.doc, market.stepKeyOf(0, 5), 'b')
    a.doc.transact(() => marketCheckpoint.compact(a.doc, marketCheckpoint.inForce(a.doc, members)!))
    // Small pieces: the deleted steps travel before the acknowledgements that put the
    // checkpoint in force; the wiped node never held them, so taking them deletes nothing.
    const wiped = new Y.Doc()
    const pieces = [...catchUpPieces(a.doc, new Map(), 600)]
    expect(pieces.length).toBeGreaterThan(2)
    for (const piece of pieces) expect(fromPeer(wiped, piece)).toBeUndefined()
    expect(viewOf(marketState.replay(instrument, wiped, options))).toEqual(
      viewOf(marketState.replay(instrument, peerOf(a.doc), options)),
    )
  })

  it('refuses a peer deleting a step after the checkpoint in force', () => {
    const a = history()
    acknowledge(a.doc, market.stepKeyOf(0, 5), 'b')
    const b = peerOf(a.doc)
    a.doc.transact(() => market.steps(a.doc).delete(market.stepKeyOf(0, 6)))
    expect(fromPeer(b, Y.encodeStateAsUpdate(a.doc, Y.encodeStateVector(b)))).toMatch(
      /steps\/000000000006 would be deleted/,
    )
  })

  it('writes the next checkpoint once the last is in force and the interval has passed', () => {
    const a = history()
    const written = () => [...market.marketCheckpoints(a.doc).values()].map((c) => c.epoch)
    a.take(settle(8), 5_000)
    expect(written()).toEqual([7]) // epoch 7's waits for b
    acknowledge(a.doc, market.stepKeyOf(0, 5), 'b')
    marketState.catchUp(a.state, a.doc)
    expect(a.state.base?.epoch).toBe(7)
    a.take(settle(9), 3_500)
    expect(written()).toEqual([7]) // in force, but not the interval old
    a.take(settle(10), 4_000)
    expect(written()).toEqual([7, 10])
  })

  it('is not held up by a checkpoint whose settle step a newer term fenced', () => {
    const a = history()
    const stale = { ...marketCheckpoint.latest(a.doc)!, id: market.stepKeyOf(1, 9), epoch: 40 }
    market.marketCheckpoints(a.doc).set(stale.id, { ...stale, at: { term: 1, seq: 9 } })
    acknowledge(a.doc, market.stepKeyOf(0, 5), 'b')
    marketState.catchUp(a.state, a.doc)
    a.take(settle(11), 4_500)
    const epochs = [...market.marketCheckpoints(a.doc).values()].map((c) => c.epoch)
    expect(epochs).toContain(11)
  })

  it('does not take again an order recorded before the window its history is kept', () => {
    const base = marketCheckpoint.latest(history().doc)!
    expect(marketCheckpoint.mayHaveFolded(null, 0)).toBe(false)
    // Recorded on a shard whose clock may run clockSkewMsMax behind the matcher's.
    expect(marketCheckpoint.mayHaveFolded(base, base.retainFrom + clockSkewMsMax - 1)).toBe(true)
    expect(marketCheckpoint.mayHaveFolded(base, base.retainFrom + clockSkewMsMax)).toBe(false)
  })

  it('starts the chain after the checkpoint: older steps are folded, not gaps or fenced', () => {
    const base = { term: 2, seq: 5 }
    const chain = fencing.chainOf(
      [
        { term: 0, seq: 6, continues: null }, // an older term's late step: folded
        { term: 2, seq: 4, continues: null },
        { term: 2, seq: 6, continues: null },
        { term: 2, seq: 7, continues: null },
      ],
      base,
    )
    expect(chain.applied.map((h) => h.seq)).toEqual([6, 7])
    expect(chain).toMatchObject({ folded: 2, fenced: [], complete: true, headTerm: 2 })
  })

  it('audits the steps after the checkpoint from its figures', () => {
    const a = history()
    acknowledge(a.doc, market.stepKeyOf(0, 5), 'b')
    const base = marketCheckpoint.inForce(a.doc, members)!
    a.doc.transact(() => marketCheckpoint.compact(a.doc, base))
    const steps = auditedSteps(instrument, a.doc, base)
    expect(steps.map((s) => s.seq)).toEqual([6])
    const figures = marketFiguresOf(instrument, base)
    expect(figures.netSize).toBe(0n)
    const { violations } = audits.auditMarket(steps, instrument.notionalScale, figures)
    expect(violations).toEqual([])
  })
})
