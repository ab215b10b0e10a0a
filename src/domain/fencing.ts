// The chain of matcher steps a market's book is folded from, when several terms (lease.ts) wrote
// steps. Pure: it sees only each step's term, sequence number and, for a term's first step, the
// step it continues. The same set of steps gives the same chain on every node, whatever order
// they merged in, so every node folds the same book.
//
// Term 0 is the history before any lease (it starts at sequence 1). A holder of term T > 0, once
// it has caught up from the majority that granted it T, writes a term-start step at the sequence
// after the last step of the chain it folded, naming that step (`continues`). The chain is:
// the highest term that has a start step, from its start; before it, the term it continues, up
// to the step it names; and so on back to term 0. A step outside the chain of a term below the
// head's is fenced: a newer term continued from an earlier point, so it is never applied (its
// fills never happened, its reservations are released). Steps are applied only as far as the
// chain has no gap: a step not received yet stops the fold there, as with a single term.
//
// Why an acknowledged step is never fenced: a step of term t is acknowledged only once a majority
// confirmed it, and a node confirms a term-t step only while it has promised no higher term. The
// majority that granted T shares a node with it, which held the step when it granted T; the new
// holder catches up from that majority after the grants, so it holds the step and its chain
// continues past it.
//
// A market checkpoint in force (state/market-checkpoint.ts) is a base: the chain starts right
// after it, and every step at or before it, or of a term below its own, is folded into it. Every
// node acknowledged that the base is in its chain, and a node never acknowledges a step its own
// chain fences, so no term can start before a base in force (its writer would have fenced the
// base in its own chain).

export type StepPoint = { term: number; seq: number }

/** What the fold needs of one step; `continues` is set on a term-start step only. */
export type StepHeader = StepPoint & { continues: StepPoint | null }

export type Chain = {
  /** The steps to apply, in order: gap-free from the step after the base (sequence 1 without). */
  applied: StepHeader[]
  /** Steps of lower terms than the head that the chain passed by: never applied. */
  fenced: StepHeader[]
  /** The head's term: the one whose holder may write the next step. */
  headTerm: number
  /** Whether the chain is whole: no step of it is missing here. */
  complete: boolean
  /** How many of the steps given are folded into the base (at or before it, or an older term's). */
  folded: number
}

/** A term's steps keyed by sequence, and its start step (term 0 starts at 1 without one). */
type TermSteps = { steps: Map<number, StepHeader>; start: StepHeader | null }

/** A start names an earlier term's step just before its own; any other is no start. */
const startsWell = ({ term, seq, continues }: StepHeader): boolean =>
  continues !== null && term > 0 && continues.term < term && continues.seq === seq - 1

function byTerm(headers: Iterable<StepHeader>): Map<number, TermSteps> {
  const terms = new Map<number, TermSteps>()
  for (const header of headers) {
    const term = terms.get(header.term) ?? { steps: new Map(), start: null }
    term.steps.set(header.seq, header)
    // One holder per term writes one start; should two be found, every node keeps the earliest.
    if (startsWell(header) && (term.start === null || header.seq < term.start.seq)) {
      term.start = header
    }
    terms.set(header.term, term)
  }
  return terms
}

/** One term's part of the chain: its steps from `from` up to `to` (inclusive). */
type Segment = { term: number; from: number; to: number }

/**
 * The chain's segments, oldest first, walked back from the head along the `continues` links;
 * null when a term it passes through has no start step here yet (where it began is unknown).
 */
function segmentsOf(
  terms: Map<number, TermSteps>,
  head: number,
  base: StepPoint,
): Segment[] | null {
  const walked: Segment[] = []
  let term = head
  let to = Infinity
  for (let hops = 0; hops <= terms.size; hops++) {
    if (term === base.term) return [{ term, from: base.seq + 1, to }, ...walked]
    const start = terms.get(term)?.start
    if (start === undefined || start === null) return null
    walked.unshift({ term, from: start.seq, to })
    term = start.continues!.term
    to = start.continues!.seq
  }
  throw new Error('the continues links of a chain loop')
}

/** The point before sequence 1: the base of a chain without a checkpoint. */
export const origin: StepPoint = { term: 0, seq: 0 }

/** Whether a step is folded into `base`: at or before it, or of an older term. */
export const foldedInto = (base: StepPoint, step: StepPoint): boolean =>
  step.seq <= base.seq || step.term < base.term

/** The chain a set of steps folds into after `base` (see the header comment). */
export function chainOf(headers: Iterable<StepHeader>, base: StepPoint = origin): Chain {
  const given = [...headers]
  const all = given.filter((header) => !foldedInto(base, header))
  const terms = byTerm(all)
  const headTerm = [...terms].reduce(
    (max, [term, steps]) => (steps.start !== null && term > max ? term : max),
    base.term,
  )
  const segments = segmentsOf(terms, headTerm, base)
  const applied: StepHeader[] = []
  let complete = segments !== null
  for (const { term, from, to } of segments ?? []) {
    const steps = terms.get(term)?.steps ?? new Map<number, StepHeader>()
    let seq = from
    for (; seq <= to && steps.has(seq); seq++) applied.push(steps.get(seq)!)
    // A missing step of a finished term, or of the head before one it holds, is a gap.
    const gap = to === Infinity ? [...steps.keys()].some((held) => held > seq) : seq <= to
    if (gap) {
      complete = false
      break
    }
  }
  const inChain = new Set(applied.map(pointKey))
  const fenced = complete
    ? all.filter((header) => header.term < headTerm && !inChain.has(pointKey(header)))
    : []
  return {
    applied,
    fenced: fenced.sort(bySeq),
    headTerm,
    complete,
    folded: given.length - all.length,
  }
}

const pointKey = ({ term, seq }: StepPoint): string => `${term}/${seq}`
const bySeq = (a: StepPoint, b: StepPoint) => a.seq - b.seq || a.term - b.term
