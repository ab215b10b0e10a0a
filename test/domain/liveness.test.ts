// A peer's liveness from heartbeats: alive within two intervals, suspect until the timeout, dead
// after it or when never heard; a node-wide view takes the latest hearing over every document.

import { describe, expect, it } from 'vitest'
import * as liveness from '../../src/domain/liveness'

const timing = { heartbeatIntervalMs: 1_000, heartbeatTimeoutMs: 5_000 }
const now = 100_000

describe('stateOf', () => {
  it('is alive within two beats, suspect until the timeout, dead after it', () => {
    expect(liveness.stateOf(now - 2_000, now, timing)).toBe('alive')
    expect(liveness.stateOf(now - 2_001, now, timing)).toBe('suspect')
    expect(liveness.stateOf(now - 5_000, now, timing)).toBe('suspect')
    expect(liveness.stateOf(now - 5_001, now, timing)).toBe('dead')
  })

  it('calls a peer never heard dead', () => {
    expect(liveness.stateOf(null, now, timing)).toBe('dead')
  })
})

describe('view and merge', () => {
  it('lists every configured peer, heard or not', () => {
    expect(liveness.view(['b', 'c'], new Map([['b', now - 10]]), now, timing)).toEqual([
      { peer: 'b', lastHeardAt: now - 10, state: 'alive' },
      { peer: 'c', lastHeardAt: null, state: 'dead' },
    ])
  })

  it('takes the latest hearing of each peer over the documents', () => {
    const shard = liveness.view(['b', 'c'], new Map([['b', now - 9_000]]), now, timing)
    const market = liveness.view(
      ['b', 'c'],
      new Map([
        ['b', now - 3_000],
        ['c', now - 7_000],
      ]),
      now,
      timing,
    )
    expect(liveness.merge([shard, market], now, timing)).toEqual([
      { peer: 'b', lastHeardAt: now - 3_000, state: 'suspect' },
      { peer: 'c', lastHeardAt: now - 7_000, state: 'dead' },
    ])
  })
})
