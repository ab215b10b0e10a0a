// Epoch checkpoints of a shard document (design.md §2.3): how a checkpoint is cut, folded,
// acknowledged, put in force and compacted.
//
// - A cut is a state vector. An entry is inside it when the Yjs item that holds its current value
//   is (its clock below the cut's clock of its client), which every node decides alike.
// - A checkpoint folds every transfer and grant inside its cut on top of its base, the checkpoint
//   in force when it was cut, and commits to the accounts' balances with a Merkle root.
// - Every member node that holds the whole cut folds it again from its own document and, if it
//   finds the same root, acknowledges with its signature over (shard, epoch, root); else it
//   records a finding and never acknowledges. A merged copy of a request id (two items of one
//   key) whose current item lies outside the cut makes that node's fold differ: the checkpoint is
//   then never in force, and a later one, cut after the merge, folds the copy the merge kept.
// - A checkpoint is in force once every member acknowledged its root. From then on folds read it
//   plus the entries it does not fold, and the entries it folds (and older checkpoints) may be
//   deleted: every node holds them, so a deletion loses nothing any node could still need.

import * as Y from 'yjs'
import { orderFreeJson } from '../domain/canonical'
import * as folding from '../domain/checkpoint'
import type { Grant } from '../domain/escrow'
import type { Transfer } from '../domain/ledger'
import * as merkle from '../domain/merkle'
import * as shardDoc from './shard-doc'

export type Cut = Map<number, number>

/** The checkpoint in force, with its cut and openings parsed once. */
export type InForce = {
  checkpoint: shardDoc.Checkpoint
  cut: Cut
  openings: Map<string, folding.Opening>
}

/** The maps whose entries a checkpoint folds and compaction deletes. */
export type FoldedMap = 'transfers' | 'grants' | 'rightsRequests'
const foldedMaps: readonly FoldedMap[] = ['transfers', 'grants', 'rightsRequests']

const cutOf = (checkpoint: shardDoc.Checkpoint): Cut =>
  new Map(Object.entries(checkpoint.cut).map(([client, clock]) => [Number(client), clock]))

/** The document's state vector, as a checkpoint stores it. */
export const currentCut = (doc: Y.Doc): Record<string, number> =>
  Object.fromEntries(
    [...Y.decodeStateVector(Y.encodeStateVector(doc))].map(([client, clock]) => [client, clock]),
  )

/** Whether every struct inside `cut` is in `doc`. */
export const holdsCut = (doc: Y.Doc, cut: Record<string, number>): boolean => {
  const held = Y.decodeStateVector(Y.encodeStateVector(doc))
  return Object.entries(cut).every(([client, clock]) => (held.get(Number(client)) ?? 0) >= clock)
}

/** Whether the current value of `key` in `map` was written inside `cut`. */
export function inCut<T>(cut: Cut, map: Y.Map<T>, key: string): boolean {
  const item = map._map.get(key)
  return item !== undefined && item.id.clock < (cut.get(item.id.client) ?? 0)
}

/** Whether `inForce` folds entry `key` of `map`: inside its cut, or a request id it keeps. */
export function folds<T>(
  inForce: InForce | undefined,
  map: Y.Map<T>,
  name: FoldedMap,
  key: string,
): boolean {
  if (inForce === undefined) return false
  if (inCut(inForce.cut, map, key)) return true
  if (name === 'transfers') return key in inForce.checkpoint.recognized
  if (name === 'grants') return key in inForce.checkpoint.recognizedGrants
  return false
}

/** The entries of `map` that `inForce` does not fold: what is left to fold after its openings. */
export function unfolded<T>(inForce: InForce | undefined, map: Y.Map<T>, name: FoldedMap): T[] {
  const left: T[] = []
  for (const [key, entry] of map) if (!folds(inForce, map, name, key)) left.push(entry)
  return left
}

/** Whether every member acknowledged `checkpoint`'s root. */
const acknowledged = (doc: Y.Doc, checkpoint: shardDoc.Checkpoint): boolean =>
  checkpoint.members.every(
    (node) =>
      shardDoc.checkpointAcks(doc).get(shardDoc.ackKey(checkpoint.epoch, node))?.root ===
      checkpoint.root,
  )

/** The latest checkpoint every member acknowledged; undefined in a document with none. */
export function inForce(doc: Y.Doc): InForce | undefined {
  if (!doc.share.has('checkpoints')) return undefined
  const keys = [...shardDoc.checkpoints(doc).keys()].sort().reverse()
  for (const key of keys) {
    const checkpoint = shardDoc.checkpoints(doc).get(key)!
    if (!acknowledged(doc, checkpoint)) continue
    const openings = new Map(
      Object.entries(checkpoint.openings).map(([id, stored]) => [id, folding.load(stored)]),
    )
    return { checkpoint, cut: cutOf(checkpoint), openings }
  }
  return undefined
}

/** The newest checkpoint written, in force or not. */
export function latest(doc: Y.Doc): shardDoc.Checkpoint | undefined {
  if (!doc.share.has('checkpoints')) return undefined
  const key = [...shardDoc.checkpoints(doc).keys()].sort().at(-1)
  return key === undefined ? undefined : shardDoc.checkpoints(doc).get(key)
}

