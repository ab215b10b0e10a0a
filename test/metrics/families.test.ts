// The metric families built from the replicas' reports: every configured peer gets a link series
// per document (down when no live node link carries it), followers never count as peers, write
// histograms add up by document kind and source, findings by kind and invariant.

import { describe, expect, it } from 'vitest'
import { format } from '../../src/api/metrics/exposition'
import { metricFamilies, peerLinks } from '../../src/api/metrics/families'
import { createRequestMetrics } from '../../src/api/metrics/requests'
import { latencyBucketsMs } from '../../src/constants'
import * as histogram from '../../src/histogram'
import type { ReplicaMetrics } from '../../src/replica/replica-metrics'

const now = 1_000_000

function link(peer: string, role: 'node' | 'follower', behind: number, heardAgoMs: number) {
  return {
    peer,
    role,
    direction: 'out' as const,
    openedAt: now - 60_000,
    lastHeardAt: now - heardAgoMs,
    bytesIn: 0,
    bytesOut: 0,
    updatesIn: 0,
    updatesOut: 0,
    unacknowledged: 2,
    peerPromisedTerm: 0,
    state: 'up' as const,
    behind,
    ahead: 1,
  }
}

function replica(doc: string, writesMs: number[], extra: Partial<ReplicaMetrics> = {}) {
  const local = histogram.create(latencyBucketsMs)
  for (const ms of writesMs) histogram.observe(local, ms)
  return {
    doc,
    damaged: false,
    pending: false,
    writeMs: { local, peer: histogram.create(latencyBucketsMs) },
    links: [],
    liveness: [],
    quorumWaiters: 0,
    lockQueueDepth: 0,
    findings: [],
    settlement: null,
    lease: null,
    checkpoint: { inForceEpoch: null, waiting: false },
    ...extra,
  } satisfies ReplicaMetrics
}

describe('peerLinks', () => {
  it('gives every configured peer a link per document, from its live node links only', () => {
    const replicas = [
      replica('shard/0', [], {
        links: [
          link('b', 'node', 3, 400),
          link('b', 'node', 5, 900),
          link('c', 'follower', 9, 10),
          { peer: 'c', state: 'down', reconnects: 4, prompted: 0, lastError: 'refused' },
        ],
      }),
    ]
    expect(peerLinks(replicas, ['b', 'c'], now)).toEqual([
      {
        doc: 'shard/0',
        peer: 'b',
        up: true,
        behind: 5,
        ahead: 1,
        unacknowledged: 4,
        heardAgoMs: 400,
      },
      {
        doc: 'shard/0',
        peer: 'c',
        up: false,
        behind: 0,
        ahead: 0,
        unacknowledged: 0,
        heardAgoMs: null,
      },
    ])
  })
})

describe('metricFamilies', () => {
  it('adds write histograms by kind and source, findings by kind, and marks no epoch as -1', () => {
    const text = format(
      metricFamilies({
        requests: createRequestMetrics(),
        replicas: [
          replica('shard/0', [0.2, 3], {
            findings: [{ kind: 'merged_copy', invariant: 'I3', count: 2 }],
          }),
          replica('shard/1', [40], {
            findings: [{ kind: 'merged_copy', invariant: 'I3', count: 1 }],
            lockQueueDepth: 3,
            checkpoint: { inForceEpoch: 7, waiting: true },
          }),
          replica('market/BTC-PERP', [1], {
            settlement: {
              instrument: 'BTC-PERP',
              outcomes: { settled: 2 },
              epochs: 2,
              lastEpoch: null,
            },
          }),
        ],
        unanswered: 1,
        peers: [],
        now,
      }),
    )
    expect(text).toContain(
      'clearmesh_durable_write_duration_ms_count{kind="shard",source="local"} 3\n',
    )
    expect(text).toContain(
      'clearmesh_durable_write_duration_ms_sum{kind="shard",source="local"} 43.2\n',
    )
    expect(text).toContain(
      'clearmesh_durable_write_duration_ms_count{kind="market",source="local"} 1\n',
    )
    expect(text).toContain('clearmesh_findings{kind="merged_copy",invariant="I3"} 3\n')
    expect(text).toContain('clearmesh_account_lock_queue_depth{doc="shard/1"} 3\n')
    expect(text).toContain(
      'clearmesh_settlements_total{instrument="BTC-PERP",outcome="settled"} 2\n',
    )
    expect(text).toContain('clearmesh_settlement_last_epoch{instrument="BTC-PERP"} -1\n')
    expect(text).toContain('clearmesh_checkpoint_in_force_epoch{doc="shard/0"} -1\n')
    expect(text).toContain('clearmesh_checkpoint_in_force_epoch{doc="shard/1"} 7\n')
    expect(text).toContain('clearmesh_checkpoint_waiting{doc="shard/1"} 1\n')
    expect(text).toContain('clearmesh_replicas_unanswered 1\n')
  })

  it("gives each peer's node-wide liveness: the latest hearing over every document", () => {
    const heard = (peer: string, agoMs: number | null) => ({
      peer,
      lastHeardAt: agoMs === null ? null : now - agoMs,
      state: 'alive' as const,
    })
    const text = format(
      metricFamilies({
        requests: createRequestMetrics(),
        replicas: [
          replica('shard/0', [], { liveness: [heard('b', 9_000), heard('c', null)] }),
          replica('market/BTC-PERP', [], { liveness: [heard('b', 500), heard('c', null)] }),
        ],
        unanswered: 0,
        peers: ['b', 'c'],
        now,
      }),
    )
    expect(text).toContain('clearmesh_peer_state{peer="b",state="alive"} 1\n')
    expect(text).toContain('clearmesh_peer_state{peer="c",state="dead"} 1\n')
    expect(text).toContain('clearmesh_peer_state{peer="c",state="alive"} 0\n')
    expect(text).toContain('clearmesh_peer_heard_ago_ms{peer="b"} 500\n')
    expect(text).not.toContain('clearmesh_peer_heard_ago_ms{peer="c"}')
  })
})
