// Epoch checkpoints over shard documents: a checkpoint folds exactly what its cut holds, a node
// whose own fold differs never acknowledges, and once every member has acknowledged, compaction
// deletes the folded entries while every balance, every right and every request id's answer stay
// exactly what they were, before and after a reload.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as folding from '../../src/domain/checkpoint'
import type { Grant } from '../../src/domain/escrow'
import * as ledger from '../../src/domain/ledger'
import * as money from '../../src/domain/money'
import { catchUpPieces } from '../../src/mesh/catch-up'
import * as accountIndex from '../../src/state/account-index'
import * as checkpoint from '../../src/state/checkpoint'
import * as commands from '../../src/state/commands'
import { refusal, shardChecks } from '../../src/state/remote-checks'
import * as shard from '../../src/state/shard-doc'
import { apply, context, replica, withdraw, type Replica } from './harness'

const t0 = 1_700_000_000_000
const windowMs = 5_000
const members = ['a', 'b']

const sync = (from: Replica, to: Replica) =>
  apply(to.doc, Y.encodeStateAsUpdate(from.doc, Y.encodeStateVector(to.doc)))

function deposit(r: Replica, accountId: string, id: string, amount: bigint, now = t0) {
  return r.doc.transact(() =>
    commands.deposit(
      r.doc,
      { depositId: id, accountId, amount, requestDigest: `d-${id}` },
      context(r.name, now),
    ),
  )
}

function withdrawal(r: Replica, accountId: string, id: string, amount: bigint, now = t0) {
  return r.doc.transact(() =>
    withdraw(
      r.doc,
      r.index,
      { withdrawalId: id, accountId, amount, requestDigest: `w-${id}` },
      context(r.name, now),
    ),
  )
}

/** The writer cuts epoch `epoch` of its document at `cutTime`. */
function cut(writer: Replica, epoch: number, cutTime: number): shard.Checkpoint {
  const stateVector = checkpoint.currentCut(writer.doc)
  const fold = checkpoint.foldAt(writer.doc, writer.index.inForce, stateVector, cutTime, windowMs)
  const entry: shard.Checkpoint = {
    id: shard.checkpointKey(epoch),
    epoch,
    shard: 0,
    base: writer.index.inForce?.checkpoint.epoch ?? null,
    cut: stateVector,
    cutTime,
    writer: writer.name,
    members,
    ...fold,
  }
  writer.doc.transact(() => shard.checkpoints(writer.doc).set(entry.id, entry))
  return entry
}

/** A member folds the checkpoint from its own document and says whether it gets the same. */
function confirms(r: Replica, entry: shard.Checkpoint): boolean {
  const fold = checkpoint.foldAt(r.doc, r.index.inForce, entry.cut, entry.cutTime, windowMs)
  return checkpoint.foldDifferences(fold, entry).length === 0
}

/** Acknowledges without a signature: this layer does not check them (remote checks do). */
function ack(r: Replica, entry: shard.Checkpoint) {
  const id = shard.ackKey(entry.epoch, r.name)
  r.doc.transact(() =>
    shard.checkpointAcks(r.doc).set(id, {
      id,
      epoch: entry.epoch,
      node: r.name,
      root: entry.root,
      publicKey: '',
      signature: '',
    }),
  )
}

/** Writer `a` cuts `epoch`; both members acknowledge it; both documents have every ack. */
function acknowledgedByBoth(a: Replica, b: Replica, epoch: number, cutTime: number) {
  const entry = cut(a, epoch, cutTime)
  sync(a, b)
  ack(a, entry)
  ack(b, entry)
  sync(b, a)
  return entry
}

const figures = (r: Replica, accounts: string[]) =>
  accounts.map((account) => ({
    account,
    balance: accountIndex.balanceOf(r.index, account),
    rights: [...accountIndex.rightsOf(r.index, account)].sort(),
  }))

function twoReplicas() {
  const a = replica('a', 1)
  const b = replica('b', 2)
  for (const account of ['alice', 'bob']) {
    a.doc.transact(() => commands.createAccount(a.doc, { accountId: account }, context('a', t0)))
  }
  deposit(a, 'alice', 'd1', 100_000_000n)
  deposit(a, 'bob', 'd2', 50_000_000n)
  sync(a, b)
  withdrawal(b, 'alice', 'w1', 30_000_000n)
  b.doc.transact(() =>
    commands.grantRights(
      b.doc,
      { id: 'alice/a/1', accountId: 'alice', node: 'a', amount: '5', ts: t0 },
      5_000_000n,
      context('b', t0),
    ),
  )
  sync(b, a)
  return { a, b }
}

