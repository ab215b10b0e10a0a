// What a replica holds, in forms cheap to compare: digests of its state, and whether it waits on
// updates whose dependencies have not arrived.

import { createHash } from 'node:crypto'
import * as Y from 'yjs'

/** Digest of the state vector: which updates of which writers this replica holds. */
export function stateVectorDigest(doc: Y.Doc): string {
  // Yjs encodes state vectors sorted by client id, so equal vectors encode to equal bytes.
  return createHash('sha256').update(Y.encodeStateVector(doc)).digest('hex').slice(0, 32)
}

/**
 * Digest of the content: every top-level map's entries in key order. Two replicas with the same
 * content digest fold to the same balances whatever order their updates arrived in.
 */
export function contentDigest(doc: Y.Doc): string {
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
