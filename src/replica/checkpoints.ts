// A shard replica's part in epoch checkpoints (src/state/checkpoint.ts has the rules): the
// writer cuts and folds, every member acknowledges what its own fold confirms, and every node
// compacts once a checkpoint is in force. Each step is a function of the document, so it may run
// as often as anything changes: after a peer's update, on the epoch alarm, on an operator's call.

import * as merkle from '../domain/merkle'
import type { NodeConfig } from '../config'
import * as clock from '../clock'
import { epochOf } from '../domain/reconciler'
import type { AccountIndex } from '../state/account-index'
import * as checkpoint from '../state/checkpoint'
import { hasPending } from '../state/digest'
import { signContent } from '../state/operator-signature'
import * as shardDoc from '../state/shard-doc'
import * as durable from './durable-doc'

/** What one step did, for logs and tests. */
export type StepReport = {
  written: number | null
  acknowledged: number | null
  mismatched: number | null
  compacted: number
}

/** The nodes whose acknowledgements put a checkpoint in force: the whole mesh. */
export const membersOf = (config: NodeConfig): string[] =>
  [config.nodeId, ...config.peers.keys()].sort()

/**
 * Runs every checkpoint step this node may take now. `epoch` is the epoch to cut, if this node is
 * the writer (the settlement node: one writer, so one checkpoint per epoch); null only acknowledges
 * and compacts.
 */
export function step(
  held: durable.DurableDoc,
  index: AccountIndex,
  config: NodeConfig,
  shard: number,
  epoch: number | null,
): StepReport {
  const report: StepReport = { written: null, acknowledged: null, mismatched: null, compacted: 0 }
  if (!durable.serving(held) || hasPending(held.state.doc)) return report
  if (epoch !== null && config.nodeId === config.settlementNode) {
    report.written = cut(held, index, config, shard, epoch)
  }
  const acked = acknowledge(held, index, config, shard)
  if (acked?.matches === true) report.acknowledged = acked.epoch
  if (acked?.matches === false) report.mismatched = acked.epoch
  report.compacted = compact(held, index, config)
  return report
}

/** The epoch the checkpoint alarm cuts now; null when checkpoints are off. */
export const dueEpoch = (config: NodeConfig): number | null =>
  config.checkpointIntervalMs > 0 ? epochOf(clock.now(), config.checkpointIntervalMs) : null

/**
 * Writes the checkpoint of `epoch`, unless one of it or a later epoch exists, or the latest one is
 * not in force yet (a member has not acknowledged it: the next cut waits for it).
 */
function cut(
  held: durable.Serving,
  index: AccountIndex,
  config: NodeConfig,
  shard: number,
  epoch: number,
): number | null {
  const doc = held.state.doc
  const latest = checkpoint.latest(doc)
  if (latest !== undefined && latest.epoch >= epoch) return null
  if (latest !== undefined && index.inForce?.checkpoint.epoch !== latest.epoch) return null
  const cutTime = clock.now()
  const stateVector = checkpoint.currentCut(doc)
  const fold = checkpoint.foldAt(doc, index.inForce, stateVector, cutTime, config.signatureWindowMs)
  const entry: shardDoc.Checkpoint = {
    id: shardDoc.checkpointKey(epoch),
    epoch,
    shard,
    base: index.inForce?.checkpoint.epoch ?? null,
    cut: stateVector,
    cutTime,
    writer: config.nodeId,
    members: membersOf(config),
    ...fold,
  }
  // A shard with many accounts folds into a checkpoint larger than one stored update.
  durable.write(
    held,
    config.nodeId,
    (ydoc) => shardDoc.writeOnce(shardDoc.checkpoints(ydoc), entry.id, entry),
    'fold',
  )
  return epoch
}

/**
 * Acknowledges the latest checkpoint once this node holds its whole cut and its base is in force
 * here, if its own fold gives the same openings and root; records a finding if it does not.
 */
function acknowledge(
  held: durable.Serving,
  index: AccountIndex,
  config: NodeConfig,
  shard: number,
): { epoch: number; matches: boolean } | undefined {
  const doc = held.state.doc
  const latest = checkpoint.latest(doc)
  if (latest === undefined || !latest.members.includes(config.nodeId)) return undefined
  const key = shardDoc.ackKey(latest.epoch, config.nodeId)
  if (shardDoc.checkpointAcks(doc).has(key)) return undefined
  if (shardDoc.findings(doc).has(mismatchId(latest.epoch, config.nodeId))) return undefined
  if ((index.inForce?.checkpoint.epoch ?? null) !== latest.base) return undefined
  if (!checkpoint.holdsCut(doc, latest.cut)) return undefined
  const fold = checkpoint.foldAt(
    doc,
    index.inForce,
    latest.cut,
    latest.cutTime,
    config.signatureWindowMs,
  )
  // Everything the checkpoint will stand for once in force, not the root alone: its openings,
  // its accounts and the request ids it keeps recognising.
  const differences = checkpoint.foldDifferences(fold, latest)
  const matches = differences.length === 0
  durable.write(held, config.nodeId, (ydoc) => {
    if (matches) {
      const content = merkle.checkpointSignedContent(shard, latest.epoch, latest.root)
      shardDoc.writeOnce(shardDoc.checkpointAcks(ydoc), key, {
        id: key,
        epoch: latest.epoch,
        node: config.nodeId,
        root: latest.root,
        publicKey: config.nodePublicKey,
        signature: signContent(config.nodeSigningKey, content),
      })
      return
    }
    const id = mismatchId(latest.epoch, config.nodeId)
    shardDoc.writeOnce(shardDoc.findings(ydoc), id, {
      id,
      kind: 'checkpoint_mismatch',
      invariant: 'I1',
      accountId: null,
      message:
        `node ${config.nodeId} folds epoch ${latest.epoch}'s cut to other ${differences.join(', ')} ` +
        `than the checkpoint holds: it does not acknowledge it, so nothing is compacted`,
      evidence: { epoch: latest.epoch, root: latest.root, folded: fold.root, differences },
      ts: clock.now(),
      node: config.nodeId,
    })
  })
  return { epoch: latest.epoch, matches }
}

const mismatchId = (epoch: number, node: string) => `checkpoint/${epoch}/${node}`

/**
 * Deletes what the checkpoint in force folds and folds the log into a new snapshot, so storage
 * shrinks with the document. Returns how many entries it deleted.
 */
function compact(held: durable.Serving, index: AccountIndex, config: NodeConfig): number {
  const inForce = index.inForce
  const doc = held.state.doc
  if (inForce === undefined || compactedEpochs.get(doc) === inForce.checkpoint.epoch) return 0
  const deleted = durable.write(held, config.nodeId, (ydoc) => checkpoint.compact(ydoc, inForce))
  if (deleted > 0) durable.compact(held)
  compactedEpochs.set(doc, inForce.checkpoint.epoch)
  return deleted
}

/** The checkpoint each loaded document was last compacted to (a reload compacts once again). */
const compactedEpochs = new WeakMap<object, number>()
