// What a peer may change in a shard, on plain documents: the same checks the replica runs inside
// the transaction that applies a peer's update.

import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import * as merkle from '../../src/domain/merkle'
import { hasPending } from '../../src/state/digest'
import { generateOperatorKey, seal, signContent } from '../../src/state/operator-signature'
import { ackForgery, refusal, shardChecks, type ForgedEntry } from '../../src/state/remote-checks'
import { ackKey } from '../../src/state/shard-doc'
import { shardOf } from '../../src/state/shard-of'

const shardCount = 4
const alice = 'alice'
const shard = shardOf(alice, shardCount)
const foreign = ['bob', 'carol', 'dave', 'erin'].find((id) => shardOf(id, shardCount) !== shard)!
const operator = generateOperatorKey()
const checks = shardChecks(shard, shardCount, {
  publicKey: operator.publicKey,
  nodeKeys: null,
  onForged: () => undefined,
})

/** Deposit `requestId` of `accountId` as node `node` records it, signed by the operator. */
const deposit = (
  node: string,
  amount = '100',
  accountId = alice,
  requestId = 'd1',
  more: Record<string, unknown> = {},
) => {
  const entry = {
    id: `deposit/${accountId}/${requestId}`,
    kind: 'deposit',
    from: '@external',
    to: accountId,
    amount,
    ts: node === 'a' ? 1_000 : 2_000,
    node,
    requestDigest: 'digest',
    ...more,
  }
  return { ...entry, signature: seal(operator.signingKey, 'transfers', entry) }
}

/** A node's document holding alice's deposit d1 as node `a` recorded it. */
function local(): Y.Doc {
  const doc = new Y.Doc()
  doc.getMap('transfers').set('deposit/alice/d1', deposit('a'))
  return doc
}

/** Applies `update` as the replica does and returns the refusal, if any. */
function applyFromPeer(doc: Y.Doc, update: Uint8Array): string | undefined {
  let refused: string | undefined
  doc.transact(() => {
    const pendingBefore = hasPending(doc)
    Y.applyUpdate(doc, update)
    refused = refusal(doc, doc._transaction!, checks, pendingBefore)
  })
  return refused
}

/** An update made by a peer that started from `base` and ran `change`. */
function peerUpdate(base: Y.Doc, change: (doc: Y.Doc) => void): Uint8Array {
  const peer = new Y.Doc()
  Y.applyUpdate(peer, Y.encodeStateAsUpdate(base))
  const before = Y.encodeStateVector(peer)
  change(peer)
  return Y.encodeStateAsUpdate(peer, before)
}

describe('updates from a peer', () => {
  it('take a new entry, and the same request merged from another node', () => {
    const doc = local()
    const fresh = peerUpdate(doc, (peer) =>
      peer.getMap('transfers').set('deposit/alice/d2', deposit('b', '100', alice, 'd2')),
    )
    expect(applyFromPeer(doc, fresh)).toBeUndefined()
    // The same deposit id recorded concurrently on node b: the same write, merged.
    const concurrent = new Y.Doc()
    concurrent.getMap('transfers').set('deposit/alice/d1', deposit('b'))
    expect(applyFromPeer(local(), Y.encodeStateAsUpdate(concurrent))).toBeUndefined()
    // Another attempt of the same request reached b, with its own signedAt: the same write too.
    const retried = new Y.Doc()
    retried
      .getMap('transfers')
      .set('deposit/alice/d1', deposit('b', '100', alice, 'd1', { signedAt: 1_500 }))
    expect(applyFromPeer(local(), Y.encodeStateAsUpdate(retried))).toBeUndefined()
  })

  it('refuse an entry overwritten with other content, or deleted', () => {
    const doc = local()
    const larger = peerUpdate(doc, (peer) =>
      peer.getMap('transfers').set('deposit/alice/d1', deposit('a', '1000000')),
    )
    expect(applyFromPeer(doc, larger)).toMatch(/overwritten/)
    const other = local()
    const deleted = peerUpdate(other, (peer) => peer.getMap('transfers').delete('deposit/alice/d1'))
    expect(applyFromPeer(other, deleted)).toMatch(/deleted/)
  })

  it('refuse entries outside the schema or the shard, and values that are not plain JSON', () => {
    const cases: [string, (peer: Y.Doc) => void, RegExp][] = [
      ['a root outside the schema', (peer) => peer.getMap('junk').set('x', { id: 'x' }), /schema/],
      ['a list root', (peer) => peer.getArray('log').push([1]), /schema/],
      [
        'another shard account',
        (peer) => peer.getMap('transfers').set(`deposit/${foreign}/d1`, deposit('b', '1', foreign)),
        /not in shard/,
      ],
      [
        'an amount that does not parse',
        (peer) =>
          peer.getMap('transfers').set('deposit/alice/d9', deposit('b', 'a lot', alice, 'd9')),
        /not a USD amount/,
      ],
      [
        'a signedAt that is not a time',
        (peer) =>
          peer
            .getMap('transfers')
            .set('deposit/alice/d7', deposit('b', '100', alice, 'd7', { signedAt: '1000' })),
        /signedAt is not a time/,
      ],
      [
        'a key that is not the id',
        (peer) => peer.getMap('transfers').set('deposit/alice/other', deposit('b')),
        /not its key/,
      ],
      [
        'a bigint',
        (peer) =>
          peer
            .getMap('transfers')
            .set('deposit/alice/d8', { ...deposit('b', '100', alice, 'd8'), amount: 5n }),
        /plain JSON/,
      ],
      ['a nested type', (peer) => peer.getMap('findings').set('f', new Y.Map()), /nested/],
      [
        "a key's rate limit that is not a rate",
        (peer) =>
          peer.getMap('keys').set('alice.k', {
            keyId: 'alice.k',
            accountId: alice,
            scopes: ['read'],
            label: '',
            rateLimit: { perSecond: 0, burst: 10 ** 9 },
            createdAt: 1,
            node: 'b',
          }),
        /not a rate/,
      ],
    ]
    for (const [what, change, why] of cases) {
      expect(applyFromPeer(local(), peerUpdate(local(), change)), what).toMatch(why)
    }
  })

  it('refuse an update whose dependencies did not come with it', () => {
    const base = local()
    const peer = new Y.Doc()
    Y.applyUpdate(peer, Y.encodeStateAsUpdate(base))
    const start = Y.encodeStateVector(peer)
    peer.getMap('transfers').set('deposit/alice/d2', deposit('b', '100', alice, 'd2'))
    const middle = Y.encodeStateVector(peer)
    peer.getMap('transfers').set('deposit/alice/d3', deposit('b', '100', alice, 'd3'))
    expect(start).not.toEqual(middle)
    const onlySecond = Y.encodeStateAsUpdate(peer, middle)
    expect(applyFromPeer(base, onlySecond)).toMatch(/did not come with it/)
  })
})

