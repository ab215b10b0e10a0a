// Checkpoints of a market document (design.md §2.3): how one is written, checked, put in force
// and compacted. Shard checkpoints (checkpoint.ts) fold entries by a cut; a market's history is
// one chain of matcher steps (domain/fencing.ts), so its checkpoints fold the chain up to a step.
//
// - The matcher writes a checkpoint with a settle step, in the same transaction: the market's
//   state just after that step (market-snapshot.ts), keyed by the step's key.
// - Every node, when its own replay of the chain applies that step, takes its own snapshot there
//   and acknowledges the checkpoint only if it is the same; else it records a finding and never
//   acknowledges. A node acknowledges only a step its own chain holds, so a checkpoint every node
//   acknowledged is in every node's chain, and no matcher term can start before it (fencing.ts).
// - A checkpoint is in force once every member acknowledged it. From then on the state starts
//   from it, and the steps it folds, older checkpoints and their acknowledgements, and the cancel
//   requests of orders closed in it may be deleted: every node holds what they held.

import type * as Y from 'yjs'
import { clockSkewMsMax } from '../constants'
import { orderFreeJson } from '../domain/canonical'
import * as fencing from '../domain/fencing'
import * as market from './market-doc'
import type { MarketState } from './market-state'

/** The latest checkpoint every one of `members` acknowledged; undefined in a document with none. */
export function inForce(
  doc: Y.Doc,
  members: readonly string[],
): market.MarketCheckpoint | undefined {
  if (!doc.share.has('marketCheckpoints')) return undefined
  const acks = market.marketCheckpointAcks(doc)
  const expected = orderFreeJson([...members].sort())
  let found: market.MarketCheckpoint | undefined
  for (const [key, checkpoint] of market.marketCheckpoints(doc)) {
    if (found !== undefined && checkpoint.at.seq <= found.at.seq) continue
    if (orderFreeJson([...checkpoint.members].sort()) !== expected) continue
    const everyone = members.every(
      (node) => acks.get(market.marketAckKey(key, node))?.checkpoint === key,
    )
    if (everyone) found = checkpoint
  }
  return found
}

/** The newest checkpoint written, in force or not. */
export function latest(doc: Y.Doc): market.MarketCheckpoint | undefined {
  if (!doc.share.has('marketCheckpoints')) return undefined
  let found: market.MarketCheckpoint | undefined
  for (const checkpoint of market.marketCheckpoints(doc).values()) {
    if (found === undefined || checkpoint.at.seq > found.at.seq) found = checkpoint
  }
  return found
}

/** The fields a node's own checkpoint and the written one must agree on (all but the writer). */
const checkedFields = [
  'id',
  'epoch',
  'at',
  'retainFrom',
  'members',
  'resting',
  'positions',
  'orders',
  'accounts',
  'settlements',
] as const satisfies readonly (keyof market.MarketCheckpoint)[]

/**
 * The parts in which `written` differs from `own`, none when it holds exactly it. Lists are
 * compared in order (the book's priority, the fills' sequence); objects whatever the order of
 * their keys, which each node's maps iterate in the order its updates came in.
 */
export const differences = (
  own: market.MarketCheckpoint,
  written: market.MarketCheckpoint,
): string[] =>
  checkedFields.filter((field) => orderFreeJson(own[field]) !== orderFreeJson(written[field]))

/**
 * Whether `inForce` settled the cancel request of `orderId`: the order is closed there. Judged by
 * the key alone, as a peer's deletion may arrive without the value. A request for an order the
 * matcher never took stays.
 */
function cancelSettled(inForce: market.MarketCheckpoint, orderId: string): boolean {
  const order = inForce.orders[orderId]
  return order !== undefined && order.status !== 'open' && order.status !== 'partially_filled'
}

const folds = (inForce: market.MarketCheckpoint, key: string): boolean =>
  fencing.foldedInto(inForce.at, market.pointOfStepKey(key))

/**
 * Deletes what the checkpoint in force folds: its steps, the cancel requests it settled, and
 * every older checkpoint with its acknowledgements. Returns how many entries it deleted.
 */
export function compact(doc: Y.Doc, inForce: market.MarketCheckpoint): number {
  let deleted = 0
  const drop = <T>(map: Y.Map<T>, foldedKey: (key: string) => boolean) => {
    for (const key of [...map.keys()]) {
      if (!foldedKey(key)) continue
      map.delete(key)
      deleted += 1
    }
  }
  const older = (key: string) => market.pointOfStepKey(key).seq < inForce.at.seq
  drop(market.steps(doc), (key) => folds(inForce, key))
  drop(market.cancelRequests(doc), (orderId) => cancelSettled(inForce, orderId))
  drop(market.marketCheckpoints(doc), older)
  drop(market.marketCheckpointAcks(doc), (key) => older(key.slice(0, key.indexOf('/'))))
  return deleted
}

/** Whether a peer's deletion of `name`/`key` is a compaction of the checkpoint in force here. */
export function deletionAllowed(
  name: string,
  key: string,
  inForceNow: () => market.MarketCheckpoint | undefined,
): boolean {
  const now = inForceNow()
  if (now === undefined) return false
  switch (name) {
    case 'steps':
      return folds(now, key)
    case 'cancelRequests':
      return cancelSettled(now, key)
    case 'marketCheckpoints':
      return market.pointOfStepKey(key).seq < now.at.seq
    case 'marketCheckpointAcks':
      return market.pointOfStepKey(key.slice(0, key.indexOf('/'))).seq < now.at.seq
    default:
      return false
  }
}

/**
 * The checkpoint written after the one in force that waits for acknowledgements, if any: one
 * whose settle step is in this state's chain (a fenced one never will be acknowledged).
 */
export function waiting(doc: Y.Doc, state: MarketState): market.MarketCheckpoint | undefined {
  if (!doc.share.has('marketCheckpoints')) return undefined
  const baseSeq = state.base?.at.seq ?? 0
  for (const written of market.marketCheckpoints(doc).values()) {
    const settled = state.settledEpochs.get(written.epoch)?.at
    const inChain = settled?.seq === written.at.seq && settled.term === written.at.term
    if (written.at.seq > baseSeq && inChain) return written
  }
  return undefined
}

/**
 * Whether the matcher writes a checkpoint with the settle step it just took at `ts`: checkpoints
 * are on (`intervalMs` > 0), none written since the one in force still waits for
 * acknowledgements, and the one in force is at least the interval old. A checkpoint waits only
 * while its step is in this chain: one written with a settle step a newer term fenced is never
 * acknowledged, and holds nothing up.
 */
export function due(doc: Y.Doc, state: MarketState, ts: number, intervalMs: number): boolean {
  if (intervalMs === 0 || waiting(doc, state) !== undefined) return false
  return (
    state.base === null || ts - (state.base.retainFrom + state.options.retentionMs) >= intervalMs
  )
}

/**
 * Whether an order its account shard recorded at `recordedAt` (that shard's clock, within
 * clockSkewMsMax of the matcher's) may have been taken and closed before `base` stopped keeping
 * closed orders: its view is gone then, and taking it again could execute it twice (I3).
 */
export const mayHaveFolded = (base: market.MarketCheckpoint | null, recordedAt: number): boolean =>
  base !== null && recordedAt < base.retainFrom + clockSkewMsMax
