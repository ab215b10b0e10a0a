// The node's wall clock. Every reading of the time in src/ goes through `now()`, so a test can run
// a node whose clock is off (design.md F9): the partition harness starts a node with CLOCK_SKEW_MS
// set. It is a test-only knob, 0 unless set, bounded by clockSkewMsMax; a deployment leaves it
// unset. On a real host a skewed clock skews the runtime's scheduler too, so instants handed to
// storage alarms are converted back to the runtime's own clock (`schedulerTime`).

let skewMs = 0

/** Ms since the epoch, as this node's clock reads it. */
export const now = (): number => Date.now() + skewMs

/** The instant `nodeTime` of this node's clock on the runtime's clock (storage alarms). */
export const schedulerTime = (nodeTime: number): number => nodeTime - skewMs

/** Set from the node's configuration (config.ts), once per isolate; the same value every time. */
export function setSkew(ms: number): void {
  skewMs = ms
}
