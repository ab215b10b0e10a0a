// Request ids made by the client: one per logical call, made before the first attempt, so every
// retry and every node the call fails over to sees the same id (the node replays, never repeats).

/** A new request id, `<prefix>-<uuid>` (within the API's id pattern and 64 characters). */
export const newRequestId = (prefix: string): string => `${prefix}-${crypto.randomUUID()}`

/** A path segment, percent-encoded as sent and as signed. */
export const segment = (value: string): string => encodeURIComponent(value)

/** `?a=1&b=2` of the defined entries, or '' when none is. */
export function queryOf(entries: Record<string, string | number | undefined>): string {
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(entries)) {
    if (value !== undefined) query.set(name, String(value))
  }
  const text = query.toString()
  return text === '' ? '' : `?${text}`
}
