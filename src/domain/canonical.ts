// The canonical text of a flat record: its [field, value] pairs sorted by field, as JSON. Request
// digests and operator signatures are taken over it, so field order never changes either.

export const canonicalJson = (record: Record<string, unknown>): string =>
  JSON.stringify(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : 1)))

/**
 * JSON with every object's keys sorted, at any depth (lists keep their order): two folds of the
 * same entries read alike whatever order each node's maps iterate in (the order its updates came).
 */
export const orderFreeJson = (value: unknown): string =>
  JSON.stringify(value, (_key, part: unknown) =>
    part !== null && typeof part === 'object' && !Array.isArray(part)
      ? Object.fromEntries(Object.entries(part).sort(([a], [b]) => (a < b ? -1 : 1)))
      : part,
  )
