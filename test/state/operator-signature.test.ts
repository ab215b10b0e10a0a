// The operator's signature on entries that bring money or commands in from outside the mesh:
// signing and verifying alone, then the remote checks refusing a peer's forged or unsigned
// deposit and breaker (shard and market documents), handing the entry over as evidence, while
// the same deposit signed on two nodes still merges.

import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { derivedNodeSigningKey, readConfig, type Env } from '../../src/config'
import { hasPending } from '../../src/state/digest'
import {
  generateOperatorKey,
  publicKeyOfSigningKey,
  seal,
  verified,
} from '../../src/state/operator-signature'
import {
  marketChecks,
  refusal,
  shardChecks,
  type DocRules,
  type ForgedEntry,
} from '../../src/state/remote-checks'
import { shardOf } from '../../src/state/shard-of'

const operator = generateOperatorKey()
const rogue = generateOperatorKey()

const deposit = (node: string, amount = '100') => ({
  id: 'deposit/alice/d1',
  kind: 'deposit',
  from: '@external',
  to: 'alice',
  amount,
  ts: node === 'a' ? 1_000 : 2_000,
  node,
  requestDigest: 'digest',
})

const signed = <T extends Record<string, unknown>>(
  map: 'transfers' | 'breakers',
  entry: T,
  key = operator.signingKey,
) => ({ ...entry, signature: seal(key, map, entry) })

const breaker = {
  id: 'breaker/venue/*/1000/a/x',
  scope: 'venue',
  instrument: null,
  mode: 'halted',
  reason: 'maintenance',
  ts: 1_000,
  node: 'a',
}

describe('operator signatures', () => {
  it('verify what the key signed, and nothing else', () => {
    expect(publicKeyOfSigningKey(operator.signingKey)).toBe(operator.publicKey)
    const entry = signed('transfers', deposit('a'))
    expect(entry.signature).toMatch(/^[A-Za-z0-9_-]{86}$/)
    expect(verified(operator.publicKey, 'transfers', entry)).toBe(true)
    // Any field changed, another key, another map, no signature, a malformed one: refused.
    expect(verified(operator.publicKey, 'transfers', { ...entry, amount: '1000000' })).toBe(false)
    expect(verified(operator.publicKey, 'transfers', { ...entry, to: 'mallory' })).toBe(false)
    expect(verified(operator.publicKey, 'transfers', { ...entry, extra: 1 })).toBe(false)
    expect(
      verified(
        operator.publicKey,
        'transfers',
        signed('transfers', deposit('a'), rogue.signingKey),
      ),
    ).toBe(false)
    expect(verified(operator.publicKey, 'breakers', entry)).toBe(false)
    expect(verified(operator.publicKey, 'transfers', deposit('a'))).toBe(false)
    expect(verified(operator.publicKey, 'transfers', { ...entry, signature: 'x' })).toBe(false)
    expect(verified(operator.publicKey, 'transfers', { ...entry, signature: 42 })).toBe(false)
    // The field order of the entry does not matter: the content is canonical.
    const reordered = Object.fromEntries(Object.entries(entry).reverse())
    expect(verified(operator.publicKey, 'transfers', reordered)).toBe(true)
  })
})