/** A folded transfer whose request id a checkpoint still recognises (I3), if any has it. */
export function recognizedTransfer(doc: Y.Doc, id: string): Transfer | undefined {
  if (!doc.share.has('checkpoints')) return undefined
  for (const checkpoint of shardDoc.checkpoints(doc).values()) {
    const transfer = checkpoint.recognized[id]
    if (transfer !== undefined) return transfer
  }
  return undefined
}

/** Whether a checkpoint folded a grant of this id (it is never granted again). */
export const recognizedGrant = (doc: Y.Doc, id: string): boolean =>
  doc.share.has('checkpoints') &&
  [...shardDoc.checkpoints(doc).values()].some((checkpoint) => id in checkpoint.recognizedGrants)

export type CutFold = Pick<
  shardDoc.Checkpoint,
  'openings' | 'accountIds' | 'recognized' | 'recognizedGrants' | 'root'
>

const foldFields = ['root', 'openings', 'accountIds', 'recognized', 'recognizedGrants'] as const

/**
 * The parts in which a checkpoint differs from `fold`, none when it holds exactly `fold`: what a
 * member checks before it acknowledges. Each node's maps iterate in the order its updates came
 * in, so the parts are compared whatever the order of their keys.
 */
export const foldDifferences = (fold: CutFold, entry: CutFold): (keyof CutFold)[] =>
  foldFields.filter((field) => orderFreeJson(fold[field]) !== orderFreeJson(entry[field]))

/**
 * The fold of `doc` up to `cut` on top of `base`: what a checkpoint of that cut must hold.
 * The writer and every acknowledging node compute it alike from their own documents.
 */
export function foldAt(
  doc: Y.Doc,
  base: InForce | undefined,
  cut: Record<string, number>,
  cutTime: number,
  signatureWindowMs: number,
): CutFold {
  const parsed = new Map(Object.entries(cut).map(([client, clock]) => [Number(client), clock]))
  const inside = <T>(name: FoldedMap, map: Y.Map<T>): T[] =>
    [...map.entries()]
      .filter(([key]) => inCut(parsed, map, key) && !folds(base, map, name, key))
      .map(([, value]) => value)
  const transfers = inside<Transfer>('transfers', shardDoc.transfers(doc))
  const grants = inside<Grant>('grants', shardDoc.grants(doc))
  const openings = folding.foldInto(base?.openings ?? new Map(), transfers, grants)
  const accounts = shardDoc.accounts(doc)
  const accountIds = [...accounts.keys()].filter((id) => inCut(parsed, accounts, id)).sort()
  const recognized: Record<string, Transfer> = {}
  for (const transfer of [...Object.values(base?.checkpoint.recognized ?? {}), ...transfers]) {
    if (folding.recognizes(transfer, cutTime, signatureWindowMs)) {
      // A replay answers from the record; the operator's signature was checked when it came in.
      const { signature: _signature, ...record } = transfer
      recognized[transfer.id] = record
    }
  }
  const recognizedGrants: Record<string, number> = {}
  const baseGrants = Object.entries(base?.checkpoint.recognizedGrants ?? {})
  for (const [id, ts] of [...baseGrants, ...grants.map((g) => [g.id, g.ts] as const)]) {
    if (folding.recognizes({ ts }, cutTime, signatureWindowMs)) recognizedGrants[id] = ts
  }
  return {
    openings: Object.fromEntries(
      [...openings]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([id, opening]) => [id, folding.store(opening)]),
    ),
    accountIds,
    recognized,
    recognizedGrants,
    root: merkle.root(folding.leavesOf(openings, accountIds)),
  }
}

/**
 * Deletes what the checkpoint in force folds: the entries inside its cut and every older
 * checkpoint with its acknowledgements. Returns how many entries it deleted.
 */
export function compact(doc: Y.Doc, inForce: InForce): number {
  let deleted = 0
  for (const name of foldedMaps) {
    const map = doc.getMap<unknown>(name)
    for (const key of [...map.keys()]) {
      if (inCut(inForce.cut, map, key)) {
        map.delete(key)
        deleted += 1
      }
    }
  }
  const current = shardDoc.checkpointKey(inForce.checkpoint.epoch)
  for (const key of [...shardDoc.checkpoints(doc).keys()]) {
    if (key < current) shardDoc.checkpoints(doc).delete(key)
  }
  for (const key of [...shardDoc.checkpointAcks(doc).keys()]) {
    if (key < current) shardDoc.checkpointAcks(doc).delete(key)
  }
  return deleted
}

/** Whether a peer's deletion of `name`/`key` is a compaction of the checkpoint in force. */
export function deletionAllowed(
  doc: Y.Doc,
  name: string,
  key: string,
  inForceNow: () => InForce | undefined,
): boolean {
  const now = inForceNow()
  if (now === undefined) return false
  if ((foldedMaps as readonly string[]).includes(name)) {
    return inCut(now.cut, doc.getMap(name), key)
  }
  if (name === 'checkpoints' || name === 'checkpointAcks') {
    return key < shardDoc.checkpointKey(now.checkpoint.epoch)
  }
  return false
}
