// The token buckets of the API keys of one shard replica, in memory. The shard's replica is the
// one place on a node where its keys are resolved, so the limit is per key and per node: a client
// spreading its requests over n nodes gets n times the rate (each node protects itself). Buckets
// are not durable: a restarted replica starts every key with a full bucket. At most
// `rateBucketsMax` are kept; the least recently used is forgotten (a full bucket again).

import { rateBucketsMax } from '../constants'
import * as rateLimit from '../domain/rate-limit'

/** Cancels and reduce-only orders draw from a lane of their own (see constants.ts). */
export type Lane = 'general' | 'reducing'
export const lanes: readonly Lane[] = ['general', 'reducing']

export type RateBuckets = Map<string, rateLimit.Bucket>

/** Takes a token of `keyId`'s bucket in `lane`, or says in how many ms to come back. */
export function take(
  buckets: RateBuckets,
  keyId: string,
  lane: Lane,
  rate: rateLimit.Rate,
  nowMs: number,
): { admitted: true } | { admitted: false; retryAfterMs: number } {
  const name = `${lane}/${keyId}`
  const taken = rateLimit.take(buckets.get(name) ?? rateLimit.full(rate, nowMs), rate, nowMs)
  // Re-inserted, so the map's order is least recently used first.
  buckets.delete(name)
  buckets.set(name, taken.bucket)
  if (buckets.size > rateBucketsMax) buckets.delete(buckets.keys().next().value!)
  return taken.admitted ? { admitted: true } : { admitted: false, retryAfterMs: taken.retryAfterMs }
}
