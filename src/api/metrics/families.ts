// The metric families `GET /metrics` serves, built from this isolate's request counters and the
// replicas' own reports. Every label takes a bounded set of values: route patterns, status codes,
// error codes, document names and peer ids from the node's configuration.

import { latencyBucketsMs } from '../../constants'
import * as liveness from '../../domain/liveness'
import * as histogram from '../../histogram'
import { heartbeatTiming, type LinkStatus } from '../../mesh/replication'
import type { ReplicaMetrics } from '../../replica/replica-metrics'
import type { Family, Labels } from './exposition'
import type { RequestMetrics } from './requests'

type Sample = { labels: Labels; value: number }

/** A peer's link for one document as the metrics see it: up or not, lag, backlog. */
export type PeerLink = {
  doc: string
  peer: string
  up: boolean
  behind: number
  ahead: number
  unacknowledged: number
  heardAgoMs: number | null
}

/** Every configured peer's link for every document; a peer with no live link is down. */
export function peerLinks(replicas: ReplicaMetrics[], peers: string[], now: number): PeerLink[] {
  return replicas.flatMap((replica) =>
    peers.map((peer) => {
      const live = replica.links.filter(
        (link): link is LinkStatus =>
          link.peer === peer && link.state === 'up' && link.role === 'node',
      )
      const max = (pick: (link: (typeof live)[number]) => number) =>
        live.reduce((n, link) => Math.max(n, pick(link)), 0)
      return {
        doc: replica.doc,
        peer,
        up: live.length > 0,
        behind: max((link) => link.behind),
        ahead: max((link) => link.ahead),
        unacknowledged: live.reduce((n, link) => n + link.unacknowledged, 0),
        heardAgoMs: live.length === 0 ? null : now - max((link) => link.lastHeardAt),
      }
    }),
  )
}

const gauge = (name: string, help: string, samples: Sample[]): Family => ({
  name,
  help,
  type: 'gauge',
  samples,
})

function requestFamilies(requests: RequestMetrics): Family[] {
  const series = [...requests.requests.values()]
  const labels = ({ method, route, status }: (typeof series)[number]) => ({
    method,
    route,
    status: String(status),
  })
  return [
    {
      name: 'clearmesh_http_requests_total',
      help: 'HTTP requests answered by this isolate, by method, route pattern and status',
      type: 'counter',
      samples: series.map((entry) => ({ labels: labels(entry), value: entry.latencyMs.count })),
    },
    {
      name: 'clearmesh_http_request_duration_ms',
      help: 'Time from request to response in this isolate, milliseconds',
      type: 'histogram',
      samples: series.map((entry) => ({ labels: labels(entry), histogram: entry.latencyMs })),
    },
    {
      name: 'clearmesh_refusals_total',
      help: 'Error answers by error code (insufficient_local_rights, account_busy, ...)',
      type: 'counter',
      samples: [...requests.refusals].map(([code, value]) => ({ labels: { code }, value })),
    },
  ]
}

function durableWriteFamily(replicas: ReplicaMetrics[]): Family {
  const sums = new Map<string, { labels: Labels; histogram: histogram.Histogram }>()
  for (const replica of replicas) {
    const kind = replica.doc.slice(0, replica.doc.indexOf('/'))
    for (const [source, observed] of Object.entries(replica.writeMs)) {
      const key = `${kind}/${source}`
      const sum = sums.get(key) ?? {
        labels: { kind, source },
        histogram: histogram.create(latencyBucketsMs),
      }
      histogram.add(sum.histogram, observed)
      sums.set(key, sum)
    }
  }
  return {
    name: 'clearmesh_durable_write_duration_ms',
    help: 'Apply and append of one durable update (document kind; source local or peer), ms',
    type: 'histogram',
    samples: [...sums.values()],
  }
}

function linkFamilies(links: PeerLink[]): Family[] {
  const of = (pick: (link: PeerLink) => number) =>
    links.map((link) => ({ labels: { doc: link.doc, peer: link.peer }, value: pick(link) }))
  return [
    gauge(
      'clearmesh_link_up',
      '1 while a live link to the peer carries the document',
      of((l) => +l.up),
    ),
    gauge(
      'clearmesh_link_behind',
      'Clock units the peer holds that this replica lacks, by its last word (0 when down)',
      of((l) => l.behind),
    ),
    gauge(
      'clearmesh_link_ahead',
      'Clock units this replica holds that the peer lacks, by its last word (0 when down)',
      of((l) => l.ahead),
    ),
    gauge(
      'clearmesh_link_unacknowledged',
      "Updates sent on the document's links to the peer without a Held back (link backlog)",
      of((l) => l.unacknowledged),
    ),
  ]
}

