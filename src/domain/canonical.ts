// The canonical text of a flat record: its [field, value] pairs sorted by field, as JSON. Request
// digests and operator signatures are taken over it, so field order never changes either.

export const canonicalJson = (record: Record<string, unknown>): string =>
  JSON.stringify(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : 1)))
