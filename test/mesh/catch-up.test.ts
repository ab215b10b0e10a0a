// A catch-up split into bounded updates: each piece within the bound, each applying on its own
// with nothing left pending (what remote-checks demand of every peer update), and the receiver
// ending with exactly the sender's state, from an empty replica or from part of it.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { catchUpPieces } from '../../src/mesh/catch-up'
import * as money from '../../src/domain/money'
import * as commands from '../../src/state/commands'
import { contentDigest, hasPending } from '../../src/state/digest'
import { generateOperatorKey, seal } from '../../src/state/operator-signature'
import { refusal, shardChecks } from '../../src/state/remote-checks'
import { shardOf } from '../../src/state/shard-of'
import { prng } from '../state/harness'

const stateOf = (doc: Y.Doc) => Y.decodeStateVector(Y.encodeStateVector(doc))
const piecesOf = (...args: Parameters<typeof catchUpPieces>) => [...catchUpPieces(...args)]

/** Applies every piece in order, as a replica applies a peer's updates, checking each. */
function receive(
  doc: Y.Doc,
  pieces: Uint8Array[],
  check: (doc: Y.Doc, transaction: Y.Transaction, pendingBefore: boolean) => string | undefined,
): string[] {
  const problems: string[] = []
  pieces.forEach((piece, index) => {
    doc.transact(() => {
      const pendingBefore = hasPending(doc)
      Y.applyUpdate(doc, piece)
      const refused = check(doc, doc._transaction!, pendingBefore)
      if (refused !== undefined) problems.push(`piece ${index}: ${refused}`)
    })
    if (hasPending(doc)) problems.push(`piece ${index} left structs pending`)
  })
  return problems
}

const noPending = (doc: Y.Doc, _: Y.Transaction, pendingBefore: boolean) =>
  !pendingBefore && hasPending(doc) ? 'pending' : undefined

/** Sender and receiver hold the same structs, deletions and content. */
function expectSameState(receiver: Y.Doc, sender: Y.Doc): void {
  expect(stateOf(receiver)).toEqual(stateOf(sender))
  const deleted = (doc: Y.Doc) => Y.createDeleteSetFromStructStore(doc.store)
  expect(Y.equalDeleteSets(deleted(receiver), deleted(sender))).toBe(true)
  // Root types are defined on first use: define the sender's on the receiver before comparing.
  for (const [name, type] of sender.share)
    receiver.get(name, type.constructor as typeof Y.AbstractType)
  expect(receiver.toJSON()).toEqual(sender.toJSON())
}

/**
 * `writers` replicas editing one list and one text, exchanging updates at random moments, so the
 * structs of each writer sit next to (and depend on) the others'; some are deleted. Returns the
 * merge of all of them.
 */
function interleaved(seed: number, writers: number, edits: number): Y.Doc {
  const random = prng(seed)
  const docs = Array.from({ length: writers }, (_, i) => {
    const doc = new Y.Doc()
    doc.clientID = 1_000 + i * 7_919
    return doc
  })
  for (let n = 0; n < edits; n++) {
    const doc = docs[Math.floor(random() * writers)]!
    const list = doc.getArray<string>('list')
    const text = doc.getText('text')
    const pick = random()
    if (pick < 0.4) list.insert(Math.floor(random() * (list.length + 1)), [`item-${n}`.repeat(3)])
    else if (pick < 0.8) text.insert(Math.floor(random() * (text.length + 1)), `word${n} `)
    else if (pick < 0.9 && list.length > 0) list.delete(Math.floor(random() * list.length))
    else if (text.length > 4) text.delete(Math.floor(random() * (text.length - 4)), 3)
    // Now and then one writer learns what another holds.
    if (random() < 0.3) {
      const from = docs[Math.floor(random() * writers)]!
      Y.applyUpdate(doc, Y.encodeStateAsUpdate(from, Y.encodeStateVector(doc)))
    }
  }
  const merged = new Y.Doc()
  for (const doc of docs) Y.applyUpdate(merged, Y.encodeStateAsUpdate(doc))
  return merged
}

