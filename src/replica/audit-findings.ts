// The reconciler's audit violations recorded as findings of the document they were found in:
// one per affected account (its withdrawals wait for the operator), keyed by invariant, scope
// and subject and written once, so every node that finds the same violation yields one entry.
// Nothing is repaired.

import * as clock from '../clock'
import type * as audits from '../domain/audits'
import { findings, writeOnce, type Finding } from '../state/shard-doc'
import * as durable from './durable-doc'
import { bounded } from './forged-findings'

/** A finding's id and message stay this short, whatever ids a peer chose. */
const findingTextMax = 1000

/** The findings `violations` make in document `docName` (`<node>/shard/<n>`, `<node>/market/<symbol>`). */
export function findingsOf(
  violations: readonly audits.Violation[],
  docName: string,
  nodeId: string,
): Finding[] {
  // The same on every node: the document without the node that holds it.
  const scope = docName.slice(docName.indexOf('/') + 1)
  return violations.flatMap((violation) => {
    const accounts = violation.accountIds.length === 0 ? [null] : violation.accountIds
    return accounts.map((accountId) => ({
      id: [`violation/${violation.invariant}/${scope}/${violation.subject}`, accountId]
        .filter((part) => part !== null)
        .join('/')
        .slice(0, findingTextMax),
      kind: 'violation' as const,
      invariant: violation.invariant,
      accountId,
      message: violation.message.slice(0, findingTextMax),
      evidence: bounded(violation.evidence),
      ts: clock.now(),
      node: nodeId,
    }))
  })
}

/** Records the findings not recorded yet, in one durable write; returns every one of them. */
export function record(held: durable.DurableDoc, nodeId: string, made: Finding[]): Finding[] {
  if (!held.state.ok) return made
  const doc = held.state.doc
  const fresh = made.filter((finding) => !findings(doc).has(finding.id))
  if (fresh.length > 0) {
    durable.write(held, nodeId, (ydoc) => {
      for (const finding of fresh) writeOnce(findings(ydoc), finding.id, finding)
    })
  }
  return made.map((finding) => findings(doc).get(finding.id) ?? finding)
}

/** The first violation a document records against `accountId`, if any. */
export function violationAgainst(held: durable.DurableDoc, accountId: string): Finding | undefined {
  if (!held.state.ok) return undefined
  for (const finding of findings(held.state.doc).values()) {
    if (finding.kind === 'violation' && finding.accountId === accountId) return finding
  }
  return undefined
}
