// The Merkle commitment: every leaf proves its inclusion in the root, and any change to a leaf,
// a step of its path or the root makes the proof fail.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as merkle from '../../src/domain/merkle'

const leavesArbitrary = fc
  .uniqueArray(fc.stringMatching(/^[a-z0-9]{1,8}$/), { minLength: 1, maxLength: 40 })
  .chain((ids) =>
    fc.tuple(
      fc.constant(ids),
      fc.array(fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }), {
        minLength: ids.length,
        maxLength: ids.length,
      }),
    ),
  )
  .map(([ids, balances]) =>
    ids.map((accountId, i) => ({ accountId, balance: balances[i]!.toString() })),
  )

describe('merkle', () => {
  it('gives the empty tree its own root and one leaf the hash of that leaf', () => {
    expect(merkle.root([])).toBe(merkle.emptyRoot)
    const leaf = { accountId: 'alice', balance: '10.000000' }
    expect(merkle.root([leaf])).toBe(merkle.leafHash(leaf))
    expect(merkle.proof([leaf], 'alice')).toEqual({ leaf, path: [], root: merkle.leafHash(leaf) })
  })

  it('hashes three leaves as ((a, b), c): the odd hash is promoted, not duplicated', () => {
    const [a, b, c] = ['a', 'b', 'c'].map((accountId) => ({ accountId, balance: '1' }))
    const expected = merkle.nodeHash(
      merkle.nodeHash(merkle.leafHash(a!), merkle.leafHash(b!)),
      merkle.leafHash(c!),
    )
    expect(merkle.root([c!, a!, b!])).toBe(expected)
  })

  it('separates leaves from inner nodes: an inner node is no leaf', () => {
    const leaves = ['a', 'b'].map((accountId) => ({ accountId, balance: '1' }))
    const inner = merkle.root(leaves)
    expect(merkle.leafHash({ accountId: 'a', balance: '1' })).not.toBe(inner)
    expect(merkle.root([])).not.toBe(merkle.leafHash({ accountId: '', balance: '' }))
  })

  it('refuses two leaves of one account', () => {
    expect(() =>
      merkle.root([
        { accountId: 'a', balance: '1' },
        { accountId: 'a', balance: '2' },
      ]),
    ).toThrow(/two leaves/)
  })

  it('proves every leaf, whatever the order the leaves come in (property)', () => {
    fc.assert(
      fc.property(leavesArbitrary, fc.nat(), (leaves, pick) => {
        const root = merkle.root(leaves)
        expect(merkle.root([...leaves].reverse())).toBe(root)
        const leaf = leaves[pick % leaves.length]!
        const proof = merkle.proof(leaves, leaf.accountId)!
        expect(proof.root).toBe(root)
        expect(merkle.verify(leaf, proof.path, root)).toBe(true)
        expect(proof.path.length).toBeLessThanOrEqual(Math.ceil(Math.log2(leaves.length)))
      }),
    )
  })

  it('refuses a changed balance, a changed step or another root (property)', () => {
    fc.assert(
      fc.property(leavesArbitrary, fc.nat(), (leaves, pick) => {
        const leaf = leaves[pick % leaves.length]!
        const { path, root } = merkle.proof(leaves, leaf.accountId)!
        const richer = { ...leaf, balance: (BigInt(leaf.balance) + 1n).toString() }
        expect(merkle.verify(richer, path, root)).toBe(false)
        expect(merkle.verify({ ...leaf, accountId: `${leaf.accountId}x` }, path, root)).toBe(false)
        expect(merkle.verify(leaf, path, merkle.leafHash(richer))).toBe(false)
        if (path.length > 0) {
          const flipped = path.map((step, i) =>
            i === 0
              ? { ...step, side: step.side === 'left' ? ('right' as const) : ('left' as const) }
              : step,
          )
          expect(merkle.verify(leaf, flipped, root)).toBe(false)
          const forged = path.map((step, i) => (i === 0 ? { ...step, hash: '0'.repeat(64) } : step))
          expect(merkle.verify(leaf, forged, root)).toBe(false)
          expect(merkle.verify(leaf, path.slice(1), root)).toBe(false)
        }
      }),
    )
  })

  it('never verifies a malformed step', () => {
    const leaves = ['a', 'b'].map((accountId) => ({ accountId, balance: '1' }))
    const { leaf, path, root } = merkle.proof(leaves, 'a')!
    expect(merkle.verify(leaf, [{ ...path[0]!, hash: 'zz' }], root)).toBe(false)
    expect(merkle.verify(leaf, [{ hash: path[0]!.hash, side: 'up' as 'left' }], root)).toBe(false)
  })
})