describe('a catch-up split into bounded updates', () => {
  it('rebuilds a document of many writers piece by piece, each piece within the bound', () => {
    const sender = interleaved(7, 12, 3_000)
    const bytesMax = 2_048
    const pieces = piecesOf(sender, new Map(), bytesMax)
    expect(pieces.length).toBeGreaterThan(10)
    for (const piece of pieces) expect(piece.byteLength).toBeLessThanOrEqual(bytesMax)
    const receiver = new Y.Doc()
    expect(receive(receiver, pieces, noPending)).toEqual([])
    expectSameState(receiver, sender)
  })

  it('sends what a peer lacks from any state of its own, including part of a struct', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 31 }),
        fc.integer({ min: 64, max: 4_096 }),
        (seed, bytesMax) => {
          const sender = interleaved(seed, 6, 400)
          // The receiver holds what the same writers had written halfway.
          const receiver = new Y.Doc()
          Y.applyUpdate(receiver, Y.encodeStateAsUpdate(interleaved(seed, 6, 200)))
          const pieces = piecesOf(sender, stateOf(receiver), bytesMax)
          expect(receive(receiver, pieces, noPending)).toEqual([])
          expectSameState(receiver, sender)
        },
      ),
      { numRuns: 25 },
    )
  })

  it('starts inside a struct the peer holds part of', () => {
    const sender = new Y.Doc()
    sender.getText('text').insert(0, 'x'.repeat(5_000)) // one struct of 5,000 clock units
    // The peer holds the first half of that struct, as the same writer typed it.
    const holder = new Y.Doc()
    const prefix = new Y.Doc()
    prefix.clientID = sender.clientID
    prefix.getText('text').insert(0, 'x'.repeat(2_500))
    Y.applyUpdate(holder, Y.encodeStateAsUpdate(prefix))
    const pieces = piecesOf(sender, stateOf(holder), 1_024)
    expect(pieces.length).toBeGreaterThan(1)
    expect(receive(holder, pieces, noPending)).toEqual([])
    expectSameState(holder, sender)
  })

  it('keeps an overwritten map entry with the entry that replaced it, even across writers', () => {
    // Writer 1 sets k and appends to a list; writer 2, having both, appends after writer 1's
    // item, then overwrites k. Waiting for writer 2's structs before k's first entry would wait
    // on writer 1's append, which comes after that entry: the entry travels without waiting,
    // and everything up to its replacement travels in the same piece.
    const one = new Y.Doc()
    one.clientID = 1
    one.getMap('m').set('k', 'first')
    one.getArray('list').push(['a'.repeat(200)])
    const two = new Y.Doc()
    two.clientID = 2
    Y.applyUpdate(two, Y.encodeStateAsUpdate(one))
    two.getArray('list').push(['b'.repeat(200)])
    two.getMap('m').set('k', 'second')
    Y.applyUpdate(one, Y.encodeStateAsUpdate(two))
    const pieces = piecesOf(one, new Map(), 64)
    const receiver = new Y.Doc()
    const keyShown = (doc: Y.Doc, transaction: Y.Transaction, pendingBefore: boolean) => {
      const keys = transaction.changed.get(doc.getMap('m') as Y.AbstractType<any>)
      if (keys?.has('k') && doc.getMap('m').get('k') === undefined) return 'k left deleted'
      return noPending(doc, transaction, pendingBefore)
    }
    expect(receive(receiver, pieces, keyShown)).toEqual([])
    expectSameState(receiver, one)
    expect(receiver.getMap('m').get('k')).toBe('second')
  })

  it('carries on when the document changes between pieces, with the updates made meanwhile', () => {
    const sender = interleaved(5, 8, 1_500)
    const other = new Y.Doc()
    other.clientID = 77
    Y.applyUpdate(other, Y.encodeStateAsUpdate(sender))
    // What the sender makes durable meanwhile is forwarded on the link after the last piece.
    const backlog: Uint8Array[] = []
    sender.on('update', (update: Uint8Array) => backlog.push(update))
    const receiver = new Y.Doc()
    const problems: string[] = []
    let n = 0
    for (const piece of catchUpPieces(sender, new Map(), 1_024)) {
      problems.push(...receive(receiver, [piece], noPending))
      if (++n % 5 !== 0) continue
      // A local write (a writer already sent, or not yet), and an update from another peer.
      sender.getText('text').insert(0, `local-${n} `)
      sender.getArray<string>('list').push([`pushed-${n}`])
      other.getText('text').insert(other.getText('text').length, ` remote-${n}`)
      Y.applyUpdate(sender, Y.encodeStateAsUpdate(other, Y.encodeStateVector(sender)))
      if (n === 10) sender.getArray<string>('list').delete(0, 2)
    }
    expect(n).toBeGreaterThan(10)
    problems.push(...receive(receiver, backlog, noPending))
    expect(problems).toEqual([])
    expectSameState(receiver, sender)
  })

  it('is one update when everything fits, and an empty one when the peer lacks nothing', () => {
    const sender = interleaved(3, 3, 50)
    const [whole, ...rest] = piecesOf(sender, new Map(), 1 << 20)
    expect(rest).toEqual([])
    const receiver = new Y.Doc()
    Y.applyUpdate(receiver, whole!)
    expectSameState(receiver, sender)
    const nothing = piecesOf(sender, stateOf(sender), 1 << 20)
    expect(nothing).toHaveLength(1)
    expect(Y.decodeUpdate(nothing[0]!).structs).toEqual([])
  })
})

