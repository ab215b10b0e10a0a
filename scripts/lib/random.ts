// Seeded randomness for the scripts and tests that must replay a run from its printed seed.

/** A small seeded generator (mulberry32): values in [0, 1), the same sequence for the same seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An independent generator derived from `random`, for one actor of a seeded run. */
export const fork = (random: () => number): (() => number) =>
  seededRandom(Math.floor(random() * 2 ** 32))

/** An integer from `min` to `max`, both included. */
export const integerBetween = (random: () => number, min: number, max: number): number =>
  min + Math.floor(random() * (max - min + 1))

/** One element of a non-empty list. */
export function pick<T>(random: () => number, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)]
  if (item === undefined) throw new Error('pick from an empty list')
  return item
}

/** A shuffled copy (Fisher-Yates). */
export function shuffled<T>(random: () => number, items: readonly T[]): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j]!, copy[i]!]
  }
  return copy
}
