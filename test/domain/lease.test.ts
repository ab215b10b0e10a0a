// Lease decisions: a grantor promises one holder per term and a higher term to another node only
// once its promise expired; a holder counts from when it sent the request and
// stops a drift margin early; who campaigns follows the candidate order, with no failback.

import { describe, expect, it } from 'vitest'
import * as lease from '../../src/domain/lease'

const now = 1_000_000
const request = (term: number, candidate: string): lease.LeaseRequest => ({
  term,
  candidate,
  durationMs: 3_000,
})

describe('candidatesOf', () => {
  it('puts the home first, then every other node by id', () => {
    expect(lease.candidatesOf('b', ['c', 'a', 'b'])).toEqual(['b', 'a', 'c'])
  })

  it('leaves an instrument homed outside the mesh to its home alone', () => {
    expect(lease.candidatesOf('z', ['a', 'b'])).toEqual(['z'])
  })
})

describe('decideGrant', () => {
  it('grants a first request, and renews the same term for its holder', () => {
    const first = lease.decideGrant(null, request(1, 'a'), now, 3_000)
    expect(first).toEqual({
      granted: true,
      promise: { term: 1, holder: 'a', expiresAt: now + 3_000 },
    })
    const promise = { term: 1, holder: 'a', expiresAt: now + 3_000 }
    expect(lease.decideGrant(promise, request(1, 'a'), now + 1_000, 3_000)).toEqual({
      granted: true,
      promise: { term: 1, holder: 'a', expiresAt: now + 4_000 },
    })
  })

  it('refuses a lease longer than its own', () => {
    expect(lease.decideGrant(null, request(1, 'a'), now, 2_000)).toEqual({
      granted: false,
      reason: 'too_long',
      promise: null,
    })
  })

  it('refuses a lower term, and a second candidate of the same term', () => {
    const promise = { term: 4, holder: 'a', expiresAt: now + 3_000 }
    expect(lease.decideGrant(promise, request(3, 'b'), now, 3_000)).toMatchObject({
      granted: false,
      reason: 'stale_term',
      promise,
    })
    expect(lease.decideGrant(promise, request(4, 'b'), now + 5_000, 3_000)).toMatchObject({
      granted: false,
      reason: 'term_taken',
    })
  })

  it('grants a higher term to another node only once the last promise expired', () => {
    const promise = { term: 2, holder: 'a', expiresAt: now + 3_000 }
    expect(lease.decideGrant(promise, request(3, 'b'), now + 2_999, 3_000)).toMatchObject({
      granted: false,
      reason: 'lease_held',
      promise,
    })
    expect(lease.decideGrant(promise, request(3, 'b'), now + 3_000, 3_000)).toEqual({
      granted: true,
      promise: { term: 3, holder: 'b', expiresAt: now + 6_000 },
    })
    // The holder itself may move to a higher term at once (it stops matching the old one).
    expect(lease.decideGrant(promise, request(3, 'a'), now, 3_000)).toMatchObject({ granted: true })
  })
})

describe('validUntil and holds', () => {
  const round = (grantedBy: string[]): lease.Round => ({
    term: 1,
    sentAt: now,
    durationMs: 3_000,
    grantedBy: new Set(grantedBy),
  })

  it('counts from the send, a drift margin short of the duration, once a majority granted', () => {
    expect(lease.validUntil(round(['a']), 2, 0.1)).toBeNull()
    expect(lease.validUntil(round(['a', 'b']), 2, 0.1)).toBe(now + 2_700)
    expect(lease.holds(round(['a', 'b']), 2, 0.1, now + 2_699)).toBe(true)
    expect(lease.holds(round(['a', 'b']), 2, 0.1, now + 2_700)).toBe(false)
    expect(lease.holds(null, 2, 0.1, now)).toBe(false)
  })

  it('stops the holder before any grantor whose clock runs up to ρ faster lets the promise go', () => {
    // Over the holder's d(1 − ρ), a grantor whose clock runs at most 1/(1 − ρ) as fast advances
    // by at most d: its promise, made after the send and lasting d, is still in force.
    const driftRate = 0.1
    const heldMs = lease.validUntil(round(['a', 'b']), 2, driftRate)! - now
    expect(heldMs / (1 - driftRate)).toBeLessThanOrEqual(3_000)
  })
})

describe('shouldCampaign', () => {
  const view = (
    self: string,
    silentMs: Record<string, number>,
    holder: string | null = null,
  ): lease.CampaignView => ({
    self,
    candidates: ['a', 'b', 'c'],
    silentMs: new Map(Object.entries(silentMs)),
    holder,
    failoverTimeoutMs: 5_000,
  })

  it('has the home campaign when no holder is heard, and a lower candidate wait', () => {
    expect(lease.shouldCampaign(view('a', { b: 0, c: 0 }))).toBe(true)
    expect(lease.shouldCampaign(view('b', { a: 4_999, c: 0 }))).toBe(false)
    expect(lease.shouldCampaign(view('b', { a: 5_000, c: 0 }))).toBe(true)
    expect(lease.shouldCampaign(view('c', { a: 9_000, b: 100 }))).toBe(false)
    expect(lease.shouldCampaign(view('c', { a: 9_000, b: 9_000 }))).toBe(true)
  })

  it('never fails back on its own: a returning home leaves a heard holder be', () => {
    expect(lease.shouldCampaign(view('a', { b: 0, c: 0 }, 'b'))).toBe(false)
    expect(lease.shouldCampaign(view('a', { b: 6_000, c: 0 }, 'b'))).toBe(true)
    expect(lease.shouldCampaign(view('b', { a: 0, c: 0 }, 'b'))).toBe(false)
  })

  it('counts a peer never heard as silent, and a node off the list never campaigns', () => {
    expect(lease.shouldCampaign(view('b', { c: 0 }))).toBe(true)
    expect(lease.shouldCampaign({ ...view('d', {}), candidates: ['a', 'b', 'c'] })).toBe(false)
  })
})
