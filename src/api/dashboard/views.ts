// What the dashboard shows of a node, and how a node gathers the views of its peers: over the
// mesh, through the same Dialer the links and order forwarding use, with a mesh token bound to the
// view. A peer that does not answer in time is shown unreachable: that is how the page shows a
// partition seen from the node the operator has open.

import type { Env, NodeConfig } from '../../config'
import { peerViewTimeoutMs } from '../../constants'
import * as token from '../../mesh/token'
import type { Dialer } from '../../mesh/transport'
import type { WriteSource } from '../../replica/durable-doc'
import type { MeshStatus } from '../../replica/shard-replica'
import type { Finding } from '../../state/shard-doc'
import { peerLinks, type PeerLink } from '../metrics/families'
import { nodeReplicas } from '../../replica/addressing'
import { gatherReplicas } from '../metrics/gather'
import { isolateRequests } from '../metrics/requests'
import { breakerState } from '../routes/admin-breakers'
import * as clock from '../../clock'

/** Path of a node's own view on every node, for its peers (mesh token). */
export const nodeViewPath = '/v1/mesh/view'
/** What a view token is bound to: never a sync document or a matcher. */
export const nodeViewDoc = 'view'
/** Latest findings a view lists (the counts cover all of them). */
const findingsListedMax = 10

export type DocumentView = {
  doc: string
  stateVectorDigest: string | null
  contentDigest: string | null
  pending: boolean
  damaged: boolean
  links: Omit<PeerLink, 'doc'>[]
}

export type NodeView = {
  node: string
  at: number
  peers: string[]
  documents: DocumentView[]
  findings: { count: number; latest: Finding[] }
  breakers: Awaited<ReturnType<typeof breakerState>>
  settlements: { instrument: string; lastEpoch: number | null; epochs: number }[]
  /** Durable writes since the replicas loaded, by source: rates come from two views' difference. */
  writes: Record<WriteSource, number>
  /** HTTP requests this isolate has answered. */
  requests: number
}

export type PeerAnswer =
  | { node: string; reachable: true; view: NodeView }
  | { node: string; reachable: false; error: string }

/** Every replica's mesh status (shards and markets answer the same shape). */
type DocumentStatus = MeshStatus & { findings: Finding[] }

const documentStatuses = (env: Env, config: NodeConfig): Promise<DocumentStatus[]> =>
  Promise.all(
    nodeReplicas(env, config).map(({ stub }) => stub.meshStatus() as Promise<DocumentStatus>),
  )

export async function nodeView(env: Env, config: NodeConfig): Promise<NodeView> {
  const [statuses, { replicas }, breakers] = await Promise.all([
    documentStatuses(env, config),
    gatherReplicas(env, config),
    breakerState(env, config),
  ])
  const now = clock.now()
  const links = peerLinks(replicas, [...config.peers.keys()], now)
  const documents = statuses.map((status): DocumentView => {
    const doc = status.shard.slice(status.shard.indexOf('/') + 1)
    return {
      doc,
      stateVectorDigest: status.stateVectorDigest,
      contentDigest: status.contentDigest,
      pending: status.pending,
      damaged: status.damage !== null,
      links: links.filter((link) => link.doc === doc).map(({ doc: _doc, ...link }) => link),
    }
  })
  const latest = statuses
    .flatMap((status): Finding[] => status.findings)
    .sort((x, y) => y.ts - x.ts)
    .slice(0, findingsListedMax)
  const sum = (pick: (replica: (typeof replicas)[number]) => number) =>
    replicas.reduce((n, replica) => n + pick(replica), 0)
  return {
    node: config.nodeId,
    at: now,
    peers: [...config.peers.keys()],
    documents,
    findings: {
      count: sum((replica) => replica.findings.reduce((n, finding) => n + finding.count, 0)),
      latest,
    },
    breakers,
    settlements: replicas.flatMap(({ settlement }) =>
      settlement === null
        ? []
        : [
            {
              instrument: settlement.instrument,
              lastEpoch: settlement.lastEpoch,
              epochs: settlement.epochs,
            },
          ],
    ),
    writes: {
      local: sum((replica) => replica.writeMs.local.count),
      peer: sum((replica) => replica.writeMs.peer.count),
    },
    requests: [...isolateRequests.requests.values()].reduce(
      (n, series) => n + series.latencyMs.count,
      0,
    ),
  }
}

/** Asks `peer` for its view over the mesh; unreachable if it does not answer 200 in time. */
export async function peerView(
  config: NodeConfig,
  fetcher: Dialer,
  peer: string,
): Promise<PeerAnswer> {
  const base = config.peers.get(peer)
  if (base === undefined) return { node: peer, reachable: false, error: 'not a peer' }
  const credential = await token.issue(
    config.meshSecret,
    { role: 'node', id: config.nodeId },
    nodeViewDoc,
    clock.now() + peerViewTimeoutMs,
  )
  try {
    const response = await fetcher(`${base}${nodeViewPath}`, {
      headers: { Authorization: `Bearer ${credential}` },
      signal: AbortSignal.timeout(peerViewTimeoutMs),
    })
    if (response.status !== 200) {
      return { node: peer, reachable: false, error: `answered ${response.status}` }
    }
    return { node: peer, reachable: true, view: (await response.json()) as NodeView }
  } catch (error) {
    return { node: peer, reachable: false, error: String(error) }
  }
}