describe('domain/checkpoint.foldInto', () => {
  const transferArb = fc.record({
    kind: fc.constantFrom('deposit' as const, 'withdrawal' as const),
    account: fc.constantFrom('alice', 'bob'),
    node: fc.constantFrom('a', 'b'),
    amount: fc.bigInt({ min: 1n, max: 10n ** 9n }),
  })
  const grantArb = fc.record({
    account: fc.constantFrom('alice', 'bob'),
    from: fc.constantFrom('a', 'b', 'c'),
    amount: fc.bigInt({ min: 1n, max: 10n ** 9n }),
  })
  const toTransfer = (
    t: ReturnType<typeof transferArb.generate>['value'],
    i: number,
  ): ledger.Transfer => ({
    id: `t${i}`,
    kind: t.kind,
    from: t.kind === 'deposit' ? ledger.externalAccount : t.account,
    to: t.kind === 'deposit' ? t.account : ledger.externalAccount,
    amount: money.formatUsd(t.amount),
    ts: t0 + i,
    node: t.node,
    requestDigest: 'digest',
  })
  const toGrant = (g: ReturnType<typeof grantArb.generate>['value'], i: number): Grant => ({
    id: `g${i}`,
    accountId: g.account,
    from: g.from,
    to: g.from === 'a' ? 'b' : 'a',
    amount: money.formatUsd(g.amount),
    ts: t0 + i,
  })

  it('folds a prefix into openings, then the rest, to what folding everything gives (property)', () => {
    fc.assert(
      fc.property(
        fc.array(transferArb, { maxLength: 30 }),
        fc.array(grantArb, { maxLength: 10 }),
        fc.nat(),
        (rawTransfers, rawGrants, split) => {
          const transfers = rawTransfers.map(toTransfer)
          const grants = rawGrants.map(toGrant)
          const at = split % (transfers.length + 1)
          const grantsAt = split % (grants.length + 1)
          const whole = folding.foldInto(new Map(), transfers, grants)
          const opened = folding.foldInto(
            folding.foldInto(new Map(), transfers.slice(0, at), grants.slice(0, grantsAt)),
            transfers.slice(at),
            grants.slice(grantsAt),
          )
          const stored = (m: Map<string, folding.Opening>) =>
            [...m].map(([id, o]) => [id, folding.store(o)]).sort()
          expect(stored(opened)).toEqual(stored(whole))
          for (const [account, opening] of whole) {
            expect(opening.balance).toBe(ledger.balanceOf(transfers, account))
          }
          expect(
            folding.load(folding.store(whole.get('alice') ?? { balance: 0n, rights: new Map() })),
          ).toEqual(whole.get('alice') ?? { balance: 0n, rights: new Map() })
        },
      ),
    )
  })

  it('keeps ids within the retry bound: of a deposit its signedAt, of other ids their time', () => {
    const cutTime = t0 + 10 * folding.recognizeMs(windowMs)
    const recent = cutTime - folding.recognizeMs(windowMs)
    expect(folding.recognizes({ kind: 'withdrawal', ts: t0 }, cutTime, windowMs)).toBe(false)
    expect(folding.recognizes({ kind: 'withdrawal', ts: recent }, cutTime, windowMs)).toBe(true)
    expect(
      folding.recognizes({ kind: 'deposit', ts: recent, signedAt: t0 }, cutTime, windowMs),
    ).toBe(false)
    expect(
      folding.recognizes({ kind: 'deposit', ts: t0, signedAt: recent }, cutTime, windowMs),
    ).toBe(true)
    // Recorded before deposits carried a signedAt: nothing bounds a retry, so it is kept for good.
    expect(folding.recognizes({ kind: 'deposit', ts: t0 }, cutTime, windowMs)).toBe(true)
    expect(folding.recognizeMs(windowMs)).toBeGreaterThan(2 * windowMs)
  })
})

