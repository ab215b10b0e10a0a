// What a read reflects, put the way a client decides with it: which node answered, whether every
// document it read was causally complete (no pending structs), the state-vector digests to compare
// across nodes (equal digests: the same state), and how old the answer is by this client's clock.

import * as clock from '../clock'
import type { Reflects } from './wire'

export type Staleness = {
  /** Id of the node whose replicas the read came from. */
  node: string
  /** Some document read held updates whose dependencies had not arrived yet. */
  pending: boolean
  /** State-vector digest of each document read, by document (`a/shard/3`, `a/market/BTC-PERP`). */
  digests: Record<string, string>
  /** Ms since the node read its state, by this client's clock (skew between the two included). */
  ageMs: number
}

export function staleness(reflects: Reflects, now: number = clock.now()): Staleness {
  return {
    node: reflects.node,
    pending: reflects.shards.some((shard) => shard.pending),
    digests: Object.fromEntries(
      reflects.shards.map((shard) => [shard.shard, shard.stateVectorDigest]),
    ),
    ageMs: Math.max(0, now - reflects.at),
  }
}