/** The node-wide view of each peer (heard on any document's links): its state, its silence. */
function livenessFamilies(replicas: ReplicaMetrics[], now: number): Family[] {
  const peers = liveness.merge(
    replicas.map((replica) => replica.liveness),
    now,
    heartbeatTiming,
  )
  const states: liveness.PeerState[] = ['alive', 'suspect', 'dead']
  return [
    gauge(
      'clearmesh_peer_state',
      "1 for the peer's state by heartbeats (alive, suspect, dead), 0 for the others",
      peers.flatMap(({ peer, state }) =>
        states.map((candidate) => ({
          labels: { peer, state: candidate },
          value: +(state === candidate),
        })),
      ),
    ),
    gauge(
      'clearmesh_peer_heard_ago_ms',
      'Time since this node last heard the peer on any link (absent if never since start), ms',
      peers.flatMap(({ peer, lastHeardAt }) =>
        lastHeardAt === null ? [] : [{ labels: { peer }, value: now - lastHeardAt }],
      ),
    ),
  ]
}

function replicaFamilies(replicas: ReplicaMetrics[]): Family[] {
  const perDoc = (pick: (replica: ReplicaMetrics) => number) =>
    replicas.map((replica) => ({ labels: { doc: replica.doc }, value: pick(replica) }))
  const findings = new Map<string, Sample>()
  for (const { kind, invariant, count } of replicas.flatMap((replica) => replica.findings)) {
    const sample = findings.get(`${kind}/${invariant}`) ?? { labels: { kind, invariant }, value: 0 }
    sample.value += count
    findings.set(`${kind}/${invariant}`, sample)
  }
  const settlements = replicas.flatMap((replica) => replica.settlement ?? [])
  return [
    gauge(
      'clearmesh_document_pending',
      '1 while the document holds pending structs',
      perDoc((r) => +r.pending),
    ),
    gauge(
      'clearmesh_document_damaged',
      '1 while the document refuses to serve',
      perDoc((r) => +r.damaged),
    ),
    gauge(
      'clearmesh_quorum_waiters',
      'Writes waiting for a majority to hold them',
      perDoc((r) => r.quorumWaiters),
    ),
    gauge(
      'clearmesh_account_lock_queue_depth',
      "Calls holding or waiting for an account's lock in the shard",
      perDoc((r) => r.lockQueueDepth),
    ),
    gauge('clearmesh_findings', 'Findings recorded in the documents (merged copies, violations)', [
      ...findings.values(),
    ]),
    {
      name: 'clearmesh_settlements_total',
      help: "Settle calls of this node's markets by outcome (settled, replayed, or the refusal)",
      type: 'counter',
      samples: settlements.flatMap(({ instrument, outcomes }) =>
        Object.entries(outcomes).map(([outcome, value]) => ({
          labels: { instrument, outcome },
          value,
        })),
      ),
    },
    gauge(
      'clearmesh_lease_holding',
      "1 while this node holds the instrument's matcher lease (and 2 once ready to match)",
      replicas.flatMap(({ lease }) =>
        lease === null
          ? []
          : [{ labels: { instrument: lease.instrument }, value: +lease.holding + +lease.ready }],
      ),
    ),
    gauge(
      'clearmesh_lease_term',
      'The highest matcher lease term this node knows of, per instrument',
      replicas.flatMap(({ lease }) =>
        lease === null ? [] : [{ labels: { instrument: lease.instrument }, value: lease.term }],
      ),
    ),
    gauge(
      'clearmesh_checkpoint_in_force_epoch',
      "The epoch of the document's checkpoint in force (-1 before the first)",
      perDoc((r) => r.checkpoint.inForceEpoch ?? -1),
    ),
    gauge(
      'clearmesh_checkpoint_waiting',
      '1 while a checkpoint written after the one in force waits for a node to acknowledge it',
      perDoc((r) => +r.checkpoint.waiting),
    ),
    gauge(
      'clearmesh_settlement_last_epoch',
      'The latest settled epoch this node holds, per instrument (-1 before the first)',
      settlements.map(({ instrument, lastEpoch }) => ({
        labels: { instrument },
        value: lastEpoch ?? -1,
      })),
    ),
  ]
}

export function metricFamilies(input: {
  requests: RequestMetrics
  replicas: ReplicaMetrics[]
  unanswered: number
  peers: string[]
  now: number
}): Family[] {
  return [
    ...requestFamilies(input.requests),
    durableWriteFamily(input.replicas),
    ...linkFamilies(peerLinks(input.replicas, input.peers, input.now)),
    ...livenessFamilies(input.replicas, input.now),
    ...replicaFamilies(input.replicas),
    gauge('clearmesh_replicas_unanswered', 'Replicas that did not answer this scrape', [
      { labels: {}, value: input.unanswered },
    ]),
  ]
}
