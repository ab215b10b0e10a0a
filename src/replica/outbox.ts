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

export function offer(outbox: Outbox, update: DurableUpdate): void {
  for (const listener of outbox.listeners) listener(update)
}
