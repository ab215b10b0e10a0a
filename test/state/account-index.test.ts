// The account index is derived state: after any local command sequence, any remote update order
// and any overwrite or delete, it must list exactly what a full fold of the document lists.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as ledger from '../../src/domain/ledger'
import * as accountIndex from '../../src/state/account-index'
import * as commands from '../../src/state/commands'
import { hasPending } from '../../src/state/digest'
import * as shard from '../../src/state/shard-doc'
import { apply, context, figuresOf, prng, replica, withdraw, type Replica } from './harness'

/** Every account's transfers, from the index and from a scan of the whole document. */
function expectIndexMatchesFold(doc: Y.Doc, index: accountIndex.AccountIndex) {
  const all = [...shard.transfers(doc).values()]
  const accounts = new Set<string>([...index.byAccount.keys()])
  for (const t of all) accounts.add(t.from).add(t.to)
  for (const account of accounts) {
    const byId = (a: ledger.Transfer, b: ledger.Transfer) => (a.id < b.id ? -1 : 1)
    const indexed = [...accountIndex.transfersOf(index, account)].sort(byId)
    const scanned = all.filter((t) => t.from === account || t.to === account).sort(byId)
    expect(indexed).toEqual(scanned)
    expect(ledger.balanceOf(indexed, account)).toBe(ledger.balances(all).get(account) ?? 0n)
  }
}

type Step =
  | { kind: 'open'; account: string }
  | { kind: 'deposit' | 'withdrawal'; account: string; requestId: string; amount: bigint }

const accountArb = fc.constantFrom('alice', 'bob', 'carol')
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 1, arbitrary: accountArb.map((account) => ({ kind: 'open' as const, account })) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constantFrom('deposit' as const, 'withdrawal' as const),
      account: accountArb,
      requestId: fc.constantFrom('r1', 'r2', 'r3', 'r4', 'r5'),
      amount: fc.bigInt({ min: 1n, max: 10n ** 9n }),
    }),
  },
)

function step(r: Replica, s: Step, now: number) {
  const at = context(r.name, now)
  r.doc.transact(() => {
    if (s.kind === 'open') commands.createAccount(r.doc, { accountId: s.account }, at)
    else if (s.kind === 'deposit') {
      const input = { accountId: s.account, depositId: s.requestId, amount: s.amount }
      commands.deposit(r.doc, { ...input, requestDigest: `${s.amount}` }, at)
    } else {
      const input = { accountId: s.account, withdrawalId: s.requestId, amount: s.amount }
      withdraw(r.doc, r.index, { ...input, requestDigest: `${s.amount}` }, at)
    }
  })
}

describe('account index', () => {
  it('is empty for an account with no transfers', () => {
    const { index } = replica('n0', 1)
    expect([...accountIndex.transfersOf(index, 'nobody')]).toEqual([])
  })

  it('matches a full fold after any local command sequence', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 50 }), (steps) => {
        const r = replica('n0', 1)
        steps.forEach((s, i) => {
          step(r, s, i)
          expectIndexMatchesFold(r.doc, r.index)
        })
        // An index built afresh from the finished document is the same index.
        const rebuilt = accountIndex.observe(r.doc)
        expectIndexMatchesFold(r.doc, rebuilt)
      }),
      { numRuns: 150 },
    )
  })

  it('matches a full fold after every remote update, in any order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1 }), stepArb), { maxLength: 40 }),
        fc.integer(),
        (steps, seed) => {
          const writers = [replica('n0', 1), replica('n1', 2)]
          for (const w of writers) step(w, { kind: 'open', account: 'alice' }, 0)
          steps.forEach(([w, s], i) => step(writers[w]!, s, i + 1))

          const reader = replica('reader', 3)
          const updates = writers.flatMap((w) => w.own)
          const random = prng(seed)
          for (let i = updates.length - 1; i > 0; i--) {
            const j = Math.floor(random() * (i + 1))
            ;[updates[i], updates[j]] = [updates[j]!, updates[i]!]
          }
          for (const update of updates) {
            apply(reader.doc, update)
            expectIndexMatchesFold(reader.doc, reader.index)
          }
          expect(hasPending(reader.doc)).toBe(false)
          // The writers' indexes also follow the merge, concurrent writes of one key included.
          for (const w of writers) {
            for (const other of writers) apply(w.doc, Y.encodeStateAsUpdate(other.doc))
            expectIndexMatchesFold(w.doc, w.index)
          }
        },
      ),
      { numRuns: 150 },
    )
  })

  it('drops the losing value when a concurrent write of the same key is merged', () => {
    const low = replica('low', 10)
    const high = replica('high', 20)
    for (const r of [low, high]) {
      step(r, { kind: 'open', account: 'alice' }, 0)
      step(r, { kind: 'open', account: 'bob' }, 0)
    }
    const loser: ledger.Transfer = {
      id: 'deposit/alice/d1',
      kind: 'deposit',
      from: ledger.externalAccount,
      to: 'alice',
      amount: '30',
      ts: 1,
      node: 'low',
      requestDigest: 'a',
    }
    // A forged or buggy writer could even name another account under the same key.
    const winner: ledger.Transfer = { ...loser, to: 'bob', amount: '60', node: 'high' }
    shard.transfers(low.doc).set(loser.id, loser)
    shard.transfers(high.doc).set(winner.id, winner)
    expect([...accountIndex.transfersOf(low.index, 'alice')]).toEqual([loser])

    apply(low.doc, Y.encodeStateAsUpdate(high.doc))
    expect(shard.transfers(low.doc).get(loser.id)).toEqual(winner)
    expect([...accountIndex.transfersOf(low.index, 'alice')]).toEqual([])
    expect([...accountIndex.transfersOf(low.index, 'bob')]).toEqual([winner])
    expect([...accountIndex.transfersOf(low.index, ledger.externalAccount)]).toEqual([winner])
    expectIndexMatchesFold(low.doc, low.index)
  })

  it('forgets a transfer deleted from the document, locally or by a remote update', () => {
    const a = replica('a', 1)
    const b = replica('b', 2)
    step(a, { kind: 'open', account: 'alice' }, 0)
    step(a, { kind: 'deposit', account: 'alice', requestId: 'd1', amount: 5n }, 1)
    step(a, { kind: 'deposit', account: 'alice', requestId: 'd2', amount: 7n }, 2)
    apply(b.doc, Y.encodeStateAsUpdate(a.doc))
    expect(figuresOf(b.index, 'alice').collateral).toBe(12n)

    shard.transfers(a.doc).delete('deposit/alice/d1')
    expect(figuresOf(a.index, 'alice').collateral).toBe(7n)
    expectIndexMatchesFold(a.doc, a.index)

    apply(b.doc, Y.encodeStateAsUpdate(a.doc, Y.encodeStateVector(b.doc)))
    expect(figuresOf(b.index, 'alice').collateral).toBe(7n)
    expectIndexMatchesFold(b.doc, b.index)
  })
})
