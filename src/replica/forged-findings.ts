// Entries a peer sent without a valid signature (a deposit or breaker the operator did not sign, a
// checkpoint acknowledgement not signed by its node's key): the whole update was refused and
// dropped, the link closed; what was sent is recorded as a finding with its evidence, shown in
// GET /v1/mesh/status, and never counted.

import * as clock from '../clock'
import { findingEvidenceBytesMax, findingsShownMax, forgedFindingsMax } from '../constants'
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
  let recorded = 0
  return function recordForged(forged) {
    console.error(
      JSON.stringify({ msg: 'forged entry refused', map: forged.map, origin: forged.origin }),
    )
    if (recorded >= forgedFindingsMax) return
    recorded += 1
    queue.push(forged)
    if (queue.length > 1) return
    queueMicrotask(() => {
      const entries = queue.splice(0)
      const doc = held()
      if (!doc.state.ok) return
      try {
        durable.write(doc, nodeId, (ydoc) => {
          for (const forged of entries) {
            const finding = findingOf(forged, nodeId)
            writeOnce(findings(ydoc), finding.id, finding)
          }
        })
      } catch (error) {
        // Outside any request: the refusal stands, only its record is lost.
        console.error(
          JSON.stringify({ msg: 'recording a forged entry failed', error: String(error) }),
        )
      }
    })
  }
}

/** The finding of a forged entry, its evidence bounded (a peer chooses how large it is). */
function findingOf({ map, key, entry, origin, refused }: ForgedEntry, nodeId: string): Finding {
  const shownKey = key.slice(0, 200)
  return {
    id: `forged/${map}/${shownKey}`,
    kind: 'forged_entry',
    invariant: 'I6',
    accountId: typeof entry.to === 'string' ? entry.to.slice(0, 200) : null,
    message:
      `${origin} sent ${map}/${shownKey}, forged (${refused}): its update was refused whole ` +
      'and the link closed; nothing of it counts',
    evidence: {
      map,
      key: shownKey,
      entry: bounded(entry),
      origin,
    },
    ts: clock.now(),
    node: nodeId,
  }
}

/** Evidence as it is kept: whole up to findingEvidenceBytesMax, else its text cut there. */
export function bounded(evidence: unknown): unknown {
  const text = JSON.stringify(evidence)
  return text.length <= findingEvidenceBytesMax ? evidence : text.slice(0, findingEvidenceBytesMax)
}

/** The findings a document holds, newest first, as GET /v1/mesh/status shows them. */
export function recentFindings(held: durable.DurableDoc): Finding[] {
  const all = held.state.ok ? [...findings(held.state.doc).values()] : []
  return all.sort((x, y) => y.ts - x.ts).slice(0, findingsShownMax)
}
