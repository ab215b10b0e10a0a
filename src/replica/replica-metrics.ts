// What a replica reports for `GET /metrics` and the dashboard: cheap to gather (no digests), plain
// data over RPC. Each replica keeps its own counters in memory; the Worker asks every replica at
// scrape time and adds them up.

import type * as Y from 'yjs'
import type { Histogram } from '../histogram'
import type { LeaseStatus } from '../mesh/lease-agent'
import * as replication from '../mesh/replication'
import { hasPending } from '../state/digest'
import { findings } from '../state/shard-doc'
import * as durable from './durable-doc'
import { linkName } from './replica-mesh'

export type FindingCount = { kind: string; invariant: string; count: number }

/** A market's settlements: outcomes of this replica's settle calls, and the epochs its state holds. */
export type SettlementMetrics = {
  instrument: string
  /** Settle calls by outcome: `settled`, `replayed`, or the rejection's code. */
  outcomes: Record<string, number>
  /** Epochs settled, as every node replays them, and the latest. */
  epochs: number
  lastEpoch: number | null
}

/** A document's epoch checkpoints: the one in force, and whether a later one waits for a member. */
export type CheckpointMetrics = { inForceEpoch: number | null; waiting: boolean }

export type ReplicaMetrics = {
  /** The document's name on every node: `shard/3`, `market/BTC-PERP`. */
  doc: string
  damaged: boolean
  pending: boolean
  writeMs: Record<durable.WriteSource, Histogram>
  links: ReturnType<typeof replication.status>
  liveness: ReturnType<typeof replication.livenessOf>
  quorumWaiters: number
  lockQueueDepth: number
  findings: FindingCount[]
  settlement: SettlementMetrics | null
  /** A market's matcher lease as this node sees it. */
  lease: (LeaseStatus & { instrument: string }) | null
  checkpoint: CheckpointMetrics
}

export function gather(
  held: durable.DurableDoc,
  mesh: replication.Replication,
  extra: {
    lockQueueDepth: number
    settlement: SettlementMetrics | null
    lease: ReplicaMetrics['lease']
    checkpoint: CheckpointMetrics
  },
): ReplicaMetrics {
  return {
    doc: linkName(held.name),
    damaged: !held.state.ok,
    pending: held.state.ok && hasPending(held.state.doc),
    writeMs: held.writeMs,
    links: replication.status(mesh),
    liveness: replication.livenessOf(mesh),
    quorumWaiters: mesh.quorumWaiters.size,
    lockQueueDepth: extra.lockQueueDepth,
    findings: held.state.ok ? countFindings(held.state.doc) : [],
    settlement: extra.settlement,
    lease: extra.lease,
    checkpoint: extra.checkpoint,
  }
}

function countFindings(doc: Y.Doc): FindingCount[] {
  const counts = new Map<string, FindingCount>()
  for (const finding of findings(doc).values()) {
    const key = `${finding.kind}/${finding.invariant}`
    const count = counts.get(key) ?? { kind: finding.kind, invariant: finding.invariant, count: 0 }
    count.count += 1
    counts.set(key, count)
  }
  return [...counts.values()]
}
