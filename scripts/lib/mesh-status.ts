// Reading GET /v1/mesh/status and judging convergence from it (invariant I1), shared by the node
// tests and the chaos harness: every node holds every document with the same state-vector digest
// and content digest, and none holds pending structs or damage.

export type LinkState = {
  peer: string
  state: 'up' | 'down'
  direction?: string
  /** Clock units the peer holds that this replica lacks, by the peer's last word. */
  behind?: number
  /** Clock units this replica holds that the peer lacks, by the peer's last word. */
  ahead?: number
}

export type DocDigest = {
  /** The document's name on every node: `shard/0`, `market/BTC-PERP`. */
  doc: string
  stateVectorDigest: string | null
  contentDigest: string | null
  pending: boolean
  damaged: boolean
  damage: unknown
  links: LinkState[]
}

/** The documents of one node's mesh status body, by document name. */
export function parseMeshStatus(body: unknown): Map<string, DocDigest> {
  const documents = new Map<string, DocDigest>()
  for (const document of (body as { documents: any[] }).documents) {
    const name = String(document.shard)
    const doc = name.slice(name.indexOf('/') + 1)
    documents.set(doc, {
      doc,
      stateVectorDigest: document.stateVectorDigest,
      contentDigest: document.contentDigest,
      pending: document.pending,
      damaged: document.damage !== null,
      damage: document.damage,
      links: ((document.links ?? []) as any[]).map((link) => ({
        peer: link.peer,
        state: link.state,
        direction: link.direction,
        behind: link.behind,
        ahead: link.ahead,
      })),
    })
  }
  return documents
}

/** '' when every node's documents agree and none is pending or damaged; else what differs. */
export function disagreement(ids: string[], views: Map<string, DocDigest>[]): string {
  const problems: string[] = []
  const names = new Set(views.flatMap((view) => [...view.keys()]))
  for (const name of [...names].sort()) {
    const docs = views.map((view) => view.get(name))
    const first = docs[0]
    const agree = docs.every(
      (doc) =>
        doc !== undefined &&
        first !== undefined &&
        !doc.pending &&
        !doc.damaged &&
        doc.contentDigest !== null &&
        doc.contentDigest === first.contentDigest &&
        doc.stateVectorDigest === first.stateVectorDigest,
    )
    if (agree) continue
    problems.push(
      `${name}: ` +
        docs
          .map((doc, i) =>
            doc === undefined
              ? `${ids[i]}=missing`
              : `${ids[i]}=${doc.contentDigest?.slice(0, 8)}/${doc.stateVectorDigest?.slice(0, 8)}` +
                `${doc.pending ? ' pending' : ''}${doc.damaged ? ' damaged' : ''} links[` +
                doc.links
                  .map((l) => `${l.peer}:${l.state}${l.behind ? ` behind ${l.behind}` : ''}`)
                  .join(' ') +
                ']',
          )
          .join('; '),
    )
  }
  return problems.join('\n')
}
