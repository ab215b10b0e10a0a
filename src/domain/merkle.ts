// The Merkle commitment of a shard's account balances as of an epoch checkpoint's cut: a binary
// SHA-256 tree over one leaf per account, sorted by account id. Leaf and inner hashes are domain
// separated (a leaf can never be passed off as an inner node, nor the reverse), and a level with
// an odd count promotes its last hash unchanged (duplicating it, as Bitcoin does, lets two leaf
// lists share a root). Pure and synchronous (lib0's SHA-256 runs in browsers too), so a client
// recomputes exactly what the nodes signed.

import { digest } from 'lib0/hash/sha256'
import { canonicalJson } from './canonical'

/** What a leaf commits to: the account's ledger balance (USD decimal string) at the cut. */
export type Leaf = { accountId: string; balance: string }

/** One step from a hash to its parent: the sibling's hash and which side the sibling is on. */
export type ProofStep = { side: 'left' | 'right'; hash: string }

const leafTag = 0x00
const nodeTag = 0x01
const emptyTag = 0x02

const encoder = new TextEncoder()

const hex = (bytes: Uint8Array): string =>
  Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')

const bytesOf = (hash: string): Uint8Array => {
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`not a SHA-256 hash in hex: ${hash}`)
  const bytes = new Uint8Array(32)
  for (let i = 0; i < 32; i++) bytes[i] = parseInt(hash.slice(2 * i, 2 * i + 2), 16)
  return bytes
}

const tagged = (tag: number, ...parts: Uint8Array[]): string => {
  const length = parts.reduce((sum, part) => sum + part.byteLength, 1)
  const message = new Uint8Array(length)
  message[0] = tag
  let offset = 1
  for (const part of parts) {
    message.set(part, offset)
    offset += part.byteLength
  }
  return hex(digest(message))
}

export const leafHash = (leaf: Leaf): string =>
  tagged(
    leafTag,
    encoder.encode(canonicalJson({ accountId: leaf.accountId, balance: leaf.balance })),
  )

export const nodeHash = (left: string, right: string): string =>
  tagged(nodeTag, bytesOf(left), bytesOf(right))

/** The root of a tree with no accounts. */
export const emptyRoot: string = tagged(emptyTag)

/** Leaves in tree order: by account id, each account once. */
export function sortLeaves(leaves: readonly Leaf[]): Leaf[] {
  const sorted = [...leaves].sort((a, b) => (a.accountId < b.accountId ? -1 : 1))
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i - 1]!.accountId === sorted[i]!.accountId) {
      throw new Error(`account ${sorted[i]!.accountId} has two leaves`)
    }
  }
  return sorted
}

/** Every level of the tree, leaves first, root last. */
function levelsOf(leaves: readonly Leaf[]): string[][] {
  const levels = [sortLeaves(leaves).map(leafHash)]
  while (levels.at(-1)!.length > 1) {
    const below = levels.at(-1)!
    const level: string[] = []
    for (let i = 0; i < below.length; i += 2) {
      level.push(i + 1 < below.length ? nodeHash(below[i]!, below[i + 1]!) : below[i]!)
    }
    levels.push(level)
  }
  return levels
}

export function root(leaves: readonly Leaf[]): string {
  if (leaves.length === 0) return emptyRoot
  return levelsOf(leaves).at(-1)![0]!
}

/** The inclusion proof of `accountId`'s leaf, or undefined if it has none. */
export function proof(
  leaves: readonly Leaf[],
  accountId: string,
): { leaf: Leaf; path: ProofStep[]; root: string } | undefined {
  const levels = levelsOf(leaves)
  const sorted = sortLeaves(leaves)
  let index = sorted.findIndex((leaf) => leaf.accountId === accountId)
  if (index < 0) return undefined
  const leaf = sorted[index]!
  const path: ProofStep[] = []
  for (const level of levels.slice(0, -1)) {
    const sibling = index ^ 1
    // A promoted hash (the odd last one) has no sibling at this level.
    if (sibling < level.length) {
      path.push({ side: sibling < index ? 'left' : 'right', hash: level[sibling]! })
    }
    index >>= 1
  }
  return { leaf, path, root: levels.at(-1)![0]! }
}

/** Whether `path` leads from `leaf` to `expectedRoot`. Malformed hashes never verify. */
export function verify(leaf: Leaf, path: readonly ProofStep[], expectedRoot: string): boolean {
  let hash = leafHash(leaf)
  for (const step of path) {
    if (!/^[0-9a-f]{64}$/.test(step.hash)) return false
    if (step.side === 'left') hash = nodeHash(step.hash, hash)
    else if (step.side === 'right') hash = nodeHash(hash, step.hash)
    else return false
  }
  return hash === expectedRoot
}

/** What a node signs when it acknowledges a checkpoint: the same bytes a client verifies. */
export const checkpointSignedContent = (shard: number, epoch: number, root: string): string =>
  `clearmesh/checkpoint/v1\n${shard}\n${epoch}\n${root}`