describe("a peer's update", () => {
  const shardCount = 4
  const shard = shardOf('alice', shardCount)

  /** Applies what a peer made with `change` to a fresh document; the refusal and the evidence. */
  function fromPeer(
    checks: (onForged: (f: ForgedEntry) => void) => DocRules,
    change: (peer: Y.Doc) => void,
  ) {
    const forged: ForgedEntry[] = []
    const maps = checks((f) => forged.push(f))
    const peer = new Y.Doc()
    change(peer)
    const doc = new Y.Doc()
    let refused: string | undefined
    doc.transact(() => {
      const pendingBefore = hasPending(doc)
      Y.applyUpdate(doc, Y.encodeStateAsUpdate(peer))
      refused = refusal(doc, doc._transaction!, maps, pendingBefore)
    }, 'peer:rogue')
    return { refused, forged }
  }
  const shardMaps = (onForged: (f: ForgedEntry) => void) =>
    shardChecks(shard, shardCount, { publicKey: operator.publicKey, nodeKeys: null, onForged })
  const marketMaps = (onForged: (f: ForgedEntry) => void) =>
    marketChecks({ publicKey: operator.publicKey, nodeKeys: null, onForged }, ['a', 'b'])

  it("is taken when its deposits and breakers are the operator's", () => {
    const taken = fromPeer(shardMaps, (peer) => {
      peer.getMap('accounts').set('alice', { accountId: 'alice', createdAt: 1, node: 'b' })
      peer.getMap('transfers').set('deposit/alice/d1', signed('transfers', deposit('b')))
      peer.getMap('breakers').set(breaker.id, signed('breakers', breaker))
    })
    expect(taken).toEqual({ refused: undefined, forged: [] })
    expect(
      fromPeer(marketMaps, (peer) =>
        peer.getMap('breakers').set(breaker.id, signed('breakers', breaker)),
      ),
    ).toEqual({ refused: undefined, forged: [] })
  })

  it('is refused whole for one forged, re-signed or unsigned deposit, with the entry as evidence', () => {
    const forgeries: [string, Record<string, unknown>][] = [
      ['unsigned', deposit('b')],
      ['signed by another key', signed('transfers', deposit('b'), rogue.signingKey)],
      [
        'its amount raised after signing',
        { ...signed('transfers', deposit('b')), amount: '1000000' },
      ],
    ]
    for (const [what, entry] of forgeries) {
      const { refused, forged } = fromPeer(shardMaps, (peer) => {
        peer.getMap('accounts').set('alice', { accountId: 'alice', createdAt: 1, node: 'b' })
        peer.getMap('transfers').set('deposit/alice/d1', entry)
      })
      expect(refused, what).toMatch(
        /transfers\/deposit\/alice\/d1: it does not carry the operator's signature/,
      )
      expect(forged, what).toEqual([
        {
          map: 'transfers',
          key: 'deposit/alice/d1',
          entry,
          origin: 'peer:rogue',
          refused: "it does not carry the operator's signature",
        },
      ])
    }
  })

  it('is refused for a forged breaker, in a shard and in a market', () => {
    for (const maps of [shardMaps, marketMaps]) {
      const { refused, forged } = fromPeer(maps, (peer) =>
        peer.getMap('breakers').set(breaker.id, breaker),
      )
      expect(refused).toMatch(/breakers\/.*operator's signature/)
      expect(forged).toEqual([
        {
          map: 'breakers',
          key: breaker.id,
          entry: breaker,
          origin: 'peer:rogue',
          refused: "it does not carry the operator's signature",
        },
      ])
    }
  })

  it('merges the same deposit taken on two nodes, each copy signed where it was taken', () => {
    const maps = shardMaps(() => undefined)
    const doc = new Y.Doc()
    doc.getMap('transfers').set('deposit/alice/d1', signed('transfers', deposit('a')))
    const peer = new Y.Doc()
    peer.getMap('transfers').set('deposit/alice/d1', signed('transfers', deposit('b')))
    let refused: string | undefined
    doc.transact(() => {
      Y.applyUpdate(doc, Y.encodeStateAsUpdate(peer))
      refused = refusal(doc, doc._transaction!, maps, false)
    })
    expect(refused).toBeUndefined()
    expect(
      verified(
        operator.publicKey,
        'transfers',
        doc.getMap<Record<string, unknown>>('transfers').get('deposit/alice/d1')!,
      ),
    ).toBe(true)
  })
})

describe("a node's operator keys", () => {
  const base = {
    NODE_ID: 'a',
    ADMIN_TOKEN: 'admin-token-0123456789',
    KEY_SECRET: 'key-secret-0123456789',
  } as Env

  it('derives the public key from the signing key, or verifies only with the public key', () => {
    const signing = readConfig({ ...base, OPERATOR_SIGNING_KEY: operator.signingKey })
    expect(signing).toMatchObject({
      operatorSigningKey: operator.signingKey,
      operatorPublicKey: operator.publicKey,
    })
    const verifying = readConfig({ ...base, OPERATOR_PUBLIC_KEY: operator.publicKey })
    expect(verifying).toMatchObject({
      operatorSigningKey: null,
      operatorPublicKey: operator.publicKey,
    })
  })

  it('refuses to start without a key, with a broken one, or with keys that do not match', () => {
    expect(() => readConfig(base)).toThrow(
      /OPERATOR_PUBLIC_KEY .* or OPERATOR_SIGNING_KEY is required/,
    )
    expect(() => readConfig({ ...base, OPERATOR_SIGNING_KEY: 'not-a-key' })).toThrow(
      /PKCS#8 Ed25519/,
    )
    expect(() => readConfig({ ...base, OPERATOR_PUBLIC_KEY: 'short' })).toThrow(
      /base64url of 32 bytes/,
    )
    expect(() =>
      readConfig({
        ...base,
        OPERATOR_SIGNING_KEY: operator.signingKey,
        OPERATOR_PUBLIC_KEY: rogue.publicKey,
      }),
    ).toThrow(/not the key of OPERATOR_PUBLIC_KEY/)
  })
})

describe("a node's pinned peer keys", () => {
  const base = {
    NODE_ID: 'a',
    ADMIN_TOKEN: 'admin-token-0123456789',
    KEY_SECRET: 'key-secret-0123456789',
    MESH_SECRET: 'mesh-secret-0123456789',
    OPERATOR_PUBLIC_KEY: operator.publicKey,
    PEERS: 'b=http://127.0.0.1:8788',
  } as Env
  const ownKey = publicKeyOfSigningKey(derivedNodeSigningKey(base.KEY_SECRET, 'a'))
  const peerKey = generateOperatorKey().publicKey

  it('are unpinned when unset, else every mesh node maps to its key', () => {
    expect(readConfig(base).nodePublicKeys).toBeNull()
    const pinned = readConfig({ ...base, NODE_PUBLIC_KEYS: ` a=${ownKey}, b=${peerKey} ` })
    expect(pinned.nodePublicKey).toBe(ownKey)
    expect(pinned.nodePublicKeys).toEqual(
      new Map([
        ['a', ownKey],
        ['b', peerKey],
      ]),
    )
  })

  it.each([
    ['a peer left out', () => `a=${ownKey}`, /missing \[b\]/],
    ['a node not in the mesh', () => `a=${ownKey},b=${peerKey},c=${peerKey}`, /mesh \[c\]/],
    ['a node twice', () => `a=${ownKey},b=${peerKey},b=${peerKey}`, /names b twice/],
    ['another key for this node', () => `a=${peerKey},b=${peerKey}`, /another key for a/],
    ['a key that is not one', () => `a=${ownKey},b=short`, /key of b is not base64url/],
    ['an entry that is not id=key', () => `a=${ownKey},b`, /"b" is not id=key/],
  ])('refuse to start with %s', (_, keys, why) => {
    expect(() => readConfig({ ...base, NODE_PUBLIC_KEYS: keys() })).toThrow(why)
  })
})
