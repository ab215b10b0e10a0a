// The nemesis's plan on its own (pure, from a seed): every fault is reachable from the CLI and the
// soak's rotation, and the membership faults (F12) keep to their rules over many seeds — the
// joining node is absent until it joins and no fault touches it before, a node that left is
// touched by nothing after, anchored nodes never join or leave, two nodes always keep running.

import { describe, expect, it } from 'vitest'
import { soakMixes } from '../../scripts/chaos/options'
import { faultKinds, parseFaults, planFaults, type Fault } from '../../scripts/chaos/nemesis'
import { seededRandom } from '../../scripts/lib/random'

const seeds = Array.from({ length: 200 }, (_, i) => i + 1)

/** Every node a fault acts on: its node, the members of its groups, its link's ends. */
const touched = (fault: Fault): string[] => [
  ...(fault.node === undefined ? [] : [fault.node]),
  ...(fault.groups ?? []).flat(),
  ...(fault.link === undefined ? [] : [fault.link.from, fault.link.to]),
  ...(fault.cuts ?? []).flat(),
]

describe('fault lists', () => {
  it('"all" holds every fault, and so does the soak rotation', () => {
    expect(parseFaults('all').sort()).toEqual([...faultKinds].sort())
    const rotated = new Set(soakMixes.flatMap((mix) => parseFaults(mix)))
    expect(faultKinds.filter((kind) => !rotated.has(kind))).toEqual([])
  })
})

describe('planFaults', () => {
  it('skews a clock 1-30 s, either way', () => {
    const skews = seeds.flatMap((seed) =>
      planFaults(['skew'], ['a', 'b', 'c'], 30_000, seededRandom(seed)).map((f) => f.skewMs!),
    )
    expect(skews.every((ms) => Math.abs(ms) >= 1_000 && Math.abs(ms) <= 30_000)).toBe(true)
    expect(skews.some((ms) => ms < 0)).toBe(true)
    expect(skews.some((ms) => ms > 0)).toBe(true)
  })

  for (const ids of [
    ['a', 'b', 'c'],
    ['a', 'b', 'c', 'd', 'e'],
  ]) {
    it(`keeps to the membership rules on ${ids.length} nodes`, () => {
      let leaves = 0
      for (const seed of seeds) {
        const plan = planFaults(parseFaults('all'), ids, 60_000, seededRandom(seed), ['a'])
        const joinAt = plan.findIndex((f) => f.kind === 'join')
        expect(joinAt === 0 || joinAt === 1, `seed ${seed}: the join is first or second`).toBe(true)
        const joiner = plan[joinAt]!.node!
        expect(joiner).not.toBe('a')
        let running = ids.filter((id) => id !== joiner)
        for (const fault of plan) {
          if (fault.kind === 'join') running = [...running, joiner]
          else
            for (const id of touched(fault))
              expect(running, `seed ${seed}: ${fault.kind} acts on ${id}`).toContain(id)
          if (fault.kind === 'leave') {
            expect(fault.node).not.toBe('a')
            running = running.filter((id) => id !== fault.node)
            leaves++
          }
          expect(running.length).toBeGreaterThanOrEqual(2)
        }
        expect(plan.filter((f) => f.kind === 'join')).toHaveLength(1)
        expect(plan.filter((f) => f.kind === 'leave').length).toBeLessThanOrEqual(1)
      }
      expect(leaves, 'some seeds leave').toBeGreaterThan(0)
    })
  }

  it('joins even when it is the only fault asked for', () => {
    const plan = planFaults(['join'], ['a', 'b', 'c'], 30_000, seededRandom(1), ['a'])
    expect(plan.map((f) => f.kind)).toEqual(['join'])
  })
})
