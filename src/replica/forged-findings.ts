// Entries a peer sent without the operator's valid signature (a forged deposit, a forged breaker):
// the whole update was refused and dropped, the link closed; what was sent is recorded as a
// finding with its evidence, shown in GET /v1/mesh/status, and never counted.

import { findingsShownMax } from '../constants'
import type { ForgedEntry } from '../state/remote-checks'
import { findings, writeOnce, type Finding } from '../state/shard-doc'
import * as durable from './durable-doc'

/**
 * The `onForged` of a replica's remote checks. The check runs inside the transaction that is
 * about to be dropped, so the finding is written just after, once what is durable is reloaded.
 */
export function forgedRecorder(
  held: () => durable.DurableDoc,
  nodeId: string,
): (forged: ForgedEntry) => void {
  const queue: ForgedEntry[] = []
  return function recordForged(forged) {
    queue.push(forged)
    if (queue.length > 1) return
    queueMicrotask(() => {
      const entries = queue.splice(0)
      const doc = held()
      if (!doc.state.ok) return
      durable.write(doc, nodeId, (ydoc) => {
        for (const { map, key, entry, origin } of entries) {
          const id = `forged/${map}/${key}`
          writeOnce(findings(ydoc), id, {
            id,
            kind: 'forged_entry',
            invariant: 'I6',
            accountId: typeof entry.to === 'string' ? entry.to : null,
            message:
              `${origin} sent ${map}/${key} without a valid operator signature: its update was ` +
              'refused whole and the link closed; nothing of it counts',
            evidence: { map, key, entry, origin },
            ts: Date.now(),
            node: nodeId,
          })
        }
      })
    })
  }
}

/** The findings a document holds, newest first, as GET /v1/mesh/status shows them. */
export function recentFindings(held: durable.DurableDoc): Finding[] {
  const all = held.state.ok ? [...findings(held.state.doc).values()] : []
  return all.sort((x, y) => y.ts - x.ts).slice(0, findingsShownMax)
}
