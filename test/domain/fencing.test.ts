// The fenced fold: the chain of steps a book is folded from follows each term's start back to the
// step it continues, so an older term's steps past that point are never applied, and any merge
// order of the same steps gives the same chain.

import { describe, expect, it } from 'vitest'
import { chainOf, type StepHeader } from '../../src/domain/fencing'

const step = (term: number, seq: number): StepHeader => ({ term, seq, continues: null })
const start = (term: number, seq: number, from: number, at: number): StepHeader => ({
  term,
  seq,
  continues: { term: from, seq: at },
})
const points = (headers: StepHeader[]) => headers.map(({ term, seq }) => `${term}/${seq}`)

/** Every order of a small list: the merge orders the same steps can arrive in. */
function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items]
  return items.flatMap((item, index) =>
    permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [
      item,
      ...rest,
    ]),
  )
}

describe('chainOf', () => {
  it('folds a single term in sequence order and stops at a gap', () => {
    expect(points(chainOf([step(0, 2), step(0, 1), step(0, 3)]).applied)).toEqual([
      '0/1',
      '0/2',
      '0/3',
    ])
    const gapped = chainOf([step(0, 1), step(0, 3)])
    expect(points(gapped.applied)).toEqual(['0/1'])
    expect(gapped.complete).toBe(false)
  })

  it("fences an old term's steps after the point a new term continued from", () => {
    // Term 1 (a paused or cut-off holder) wrote 3 and 4 that no majority confirmed; term 2
    // continued from 1/2 and wrote its own 3 and 4.
    const headers = [
      step(0, 1),
      start(1, 2, 0, 1),
      step(1, 3),
      step(1, 4),
      start(2, 3, 1, 2),
      step(2, 4),
    ]
    const chain = chainOf(headers)
    expect(points(chain.applied)).toEqual(['0/1', '1/2', '2/3', '2/4'])
    expect(points(chain.fenced)).toEqual(['1/3', '1/4'])
    expect(chain.headTerm).toBe(2)
    expect(chain.complete).toBe(true)
  })

  it('gives the same chain for both terms merged in every order', () => {
    const headers = [step(0, 1), step(0, 2), step(0, 3), start(3, 3, 0, 2), step(3, 4)]
    const expected = chainOf(headers)
    expect(points(expected.applied)).toEqual(['0/1', '0/2', '3/3', '3/4'])
    expect(points(expected.fenced)).toEqual(['0/3'])
    for (const order of permutations(headers)) expect(chainOf(order)).toEqual(expected)
  })

  it('passes over a term no later term continued (it never got its steps confirmed)', () => {
    const headers = [step(0, 1), start(1, 2, 0, 1), start(2, 2, 0, 1), step(2, 3)]
    const chain = chainOf(headers)
    expect(points(chain.applied)).toEqual(['0/1', '2/2', '2/3'])
    expect(points(chain.fenced)).toEqual(['1/2'])
  })

  it('applies nothing past what it can place while a term start it passes through is missing', () => {
    // Term 2 continues from 1/3, but term 1's start has not arrived: where term 0 ends is unknown.
    const chain = chainOf([step(0, 1), step(0, 2), step(1, 3), start(2, 4, 1, 3)])
    expect(chain.applied).toEqual([])
    expect(chain.complete).toBe(false)
    expect(chain.fenced).toEqual([])
  })

  it('waits for a missing step of the term it continues', () => {
    const chain = chainOf([step(0, 1), start(1, 3, 0, 2), step(1, 4)])
    expect(points(chain.applied)).toEqual(['0/1'])
    expect(chain.complete).toBe(false)
  })

  it('takes no start that names a later term or not the step just before it', () => {
    const chain = chainOf([step(0, 1), start(1, 5, 0, 1), start(2, 2, 3, 1)])
    expect(chain.headTerm).toBe(0)
    expect(points(chain.applied)).toEqual(['0/1'])
  })
})
