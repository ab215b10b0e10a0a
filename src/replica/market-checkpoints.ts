// A market replica's part in market checkpoints (src/state/market-checkpoint.ts has the rules):
// the matcher writes one with a settle step, every node acknowledges what its own replay
// confirms, and every node compacts once one is in force. Each part is a function of the
// document and the replayed state, so it may run after every catch-up.

import * as clock from '../clock'
import type { NodeConfig } from '../config'
import { recognizeMs } from '../domain/checkpoint'
import type * as Y from 'yjs'
import * as market from '../state/market-doc'
import * as marketCheckpoint from '../state/market-checkpoint'
import * as marketState from '../state/market-state'
import { writeOnce, findings } from '../state/shard-doc'
import { membersOf } from './checkpoints'
import * as durable from './durable-doc'

/** What every node's replay must agree on: the retention window and the mesh's members. */
export const optionsOf = (config: NodeConfig): marketState.MarketOptions => ({
  retentionMs: recognizeMs(config.signatureWindowMs),
  members: membersOf(config),
})

/**
 * In the matcher's transaction that took settle step `epoch` at `ts`: writes the checkpoint
 * there with this node's acknowledgement, when one is due (market-checkpoint.due).
 */
export function writeWhenDue(
  doc: Y.Doc,
  state: marketState.MarketState,
  config: NodeConfig,
  epoch: number,
  ts: number,
): void {
  if (!marketCheckpoint.due(doc, state, ts, config.checkpointIntervalMs)) return
  const checkpoint = marketState.checkpointHere(state, epoch, ts, config.nodeId)
  market.marketCheckpoints(doc).set(checkpoint.id, checkpoint)
  acknowledge(doc, checkpoint.id, config.nodeId)
}

function acknowledge(doc: Y.Doc, checkpoint: string, node: string): void {
  const id = market.marketAckKey(checkpoint, node)
  writeOnce(market.marketCheckpointAcks(doc), id, { id, checkpoint, node })
}

/**
 * After a catch-up: acknowledges each checkpoint the replay found its own snapshot equal to, or
 * records a finding for one it did not (never acknowledged, so never in force); then compacts to
 * the checkpoint in force. Returns how many entries it deleted.
 */
export function settle(
  held: durable.Serving,
  state: marketState.MarketState,
  config: NodeConfig,
): number {
  const checks = state.checks.splice(0)
  if (checks.length > 0) {
    durable.write(held, config.nodeId, (doc) => {
      for (const check of checks) {
        if (check.differences.length === 0) {
          acknowledge(doc, check.checkpoint, config.nodeId)
          continue
        }
        const id = `market-checkpoint/${check.checkpoint}/${config.nodeId}`
        writeOnce(findings(doc), id, {
          id,
          kind: 'checkpoint_mismatch',
          invariant: 'I1',
          accountId: null,
          message:
            `node ${config.nodeId} replays ${held.name} to other ${check.differences.join(', ')} ` +
            `at epoch ${check.epoch}'s settle step than its checkpoint holds: it does not ` +
            `acknowledge it, so nothing is compacted`,
          evidence: {
            checkpoint: check.checkpoint,
            epoch: check.epoch,
            differences: check.differences,
          },
          ts: clock.now(),
          node: config.nodeId,
        })
      }
    })
  }
  return compact(held, state, config)
}

/** A checkpoint as the operator sees it: where it is, and who acknowledged it. */
export type CheckpointSummary = {
  id: string
  epoch: number
  seq: number
  term: number
  retainFrom: number
  acknowledgedBy: string[]
}

/** The market's checkpoint in force and the latest written, and the steps the document holds. */
export type CheckpointState = {
  inForce: CheckpointSummary | null
  latest: CheckpointSummary | null
  stepsHeld: number
}

export function stateOf(doc: Y.Doc, state: marketState.MarketState): CheckpointState {
  const acks = market.marketCheckpointAcks(doc)
  const summary = (checkpoint: market.MarketCheckpoint | null | undefined) =>
    checkpoint === null || checkpoint === undefined
      ? null
      : {
          id: checkpoint.id,
          epoch: checkpoint.epoch,
          seq: checkpoint.at.seq,
          term: checkpoint.at.term,
          retainFrom: checkpoint.retainFrom,
          acknowledgedBy: checkpoint.members.filter((node) =>
            acks.has(market.marketAckKey(checkpoint.id, node)),
          ),
        }
  return {
    inForce: summary(state.base),
    latest: summary(marketCheckpoint.latest(doc)),
    stepsHeld: market.steps(doc).size,
  }
}

/** Deletes what the checkpoint in force folds, then folds the log into a smaller snapshot. */
function compact(
  held: durable.Serving,
  state: marketState.MarketState,
  config: NodeConfig,
): number {
  const base = state.base
  const doc = held.state.doc
  if (base === null || compactedTo.get(doc) === base.id) return 0
  const deleted = durable.write(held, config.nodeId, (ydoc) => marketCheckpoint.compact(ydoc, base))
  if (deleted > 0) durable.compact(held)
  compactedTo.set(doc, base.id)
  return deleted
}

/** The checkpoint each loaded document was last compacted to (a reload compacts once again). */
const compactedTo = new WeakMap<object, string>()