describe('state/checkpoint', () => {
  it('is not in force until every member acknowledges, then compacts without changing a figure', () => {
    const { a, b } = twoReplicas()
    const before = figures(a, ['alice', 'bob'])
    const entry = cut(a, 1, t0 + 1_000)
    sync(a, b)
    expect(confirms(b, entry)).toBe(true)
    expect(confirms(a, entry)).toBe(true)
    ack(a, entry)
    expect(checkpoint.inForce(a.doc)).toBeUndefined()
    ack(b, entry)
    sync(b, a)
    sync(a, b)
    expect(a.index.inForce?.checkpoint.epoch).toBe(1)
    // In force but not yet compacted: the folded entries are counted once, from the checkpoint.
    expect(figures(a, ['alice', 'bob'])).toEqual(before)
    const deleted = a.doc.transact(() => checkpoint.compact(a.doc, a.index.inForce!))
    expect(deleted).toBe(4)
    expect(shard.transfers(a.doc).size).toBe(0)
    expect(shard.grants(a.doc).size).toBe(0)
    expect(figures(a, ['alice', 'bob'])).toEqual(before)
    expect(before[0]!.balance).toBe(70_000_000n)
    // A reload from the compacted document gives the same figures.
    const reloaded = replica('a2', 3)
    apply(reloaded.doc, Y.encodeStateAsUpdate(a.doc))
    expect(figures(reloaded, ['alice', 'bob'])).toEqual(before)
    // The peer takes the compaction (its deletions pass its remote checks) and agrees.
    const update = Y.encodeStateAsUpdate(a.doc, Y.encodeStateVector(b.doc))
    let refused: string | undefined
    b.doc.once('afterTransaction', (transaction: Y.Transaction) => {
      refused = refusal(b.doc, transaction, checks, false)
    })
    apply(b.doc, update)
    expect(refused).toBeUndefined()
    expect(shard.transfers(b.doc).size).toBe(0)
    expect(figures(b, ['alice', 'bob'])).toEqual(before)
  })

  it('answers a retry of a folded request id from the checkpoint: replay, or conflict', () => {
    const { a, b } = twoReplicas()
    acknowledgedByBoth(a, b, 1, t0 + 1_000)
    a.doc.transact(() => checkpoint.compact(a.doc, a.index.inForce!))
    const replayed = deposit(a, 'alice', 'd1', 100_000_000n)
    expect(replayed.ok && replayed.value.replayed).toBe(true)
    const retried = withdrawal(a, 'alice', 'w1', 30_000_000n)
    expect(retried.ok && retried.value.replayed).toBe(true)
    const conflict = a.doc.transact(() =>
      commands.deposit(
        a.doc,
        { depositId: 'd1', accountId: 'alice', amount: 1n, requestDigest: 'another' },
        context('a'),
      ),
    )
    expect(!conflict.ok && conflict.code).toBe('idempotency_conflict')
    expect(accountIndex.balanceOf(a.index, 'alice')).toBe(70_000_000n)
    const grant = { id: 'alice/a/1', accountId: 'alice', node: 'a', amount: '5', ts: t0 }
    expect(
      b.doc.transact(() => commands.grantRights(a.doc, grant, 1n, context('b'))),
    ).toBeUndefined()
  })

  it('forgets a deposit once its signedAt is past the retry bound, one without it never', () => {
    const { a, b } = twoReplicas()
    a.doc.transact(() =>
      commands.deposit(
        a.doc,
        { depositId: 'd9', accountId: 'bob', amount: 1n, signedAt: t0 - 1, requestDigest: 'd-d9' },
        context('a', t0),
      ),
    )
    sync(a, b)
    const recognized = (entry: shard.Checkpoint) => Object.keys(entry.recognized).sort()
    const first = acknowledgedByBoth(a, b, 1, t0 + 1_000)
    // The record a replay answers from keeps the signed time, so a later fold can drop it.
    expect(first.recognized['deposit/bob/d9']).toMatchObject({ signedAt: t0 - 1 })
    expect(first.recognized['deposit/bob/d9']!.signature).toBeUndefined()
    const late = t0 + folding.recognizeMs(windowMs) + 1
    const second = cut(a, 2, late)
    sync(a, b)
    expect(confirms(b, second)).toBe(true)
    // d1 and d2 carry no signedAt (made before there was one): kept. w1 and d9 are past the bound.
    expect(recognized(first)).toEqual([
      'deposit/alice/d1',
      'deposit/bob/d2',
      'deposit/bob/d9',
      'withdrawal/alice/w1',
    ])
    expect(recognized(second)).toEqual(['deposit/alice/d1', 'deposit/bob/d2'])
    // A writer that keeps a deposit past its bound folds otherwise than its members: refused.
    expect(confirms(b, { ...second, recognized: first.recognized })).toBe(false)
  })

  it('builds the next checkpoint on the one in force and folds only what came after it', () => {
    const { a, b } = twoReplicas()
    acknowledgedByBoth(a, b, 1, t0 + 1_000)
    deposit(b, 'bob', 'd3', 1_000_000n, t0 + 2_000)
    sync(b, a)
    const second = cut(a, 2, t0 + 3_000)
    expect(second.base).toBe(1)
    expect(second.openings.bob!.balance).toBe('51')
    sync(a, b)
    expect(confirms(b, second)).toBe(true)
    // A writer that drops a request id it must keep recognising is not confirmed.
    const { 'withdrawal/alice/w1': dropped, ...rest } = second.recognized
    expect(dropped).toBeDefined()
    expect(confirms(b, { ...second, recognized: rest })).toBe(false)
  })

  it('confirms a cut whose entries reached the member in another order than the writer', () => {
    const a = replica('a', 1)
    const b = replica('b', 2)
    a.doc.transact(() => commands.createAccount(a.doc, { accountId: 'alice' }, context('a', t0)))
    sync(a, b)
    // Each node holds its own deposit first: their maps (and alice's rights) iterate apart.
    deposit(a, 'alice', 'd1', 100_000_000n)
    deposit(b, 'alice', 'd3', 50_000_000n)
    sync(a, b)
    sync(b, a)
    expect([...shard.transfers(a.doc).keys()]).not.toEqual([...shard.transfers(b.doc).keys()])
    const entry = cut(a, 1, t0)
    expect(confirms(b, entry)).toBe(true)
  })

  it('never confirms a cut whose entry a merged copy from outside the cut replaced', () => {
    const { a, b } = twoReplicas()
    // Node c holds everything so far, then takes withdrawal w9 concurrently with b.
    const c = replica('c', 99)
    sync(a, c)
    withdrawal(b, 'bob', 'w9', 1_000_000n)
    withdrawal(c, 'bob', 'w9', 1_000_000n)
    sync(b, a)
    const entry = cut(a, 1, t0 + 1_000)
    sync(c, b)
    const winner = shard.transfers(b.doc).get('withdrawal/bob/w9')!
    expect(confirms(b, entry)).toBe(winner.node === 'b')
  })

  it('lets a node catching up from nothing take a compacted shard piece by piece', () => {
    const { a, b } = twoReplicas()
    const before = figures(a, ['alice', 'bob'])
    acknowledgedByBoth(a, b, 1, t0 + 1_000)
    a.doc.transact(() => checkpoint.compact(a.doc, checkpoint.inForce(a.doc)!))
    // The folded entries come as tombstones, in pieces before the checkpoint that folds them.
    const pieces = [...catchUpPieces(a.doc, new Map(), 400)]
    expect(pieces.length).toBeGreaterThan(3)
    const wiped = replica('c', 4)
    // These acknowledgements carry no node signature: only the deletion rules are under test.
    const unsigned = uncheckedIn(['transfers', 'checkpointAcks'])
    const refused: string[] = []
    for (const piece of pieces) {
      wiped.doc.once('afterTransaction', (transaction: Y.Transaction) => {
        const why = refusal(wiped.doc, transaction, unsigned, false)
        if (why !== undefined) refused.push(why)
      })
      apply(wiped.doc, piece)
    }
    expect(refused).toEqual([])
    expect(figures(wiped, ['alice', 'bob'])).toEqual(before)
  })

  it('refuses a peer deleting an entry no checkpoint in force folds', () => {
    const { a, b } = twoReplicas()
    a.doc.transact(() => shard.transfers(a.doc).delete('deposit/bob/d2'))
    let refused: string | undefined
    b.doc.once('afterTransaction', (transaction: Y.Transaction) => {
      refused = refusal(b.doc, transaction, checks, false)
    })
    apply(b.doc, Y.encodeStateAsUpdate(a.doc, Y.encodeStateVector(b.doc)))
    expect(refused).toMatch(/would be deleted/)
  })
})

const rules = shardChecks(0, 1, {
  publicKey: 'x'.repeat(43),
  nodeKeys: null,
  onForged: () => undefined,
})
/** The shard's remote checks, but for the entry checks of `maps` (only deletions under test). */
const uncheckedIn = (maps: string[]) => ({
  ...rules,
  maps: new Map(
    [...rules.maps].map(([name, check]) => [name, maps.includes(name) ? () => undefined : check]),
  ),
})
// Deposits here carry no operator signature.
const checks = uncheckedIn(['transfers'])
