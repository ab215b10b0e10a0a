// The clock seam F9 relies on (src/clock.ts): a node's configuration sets how far its clock is
// off, bounded, 0 when unset; alarms convert back to the runtime's own clock.

import { afterEach, describe, expect, it } from 'vitest'
import * as clock from '../../src/clock'
import { readConfig, type Env } from '../../src/config'
import { clockSkewMsMax } from '../../src/constants'
import { generateOperatorKey } from '../../src/state/operator-signature'

const operator = generateOperatorKey()

const env = (vars: Partial<Env>): Env =>
  ({
    NODE_ID: 'a',
    ADMIN_TOKEN: 'test-admin-token-0123456789',
    KEY_SECRET: 'test-key-secret-0123456789',
    OPERATOR_PUBLIC_KEY: operator.publicKey,
    ...vars,
  }) as Env

/** Asserts the node clock reads `skewMs` off the runtime's, bracketed by two runtime readings. */
function expectOffset(skewMs: number): void {
  const before = Date.now()
  const reading = clock.now()
  const after = Date.now()
  expect(reading).toBeGreaterThanOrEqual(before + skewMs)
  expect(reading).toBeLessThanOrEqual(after + skewMs)
}

describe('the node clock', () => {
  afterEach(() => clock.setSkew(0))

  it('reads the runtime clock when CLOCK_SKEW_MS is unset', () => {
    readConfig(env({}))
    expectOffset(0)
    expect(clock.schedulerTime(123_456)).toBe(123_456)
  })

  it('runs CLOCK_SKEW_MS off, and hands alarms the runtime clock', () => {
    readConfig(env({ CLOCK_SKEW_MS: '-20000' }))
    expectOffset(-20_000)
    expect(clock.schedulerTime(123_456)).toBe(143_456)
  })

  it('refuses a skew beyond the bound or not a whole number, keeping the clock', () => {
    for (const bad of [String(clockSkewMsMax + 1), String(-clockSkewMsMax - 1), '1.5', 'soon'])
      expect(() => readConfig(env({ CLOCK_SKEW_MS: bad })), bad).toThrow(/CLOCK_SKEW_MS/)
    expectOffset(0)
  })
})
