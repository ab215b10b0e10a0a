// The fenced fold of a market document: a term-1 holder (cut off, or paused past its lease)
// writes steps no majority confirmed while a term-2 holder continues from an earlier step. Both
// terms' entries, merged into replicas in either order, fold into the same book, in which the
// fenced steps' fills never happened and their orders end rejected, `fenced`.

import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as audits from '../../src/domain/audits'
import * as matcher from '../../src/domain/matcher'
import { auditedSteps } from '../../src/state/audit-entries'
import { readCatalog } from '../../src/instruments'
import * as market from '../../src/state/market-doc'
import { limitOrder } from '../support/instruments'
import * as marketState from '../../src/state/market-state'

const instrument = readCatalog(undefined).get('BTC-PERP')!
const options: marketState.MarketOptions = { retentionMs: 60_000, members: ['a', 'b'] }

const order = limitOrder

/** A matcher of `term` on `node` writing into its own replica, as the market replica does. */
function matcherOn(node: string, from: Y.Doc | null) {
  const doc = new Y.Doc()
  if (from !== null) Y.applyUpdate(doc, Y.encodeStateAsUpdate(from))
  const state = marketState.replay(instrument, doc, options)
  return {
    doc,
    state,
    take(input: market.StepInput, term: number) {
      doc.transact(() => {
        const step = marketState.take(state, input, { ts: 1, node }, term)
        market.steps(doc).set(market.stepKeyOf(term, step.seq), step)
      })
    },
  }
}

const merged = (first: Y.Doc, second: Y.Doc) => {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(first))
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(second))
  return marketState.replay(instrument, doc, options)
}

const bookOf = (state: marketState.MarketState) => ({
  depth: matcher.depth(state.book, 10),
  positions: Object.fromEntries(state.book.positions),
  next: state.nextSeq,
  term: state.term,
})

/**
 * a (term 1) rests a sell; b is granted term 2 after catching up from its grantors, so it holds
 * a's first step only; a, cut off and past its lease, then fills against it (no majority
 * confirmed that step) while b takes `fresh` in term 2.
 */
function twoTerms(fresh: market.OrderInput) {
  const a = matcherOn('a', null)
  a.take(order('rest-1', 'maker', 'sell', '60000'), 1)
  const b = matcherOn('b', a.doc)
  a.take(order('stale-buy', 'taker', 'buy', '60000'), 1)
  b.take(fresh, 2)
  return { a, b }
}

describe('the fenced fold', () => {
  it('folds two terms merged in either order into one book, without the fenced fills', () => {
    const { a, b } = twoTerms(order('fresh-buy', 'other', 'buy', '59000'))

    const ab = merged(a.doc, b.doc)
    const ba = merged(b.doc, a.doc)
    expect(bookOf(ab)).toEqual(bookOf(ba))
    // The term-1 fill is fenced: the maker still rests, nobody holds a position.
    expect(ab.book.orders.has('rest-1')).toBe(true)
    expect(ab.book.orders.has('fresh-buy')).toBe(true)
    expect([...ab.book.positions.values()].every((p) => p.size === 0n)).toBe(true)
    expect(ab.orders.get('stale-buy')).toMatchObject({ status: 'rejected', reason: 'fenced' })
    expect(ab.term).toBe(2)
    expect(ab.complete).toBe(true)
  })

  it("rebuilds a replica that applied the old term's steps once the new term reaches it", () => {
    const { a, b } = twoTerms(order('fresh-sell', 'other', 'sell', '60500'))
    expect(a.state.book.orders.has('rest-1')).toBe(false)

    Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc))
    marketState.catchUp(a.state, a.doc)
    expect(bookOf(a.state)).toEqual(bookOf(marketState.replay(instrument, b.doc, options)))
    expect(a.state.orders.get('stale-buy')?.reason).toBe('fenced')
    expect(a.state.divergence).toBeNull()
  })

  it("audits the chain the book folds from: the fenced term's steps are not judged", () => {
    const { a, b } = twoTerms(order('fresh-buy', 'other', 'buy', '59000'))
    const doc = new Y.Doc()
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(a.doc))
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(b.doc))
    const steps = auditedSteps(instrument, doc)
    // Term 1's first step, then term 2's start: the fenced fill of stale-buy is not among them.
    expect(steps.map((step) => step.order?.orderId)).toEqual(['rest-1', 'fresh-buy'])
    expect(audits.auditMarket(steps, instrument.notionalScale).violations).toEqual([])
  })
})
