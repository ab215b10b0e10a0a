// Token buckets alone, on explicit times: a burst, then the average rate, refills capped at the
// burst, a clock stepping back, and when to come back.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as rateLimit from '../../src/domain/rate-limit'

const rate = { perSecond: 10, burst: 5 }

/** Takes a token at each of `times`; returns which were admitted and the last bucket. */
function takeAt(times: number[], from = rateLimit.full(rate, 0)) {
  let bucket = from
  const admitted: boolean[] = []
  for (const at of times) {
    const taken = rateLimit.take(bucket, rate, at)
    bucket = taken.bucket
    admitted.push(taken.admitted)
  }
  return { admitted, bucket }
}

describe('token bucket', () => {
  it('admits the burst at once, then refuses and says when a token is back', () => {
    const { admitted, bucket } = takeAt([0, 0, 0, 0, 0])
    expect(admitted).toEqual([true, true, true, true, true])
    const refused = rateLimit.take(bucket, rate, 0)
    expect(refused).toEqual({ admitted: false, bucket: { tokens: 0, atMs: 0 }, retryAfterMs: 100 })
    // Part of a token has come back after 40 ms: 60 ms to go.
    expect(rateLimit.take(bucket, rate, 40)).toMatchObject({ admitted: false, retryAfterMs: 60 })
    expect(rateLimit.take(bucket, rate, 100)).toMatchObject({ admitted: true })
  })

  it('refills at the rate, never above the burst', () => {
    const drained = takeAt([0, 0, 0, 0, 0]).bucket
    const later = rateLimit.take(drained, rate, 60_000)
    expect(later).toEqual({ admitted: true, bucket: { tokens: rate.burst - 1, atMs: 60_000 } })
  })

  it('a clock that steps back neither refills nor drains', () => {
    const bucket = { tokens: 2, atMs: 1_000 }
    expect(rateLimit.take(bucket, rate, 500)).toEqual({
      admitted: true,
      bucket: { tokens: 1, atMs: 1_000 },
    })
  })

  it('admits at most burst + rate × elapsed over any run of requests', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2_000 }), { minLength: 1, maxLength: 200 }),
        (gaps) => {
          const times = gaps.reduce<number[]>((at, gap) => [...at, (at.at(-1) ?? 0) + gap], [])
          const { admitted } = takeAt(times)
          const count = admitted.filter(Boolean).length
          const elapsedMs = times.at(-1)! - 0
          expect(count).toBeLessThanOrEqual(rate.burst + (elapsedMs * rate.perSecond) / 1000)
          // Requests spaced by at least one token's time are all admitted.
          if (gaps.every((gap) => gap >= 1000 / rate.perSecond)) {
            expect(count).toBe(times.length)
          }
        },
      ),
    )
  })
})
