// Which peers this node hears from, judged from heartbeats alone (every frame on a mesh link counts
// as one). Pure: the mesh records when it last heard each peer, this module says what that means.
//
// A peer is `alive` while heard within two heartbeat intervals (one beat may be late or lost),
// `suspect` after that and until the heartbeat timeout, and `dead` past it or if never heard.
// The view is advisory: it decides who campaigns for a matcher lease (lease.ts), never who holds
// one. Only a majority's grant does that, so a wrong view costs availability, not safety.

export type PeerState = 'alive' | 'suspect' | 'dead'

export type Timing = { heartbeatIntervalMs: number; heartbeatTimeoutMs: number }

export type PeerLiveness = {
  peer: string
  /** This node's clock when it last heard the peer on any link; null if never since start. */
  lastHeardAt: number | null
  state: PeerState
}

/** What silence since `lastHeardAt` says about a peer at `now`. */
export function stateOf(lastHeardAt: number | null, now: number, timing: Timing): PeerState {
  if (lastHeardAt === null) return 'dead'
  const silentMs = now - lastHeardAt
  if (silentMs <= 2 * timing.heartbeatIntervalMs) return 'alive'
  if (silentMs <= timing.heartbeatTimeoutMs) return 'suspect'
  return 'dead'
}

/** Every configured peer's liveness, from the last time each was heard (absent: never). */
export function view(
  peers: Iterable<string>,
  lastHeard: ReadonlyMap<string, number>,
  now: number,
  timing: Timing,
): PeerLiveness[] {
  return [...peers].map((peer) => {
    const lastHeardAt = lastHeard.get(peer) ?? null
    return { peer, lastHeardAt, state: stateOf(lastHeardAt, now, timing) }
  })
}

/**
 * One node-wide view from several documents' views (each replica hears its peers on its own
 * links): a peer heard on any of them was heard, at the latest time any of them heard it.
 */
export function merge(views: PeerLiveness[][], now: number, timing: Timing): PeerLiveness[] {
  const lastHeard = new Map<string, number>()
  const peers = new Set<string>()
  for (const entry of views.flat()) {
    peers.add(entry.peer)
    if (entry.lastHeardAt === null) continue
    lastHeard.set(entry.peer, Math.max(lastHeard.get(entry.peer) ?? 0, entry.lastHeardAt))
  }
  return view([...peers].sort(), lastHeard, now, timing)
}
