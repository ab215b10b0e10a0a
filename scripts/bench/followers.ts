// Followers on every document of every node of a mesh (scripts/lib/follower.ts): when each node
// made each ledger entry durable, and what state vector each node holds, without polling a node.

import * as Y from 'yjs'
import { follow, covers, unionOf, type Follower } from '../lib/follower'
import { epochMs, sleep } from './harness'

export type MeshFollowers = {
  /** When `node` forwarded the transfer `key` (ms since the epoch), if it did. */
  arrivedAt(node: string, key: string): number | undefined
  /** Every document's state vector on `node`. */
  stateVectors(node: string): Map<string, Map<number, number>>
  /** Per document, the union of the state vectors of `nodes`. */
  union(nodes: string[]): Map<string, Map<number, number>>
  /**
   * Resolves once every node of `nodes` holds `target`, with when (epoch ms) the last update that
   * got it there arrived; rejects past the deadline.
   */
  reach(
    nodes: string[],
    target: Map<string, Map<number, number>>,
    timeoutMs: number,
  ): Promise<number>
  /** When (epoch ms) the first update arrived at any follower of `node` after `sinceMs`, if any. */
  firstArrivalAfter(node: string, sinceMs: number): number | undefined
  /**
   * Per document that received anything after `sinceMs`: when its first update arrived (on any
   * node) and when its last one did (at quiescence: when the document converged).
   */
  documentTimes(sinceMs: number): Map<string, { firstMs: number; lastMs: number }>
  bytesIn(): number
  /** Bytes of what `from` holds that `to` lacks, over every document (encoded once). */
  diffBytes(from: string, to: string): number
  close(): void
}

export function documentNames(shards: number, instruments: string[]): string[] {
  return [
    ...Array.from({ length: shards }, (_, i) => `shard/${i}`),
    ...instruments.map((symbol) => `market/${symbol}`),
  ]
}

export async function followMesh(
  nodes: Record<string, string>,
  meshSecret: string,
  docs: string[],
): Promise<MeshFollowers> {
  const arrivals = new Map<string, Map<string, number>>()
  const updateTimes = new Map<string, number[]>()
  const docTimes = new Map<string, number[]>(docs.map((doc) => [doc, []]))
  const followers = new Map<string, Follower[]>()
  /** The time of the last reach() check: set by every update, so waiting is event-driven. */
  let changed: (() => void) | undefined
  for (const [node, url] of Object.entries(nodes)) {
    const seen = new Map<string, number>()
    const times: number[] = []
    arrivals.set(node, seen)
    updateTimes.set(node, times)
    const list = await Promise.all(
      docs.map(async (doc) => {
        const follower = await follow(node, url, meshSecret, doc, {
          onUpdate: (_update, at) => {
            times.push(at)
            docTimes.get(doc)?.push(at)
            changed?.()
          },
          timeoutMs: 60_000,
        })
        follower.ydoc.getMap('transfers').observe((event) => {
          const at = epochMs()
          for (const key of event.keysChanged) if (!seen.has(key)) seen.set(key, at)
        })
        return follower
      }),
    )
    followers.set(node, list)
  }
  const stateVectors = (node: string) =>
    new Map((followers.get(node) ?? []).map((f) => [f.doc, f.stateVector()]))
  const holds = (node: string, target: Map<string, Map<number, number>>) => {
    const vectors = stateVectors(node)
    return [...target].every(([doc, vector]) => covers(vectors.get(doc) ?? new Map(), vector))
  }
  return {
    arrivedAt: (node, key) => arrivals.get(node)?.get(key),
    stateVectors,
    union(among) {
      const result = new Map<string, Map<number, number>>()
      for (const doc of docs) {
        result.set(doc, unionOf(among.map((node) => stateVectors(node).get(doc) ?? new Map())))
      }
      return result
    },
    async reach(among, target, timeoutMs) {
      const deadline = performance.now() + timeoutMs
      for (;;) {
        if (among.every((node) => holds(node, target))) {
          return Math.max(
            ...among.flatMap((node) => (followers.get(node) ?? []).map((f) => f.lastArrivalMs())),
          )
        }
        if (performance.now() > deadline) {
          const lagging = among.filter((node) => !holds(node, target))
          throw new Error(`${lagging.join(',')} did not reach the target within ${timeoutMs} ms`)
        }
        await Promise.race([new Promise<void>((resolve) => (changed = resolve)), sleep(250)])
      }
    },
    firstArrivalAfter(node, sinceMs) {
      return updateTimes.get(node)?.find((at) => at > sinceMs)
    },
    documentTimes(sinceMs) {
      const result = new Map<string, { firstMs: number; lastMs: number }>()
      for (const [doc, times] of docTimes) {
        const after = times.filter((at) => at > sinceMs)
        if (after.length > 0)
          result.set(doc, { firstMs: Math.min(...after), lastMs: Math.max(...after) })
      }
      return result
    },
    diffBytes(from, to) {
      const target = new Map((followers.get(to) ?? []).map((f) => [f.doc, f.ydoc]))
      let bytes = 0
      for (const follower of followers.get(from) ?? []) {
        const other = target.get(follower.doc)
        if (other === undefined) continue
        const update = Y.encodeStateAsUpdate(follower.ydoc, Y.encodeStateVector(other))
        // An update with nothing in it encodes to two empty lists.
        if (update.byteLength > 2) bytes += update.byteLength
      }
      return bytes
    },
    bytesIn: () =>
      [...followers.values()].flat().reduce((sum, follower) => sum + follower.bytesIn(), 0),
    close() {
      for (const follower of [...followers.values()].flat()) follower.close()
    },
  }
}
