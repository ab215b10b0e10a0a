// Token buckets: a key may send `burst` requests at once and `perSecond` on average. A bucket is a
// plain value (tokens and when they were counted), refilled lazily from the time of each request,
// so the same inputs always give the same decision whatever clock the caller reads.

export type Rate = { perSecond: number; burst: number }
export type Bucket = { tokens: number; atMs: number }

export type Taken =
  { admitted: true; bucket: Bucket } | { admitted: false; bucket: Bucket; retryAfterMs: number }

/** A full bucket at `nowMs`: a key nobody has heard from may send its whole burst. */
export const full = (rate: Rate, nowMs: number): Bucket => ({ tokens: rate.burst, atMs: nowMs })

/** Takes one token from `bucket` (refilled up to `nowMs`), or says when one will be there. */
export function take(bucket: Bucket, rate: Rate, nowMs: number): Taken {
  // A clock that steps back refills nothing (and takes nothing away).
  const elapsedMs = Math.max(0, nowMs - bucket.atMs)
  const tokens = Math.min(rate.burst, bucket.tokens + (elapsedMs * rate.perSecond) / 1000)
  const refilled = { tokens, atMs: Math.max(nowMs, bucket.atMs) }
  if (tokens >= 1) return { admitted: true, bucket: { ...refilled, tokens: tokens - 1 } }
  return {
    admitted: false,
    bucket: refilled,
    retryAfterMs: Math.ceil(((1 - tokens) * 1000) / rate.perSecond),
  }
}
