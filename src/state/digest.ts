// What a replica holds, in forms cheap to compare: digests of its state, and whether it waits on
// updates whose dependencies have not arrived.

import { createHash } from 'node:crypto'
import * as Y from 'yjs'

/** Digest of the state vector: which updates of which writers this replica holds. */
export function stateVectorDigest(doc: Y.Doc): string {
  // Yjs encodes state vectors sorted by client id, so equal vectors encode to equal bytes.
  return createHash('sha256').update(Y.encodeStateVector(doc)).digest('hex').slice(0, 32)
}

/** Each document's content digest, until its next update (a reloaded replica is a new doc). */
const contentDigests = new WeakMap<Y.Doc, string>()
const watched = new WeakSet<Y.Doc>()

/**
 * Digest of the content: every top-level map's entries in key order. Two replicas with the same
 * content digest fold to the same balances whatever order their updates arrived in. Serializing
 * every entry costs about a second at 100 MB, so it is kept until the document next changes.
 */
export function contentDigest(doc: Y.Doc): string {
  const cached = contentDigests.get(doc)
  if (cached !== undefined) return cached
  if (!watched.has(doc)) {
    watched.add(doc)
    // Any update (structs or deletions) may change the content: forget the digest.
    doc.on('update', () => contentDigests.delete(doc))
  }
  const digest = digestContent(doc)
  contentDigests.set(doc, digest)
  return digest
}

function digestContent(doc: Y.Doc): string {
  const hash = createHash('sha256')
  for (const name of [...doc.share.keys()].sort()) {
    const map = doc.getMap<unknown>(name)
    for (const key of [...map.keys()].sort()) hash.update(JSON.stringify([name, key, map.get(key)]))
  }
  return hash.digest('hex').slice(0, 32)
}

/** True when the document holds updates whose dependencies have not arrived (design.md §2.4). */
export const hasPending = (doc: Y.Doc): boolean =>
  doc.store.pendingStructs !== null || doc.store.pendingDs !== null
