// Matcher leases: which node may match an instrument, decided by a majority of the mesh, with a
// term that only grows (the fencing token every step carries, fencing.ts). Pure decisions over
// plain data; the messages that carry them are the mesh's, the promises are kept in each
// grantor's Durable Object storage (never in a document: they are overwritten on every renewal).
//
// Safety: at most one node holds a lease of an instrument at any instant.
// - A grantor promises one holder per term and grants a higher term to another node only once
//   its promise to the last holder has expired on its own clock.
// - A holder counts its lease from the moment it *sent* the request, never from the grant, and
//   stops matching `durationMs × (1 − ρ)` after it; ρ (`driftRate`) bounds how much slower one
//   node's clock may advance than another's over one lease (rates only: an offset, F9, is
//   harmless, since every node measures durations on its own clock).
// - While the holder's clock advances by d(1 − ρ), a grantor's advances by at most d: the
//   grantor's promise, made after the request was sent and lasting d on its clock, is still in
//   force when the holder stops. Two majorities share a grantor, so no second holder can be
//   granted while the first still matches.
// A paused holder (F8) wakes with its lease expired on its own clock and stops; a write it makes
// anyway carries an old term, which peers refuse to confirm and the fold fences (fencing.ts).

/**
 * The nodes that may match an instrument, most preferred first: its home, then the rest of the
 * mesh by id. An instrument homed outside this mesh (a catalog shared with another) has only its
 * home: no node here campaigns for it.
 */
export const candidatesOf = (home: string, nodes: readonly string[]): string[] =>
  nodes.includes(home) ? [home, ...nodes.filter((node) => node !== home).sort()] : [home]

/** What one grantor has promised for one instrument, times on the grantor's own clock. */
export type LeasePromise = { term: number; holder: string; expiresAt: number }

/** A candidate asks every node (itself included) for the lease of `term`, for `durationMs`. */
export type LeaseRequest = { term: number; candidate: string; durationMs: number }

export type GrantDecision =
  | { granted: true; promise: LeasePromise }
  | {
      granted: false
      reason: 'stale_term' | 'term_taken' | 'lease_held' | 'too_long'
      /** What the grantor holds to: the candidate learns the term to beat and the holder. */
      promise: LeasePromise | null
    }

/**
 * A grantor's answer to a request, at `now` on its clock. The holder of the current term renews
 * it; a higher term is granted once the promise to another node has expired (a same-term request
 * from another node is a second candidate of that term and never wins). A lease longer than the
 * grantor's own is refused: the candidate would count on more than the grantor keeps.
 */
export function decideGrant(
  promised: LeasePromise | null,
  request: LeaseRequest,
  now: number,
  durationMsMax: number,
): GrantDecision {
  if (request.durationMs > durationMsMax) {
    return { granted: false, reason: 'too_long', promise: promised }
  }
  const granted = (): GrantDecision => ({
    granted: true,
    promise: { term: request.term, holder: request.candidate, expiresAt: now + request.durationMs },
  })
  if (promised === null) return granted()
  if (request.term < promised.term)
    return { granted: false, reason: 'stale_term', promise: promised }
  const sameHolder = promised.holder === request.candidate
  if (request.term === promised.term) {
    return sameHolder ? granted() : { granted: false, reason: 'term_taken', promise: promised }
  }
  if (!sameHolder && now < promised.expiresAt) {
    return { granted: false, reason: 'lease_held', promise: promised }
  }
  return granted()
}

/** A candidate's own count of a lease round: when it sent the requests, and who granted. */
export type Round = { term: number; sentAt: number; durationMs: number; grantedBy: Set<string> }

/**
 * Until when (on the holder's clock) a round lets its candidate match: `sentAt + duration ×
 * (1 − ρ)` once a majority of `nodes` granted it; null while it has no majority.
 */
export function validUntil(round: Round, majority: number, driftRate: number): number | null {
  if (round.grantedBy.size < majority) return null
  return round.sentAt + Math.floor(round.durationMs * (1 - driftRate))
}

/** Whether a lease round still lets its holder match at `now` on its clock. */
export const holds = (round: Round | null, majority: number, driftRate: number, now: number) => {
  if (round === null) return false
  const until = validUntil(round, majority, driftRate)
  return until !== null && now < until
}

/** What a node knows when it decides whether to campaign for an instrument's lease. */
export type CampaignView = {
  self: string
  /** The instrument's candidates, most preferred first (the home node first). */
  candidates: readonly string[]
  /** How long each peer has been silent on this node's clock (since start if never heard). */
  silentMs: ReadonlyMap<string, number>
  /** The holder of the highest term this node has heard of (its own grants, a refusal), if any. */
  holder: string | null
  failoverTimeoutMs: number
}

/**
 * Whether `self` should campaign now: never while a holder it knows of is heard from (no
 * automatic failback: a returning home leaves the holder be), and only if every candidate ranked
 * above it has been silent for the failover timeout. The first candidate that is heard campaigns;
 * a lower one waits out the timeout, so two candidates rarely campaign at once, and if they do,
 * terms and majorities settle it.
 */
export function shouldCampaign(view: CampaignView): boolean {
  const rank = view.candidates.indexOf(view.self)
  if (rank === -1 || view.holder === view.self) return false
  const dead = (node: string) => (view.silentMs.get(node) ?? Infinity) >= view.failoverTimeoutMs
  if (view.holder !== null && !dead(view.holder)) return false
  return view.candidates.slice(0, rank).every(dead)
}

/** The term a candidate asks for: one above the highest it has heard of. */
export const nextTerm = (highestKnown: number): number => highestKnown + 1
