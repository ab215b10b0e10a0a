// C1: convergence (I1). After heal and quiescence every node answers, holds every document with
// the same state-vector digest and content digest, none pending or damaged, and the contents read
// as a follower are identical too; the figure is the time from the final heal to convergence.

import type { CheckInput } from './context'
import { report, type CheckResult } from './report'

/** JSON with object keys sorted, so equal contents compare equal whatever their key order. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    )
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

export function checkConvergence(input: CheckInput): CheckResult {
  const r = report('C1', 'convergence and time to converge')
  const { nodes, convergence } = input.final
  if (convergence.ms !== null) r.figure('convergeMs', convergence.ms)
  if (!convergence.converged)
    r.error('not-converged', `not within ${convergence.timeoutMs} ms: ${convergence.detail}`)
  for (const node of nodes)
    if (node.error !== undefined) r.error('unreachable', `${node.node}: ${node.error}`)
  const reachable = nodes.filter((node) => node.error === undefined)
  const names = new Set(reachable.flatMap((node) => Object.keys(node.docs)))
  r.figure('documents', names.size)
  for (const name of [...names].sort()) {
    const docs = reachable.map((node) => ({ node: node.node, doc: node.docs[name] }))
    for (const { node, doc } of docs) {
      if (doc === undefined) r.error('missing', `${name} missing on ${node}`)
      else if (doc.damaged) r.error('damaged', `${name} on ${node}: ${JSON.stringify(doc.damage)}`)
      else if (doc.pending) r.error('pending', `${name} on ${node} holds pending structs`)
    }
    const held = docs.filter((d) => d.doc !== undefined)
    const first = held[0]
    if (first === undefined) continue
    for (const { node, doc } of held.slice(1)) {
      if (
        doc!.stateVectorDigest !== first.doc!.stateVectorDigest ||
        doc!.contentDigest !== first.doc!.contentDigest
      ) {
        r.error(
          'digests-differ',
          `${name}: ${first.node}=${first.doc!.contentDigest}/${first.doc!.stateVectorDigest} ` +
            `${node}=${doc!.contentDigest}/${doc!.stateVectorDigest}`,
        )
      }
    }
    const read = held.filter((d) => d.doc!.content !== undefined)
    const reference = read[0]
    if (reference === undefined) continue
    const expected = canonical(reference.doc!.content)
    for (const { node, doc } of read.slice(1)) {
      if (canonical(doc!.content) !== expected)
        r.error('content-differs', `${name}: ${node}'s entries differ from ${reference.node}'s`)
    }
  }
  return r.done()
}