describe('a shard catch-up in pieces', () => {
  const shardCount = 4
  const amount = money.parse('1.25', money.usdTransfer)
  if (!amount.ok) throw new Error(amount.message)

  /** Node `node`'s replica, writing accounts and deposits of shard 0 as the commands do. */
  const node = (clientID: number) => {
    const doc = new Y.Doc()
    doc.clientID = clientID
    return doc
  }
  const accountsOfShard = Array.from({ length: 200 }, (_, i) => `acct-${i}`)
    .filter((id) => shardOf(id, shardCount) === 0)
    .slice(0, 6)
  const operator = generateOperatorKey()
  const deposit = (doc: Y.Doc, name: string, accountId: string, depositId: string) => {
    const written = doc.transact(() =>
      commands.deposit(
        doc,
        { depositId, accountId, amount: amount.value, requestDigest: `digest-${depositId}` },
        {
          node: name,
          now: 1_700_000_000_000,
          seal: (map, entry) => seal(operator.signingKey, map, entry),
        },
      ),
    )
    if (!written.ok) throw new Error(written.message)
  }

  it('passes the remote checks piece by piece, merged duplicates included', () => {
    const random = prng(11)
    const names = ['a', 'b', 'c', 'd', 'e']
    const replicas = names.map((_, i) => node(100 + i))
    const a = replicas[0]!
    a.transact(() => {
      for (const accountId of accountsOfShard)
        commands.createAccount(a, { accountId }, { node: 'a', now: 1_700_000_000_000 })
    })
    for (const doc of replicas.slice(1)) Y.applyUpdate(doc, Y.encodeStateAsUpdate(a))
    // Every node takes deposits on its own (a partition); some request ids are taken on two
    // nodes at once, so the merge keeps one copy and deletes the other.
    for (let n = 0; n < 600; n++) {
      const i = Math.floor(random() * names.length)
      const accountId = accountsOfShard[n % accountsOfShard.length]!
      deposit(replicas[i]!, names[i]!, accountId, `dep-${n}`.padEnd(40, 'p'))
      if (n % 25 === 0) {
        const j = (i + 1 + Math.floor(random() * (names.length - 1))) % names.length
        deposit(replicas[j]!, names[j]!, accountId, `dep-${n}`.padEnd(40, 'p'))
      }
    }
    const sender = node(999)
    for (const doc of replicas) Y.applyUpdate(sender, Y.encodeStateAsUpdate(doc))
    // The merge deleted the losing copies of the duplicated ids.
    expect(Y.createDeleteSetFromStructStore(sender.store).clients.size).toBeGreaterThan(0)
    const checks = shardChecks(0, shardCount, {
      publicKey: operator.publicKey,
      nodeKeys: null,
      onForged: (forged) => {
        throw new Error(`forged: ${JSON.stringify(forged)}`)
      },
    })
    for (const bytesMax of [600, 1_500, 4_000]) {
      const pieces = piecesOf(sender, new Map(), bytesMax)
      expect(pieces.length).toBeGreaterThan(20)
      const receiver = node(1_000)
      const problems = receive(receiver, pieces, (doc, transaction, pendingBefore) =>
        refusal(doc, transaction, checks, pendingBefore),
      )
      expect(problems).toEqual([])
      expect(contentDigest(receiver)).toBe(contentDigest(sender))
      expectSameState(receiver, sender)
    }
  })
})
