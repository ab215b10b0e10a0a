// Circuit breakers: the operator's commands that restrict trading or withdrawals, recorded as
// immutable entries every node obeys once it sees them. The mode in force is folded from the
// entries (the latest by time, then id), never stored under one overwritten key.

export type BreakerMode = 'normal' | 'reduce_only' | 'cancel_only' | 'halted'
export const breakerModes: readonly BreakerMode[] = [
  'normal',
  'reduce_only',
  'cancel_only',
  'halted',
]

/** What a breaker covers: one instrument's orders, every instrument's, or withdrawals. */
export type BreakerScope = 'instrument' | 'venue' | 'withdrawals'

export type Breaker = {
  id: string
  scope: BreakerScope
  /** The instrument of an `instrument` breaker; null otherwise. */
  instrument: string | null
  mode: BreakerMode
  reason: string
  ts: number
  node: string
  /** The operator's signature (src/state/operator-signature.ts). */
  signature?: string
}

/** The mode in force among `entries` of one scope: the latest, `normal` when there is none. */
export function modeOf(entries: Iterable<Breaker>): { mode: BreakerMode; by: Breaker | null } {
  let latest: Breaker | null = null
  for (const entry of entries) {
    if (latest === null || entry.ts > latest.ts || (entry.ts === latest.ts && entry.id > latest.id))
      latest = entry
  }
  return { mode: latest?.mode ?? 'normal', by: latest }
}

const strictness: Record<BreakerMode, number> = {
  normal: 0,
  reduce_only: 1,
  cancel_only: 2,
  halted: 3,
}

/** The stricter of two modes (a venue-wide and an instrument's breaker both apply). */
export const stricter = (x: BreakerMode, y: BreakerMode): BreakerMode =>
  strictness[x] >= strictness[y] ? x : y

/** Whether a new order may be taken under `mode`; cancels are always taken. */
export function admitsOrder(mode: BreakerMode, reduceOnly: boolean): boolean {
  return mode === 'normal' || (mode === 'reduce_only' && reduceOnly)
}
