// A latency histogram with fixed bucket bounds: counts per bucket, the sum and the count, kept in
// memory (per isolate, per Durable Object) and read out at scrape time. Plain data, so a replica
// can hand it over RPC and the API can add several together.

import { assert } from './domain/assert'

export type Histogram = {
  /** Upper bounds of the buckets, ascending; a value above the last lands in the +Inf bucket. */
  bounds: readonly number[]
  /** Observations per bucket (not cumulative); one more entry than `bounds`, for +Inf. */
  counts: number[]
  sum: number
  count: number
}

export const create = (bounds: readonly number[]): Histogram => ({
  bounds,
  counts: new Array<number>(bounds.length + 1).fill(0),
  sum: 0,
  count: 0,
})

export function observe(histogram: Histogram, value: number): void {
  let bucket = histogram.bounds.findIndex((bound) => value <= bound)
  if (bucket === -1) bucket = histogram.bounds.length
  histogram.counts[bucket]! += 1
  histogram.sum += value
  histogram.count += 1
}

/** Adds `from` into `into`; both must share their bounds. */
export function add(into: Histogram, from: Histogram): void {
  assert(into.bounds.join() === from.bounds.join(), 'histograms added share their bounds')
  from.counts.forEach((n, i) => (into.counts[i]! += n))
  into.sum += from.sum
  into.count += from.count
}