describe('checkpoint acknowledgements from a peer', () => {
  const nodeA = generateOperatorKey()
  const nodeB = generateOperatorKey()
  const pinned = new Map([
    ['a', nodeA.publicKey],
    ['b', nodeB.publicKey],
  ])
  const root = 'ab'.repeat(32)

  /** Node `node`'s acknowledgement of epoch 3, signed by `key`. */
  const ackOf = (
    node: string,
    key: { signingKey: string; publicKey: string },
    ackShard = shard,
  ) => ({
    id: ackKey(3, node),
    epoch: 3,
    node,
    root,
    publicKey: key.publicKey,
    signature: signContent(key.signingKey, merkle.checkpointSignedContent(ackShard, 3, root)),
  })

  it('are taken signed by their node, under its pinned key when keys are pinned', () => {
    expect(ackForgery(shard, ackOf('b', nodeB), null)).toBeUndefined()
    expect(ackForgery(shard, ackOf('b', nodeB), pinned)).toBeUndefined()
  })

  it('are forged when signed by another key than the pinned one, or not signed by theirs', () => {
    // Unpinned, node a may sign in b's name with its own key: pinning is what refuses it.
    expect(ackForgery(shard, ackOf('b', nodeA), null)).toBeUndefined()
    expect(ackForgery(shard, ackOf('b', nodeA), pinned)).toBe("its key is not node b's pinned key")
    expect(ackForgery(shard, ackOf('z', nodeA), pinned)).toBe("its key is not node z's pinned key")
    const otherShard = ackOf('b', nodeB, shard + 1)
    for (const keys of [null, pinned]) {
      expect(ackForgery(shard, otherShard, keys)).toBe("it does not carry its node's signature")
      expect(ackForgery(shard, { ...ackOf('b', nodeB), root: 'cd'.repeat(32) }, keys)).toBe(
        "it does not carry its node's signature",
      )
      // Filed under another node than the one it names: it would count for that one.
      expect(ackForgery(shard, { ...ackOf('b', nodeB), id: ackKey(3, 'a') }, keys)).toBe(
        'its id is not its epoch and node',
      )
    }
  })

  it('refuse the whole update and hand the forged one over as evidence', () => {
    const forged: ForgedEntry[] = []
    const pinnedChecks = shardChecks(shard, shardCount, {
      publicKey: operator.publicKey,
      nodeKeys: pinned,
      onForged: (entry) => forged.push(entry),
    })
    const fromPeer = (ack: Record<string, unknown>) => {
      const doc = local()
      const update = peerUpdate(doc, (peer) =>
        peer.getMap('checkpointAcks').set(ack.id as string, ack),
      )
      let refused: string | undefined
      doc.transact(() => {
        const pendingBefore = hasPending(doc)
        Y.applyUpdate(doc, update)
        refused = refusal(doc, doc._transaction!, pinnedChecks, pendingBefore)
      }, 'peer:c')
      return refused
    }
    expect(fromPeer(ackOf('b', nodeB))).toBeUndefined()
    expect(forged).toEqual([])
    const inBsName = ackOf('b', nodeA)
    expect(fromPeer(inBsName)).toBe(
      `checkpointAcks/${inBsName.id}: its key is not node b's pinned key`,
    )
    expect(forged).toEqual([
      {
        map: 'checkpointAcks',
        key: inBsName.id,
        entry: inBsName,
        origin: 'peer:c',
        refused: "its key is not node b's pinned key",
      },
    ])
  })
})
