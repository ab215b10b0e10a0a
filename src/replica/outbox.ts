// The seam between durable storage and replication: every update a shard has made durable is
// offered here, in log order, after its storage transaction committed. The mesh subscribes its
// links; with no subscriber an update simply stays in the log, where peers' sync finds it.

export type DurableUpdate = { seq: number; update: Uint8Array; origin: string }
export type DurableUpdateListener = (update: DurableUpdate) => void

export type Outbox = { listeners: Set<DurableUpdateListener> }

export const create = (): Outbox => ({ listeners: new Set() })

/** Registers a listener; the returned function removes it. */
export function subscribe(outbox: Outbox, listener: DurableUpdateListener): () => void {
  outbox.listeners.add(listener)
  return () => outbox.listeners.delete(listener)
}

/**
 * Hands a durable update to every listener. The update is already stored, so a failing listener
 * must not fail the write that made it: it is logged, and the others still get the update.
 */
export function offer(outbox: Outbox, update: DurableUpdate): void {
  for (const listener of outbox.listeners) {
    try {
      listener(update)
    } catch (error) {
      console.error(
        JSON.stringify({ msg: 'outbox listener failed', seq: update.seq, error: String(error) }),
      )
    }
  }
}
