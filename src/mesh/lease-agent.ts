// The lease agent of one market replica: the messaging of matcher leases (domain/lease.ts) over
// the market document's own mesh links (protocol.ts, frames 103-105, 107). Every node is a grantor,
// keeping its promise in the replica's SQLite (`PromiseStore`), and may be a candidate. On a
// timer it renews the lease it holds (every third of its length) or, when `lease.shouldCampaign`
// says so, asks every node, itself first, for the next term. A grant answer carries the grantor's
// state vector: the holder is `ready` to match only once its document covers a majority of its
// grantors' (itself included), since those grantors confirm no older term's step after granting.
// Failback (an operator's action) hands the lease over: the holder stops, releases, the target
// campaigns.
// A single node has nobody to share a matcher with: it matches the instruments homed on it, in
// term 0, with no lease and no timer.

import * as Y from 'yjs'
import { leaseDriftRate, leaseRenewsPerDuration } from '../constants'
import * as lease from '../domain/lease'
import * as clock from '../clock'
import * as protocol from './protocol'
import * as replication from './replication'

/** Where a grantor keeps its promise for this instrument: written before it answers. */
export type PromiseStore = {
  load: () => lease.LeasePromise | null
  save: (promise: lease.LeasePromise) => void
}

export type LeaseSettings = { durationMs: number; failoverTimeoutMs: number }

export type LeaseAgent = {
  mesh: replication.Replication
  self: string
  candidates: readonly string[]
  store: PromiseStore
  settings: LeaseSettings
  startedAt: number
  /**
   * A grantor that starts with no promise may have been wiped (F11) and forgotten one: until one
   * lease length after start it acts as if promised to an unknown holder, and grants nothing.
   */
  unknownUntil: number
  /** The last round this node sent: a campaign for a new term, or a renewal of its own. */
  round: lease.Round | null
  /** The latest round that a majority granted, and what each of its grantors held then. */
  held: { round: lease.Round; vectors: Map<string, Map<number, number>> } | null
  /** State vectors of the grantors answering the current round. */
  answerVectors: Map<string, Map<number, number>>
  /** The highest term heard of (this node's promise, any answer). */
  highestTerm: number
  /**
   * A grantor refused the current round over its term (it promised that term or a higher one to
   * another node, say to a candidate whose campaign failed): it grants this node only a higher
   * term, so a holder moves above it at its next renewal, or its lease would rest on the others.
   */
  outbid: boolean
  /** Until when this node, having handed the lease over (failback), campaigns for nothing. */
  yieldUntil: number
  /** Until when this node, the target of a failback, campaigns whoever else it hears. */
  failbackUntil: number
  /**
   * The holder of the highest term a grantor's refusal named (another node), if any, believed
   * until one lease after the last refusal that named it (this node's clock): a holder renews,
   * so every grantor keeps naming it; a candidate whose campaign failed soon stops being named.
   */
  heardHolder: { term: number; holder: string; until: number } | null
  timer: ReturnType<typeof setInterval> | null
  /**
   * Told when this node starts, renews or stops holding the lease: a holder that could not match
   * when it was granted (not caught up yet) takes what waits for it (recorded cancels) at a renewal.
   */
  onChange: () => void
}

export function create(
  mesh: replication.Replication,
  candidates: readonly string[],
  store: PromiseStore,
  settings: LeaseSettings,
  onChange: () => void,
): LeaseAgent {
  const agent: LeaseAgent = {
    mesh,
    self: mesh.config.nodeId,
    candidates,
    store,
    settings,
    startedAt: clock.now(),
    // A single node has nobody it could have promised the lease to.
    unknownUntil:
      store.load() === null && mesh.config.peers.size > 0 ? clock.now() + settings.durationMs : 0,
    round: null,
    held: null,
    answerVectors: new Map(),
    highestTerm: store.load()?.term ?? 0,
    outbid: false,
    yieldUntil: 0,
    failbackUntil: 0,
    heardHolder: null,
    timer: null,
    onChange,
  }
  if (solo(agent)) return agent
  mesh.onLease = (peer, frame) => receive(agent, peer, frame)
  agent.timer = setInterval(
    () => tick(agent),
    Math.floor(settings.durationMs / leaseRenewsPerDuration),
  )
  // The first campaign runs once the caller holds the agent: its onChange may ask about it.
  setTimeout(() => tick(agent), 0)
  return agent
}

const majority = (agent: LeaseAgent) => replication.majorityOf(agent.mesh.config)

const solo = (agent: LeaseAgent) => agent.mesh.config.peers.size === 0

/** Whether this node holds the lease at `now` on its clock. */
export function holding(agent: LeaseAgent, now = clock.now()): boolean {
  if (solo(agent)) return agent.candidates[0] === agent.self
  return lease.holds(agent.held?.round ?? null, majority(agent), leaseDriftRate, now)
}

/** The term this node holds; only meaningful while `holding`. */
export const heldTerm = (agent: LeaseAgent): number => agent.held?.round.term ?? 0

/**
 * Whether this node may match now: it holds the lease and its document covers what a majority of
 * its grantors (itself included) held when they granted.
 */
export function ready(agent: LeaseAgent): boolean {
  if (solo(agent)) return holding(agent)
  if (!holding(agent) || agent.held === null || !agent.mesh.held.state.ok) return false
  const own = Y.decodeStateVector(Y.encodeStateVector(agent.mesh.held.state.doc))
  const covers = (vector: Map<number, number>) =>
    [...vector].every(([client, clock]) => (own.get(client) ?? 0) >= clock)
  const covered = [...agent.held.vectors.values()].filter(covers).length
  return covered >= majority(agent)
}

/**
 * The node this one believes holds the lease: itself; else the one it promised it to, or the one
 * a refusal named, whichever term is higher; null if it knows of none but itself.
 */
export function holder(agent: LeaseAgent, now = clock.now()): string | null {
  if (holding(agent, now)) return agent.self
  if (solo(agent)) return null
  const promise = agent.store.load()
  const promised = promise === null || promise.holder === agent.self ? null : promise
  const heard =
    agent.heardHolder !== null && now < agent.heardHolder.until ? agent.heardHolder : null
  if (heard !== null && (promised === null || heard.term > promised.term)) return heard.holder
  return promised?.holder ?? null
}

function silentMs(agent: LeaseAgent, now: number): Map<string, number> {
  return new Map(
    [...agent.mesh.config.peers.keys()].map((peer) => [
      peer,
      now - (agent.mesh.lastHeard.get(peer) ?? agent.startedAt),
    ]),
  )
}

function tick(agent: LeaseAgent): void {
  const now = clock.now()
  if (agent.held !== null && !holding(agent, now)) {
    agent.held = null
    agent.onChange()
  }
  if (agent.held !== null) {
    // Renewed at every tick, a third of the lease.
    const term = agent.outbid ? lease.nextTerm(agent.highestTerm) : agent.held.round.term
    sendRound(agent, term, now)
    return
  }
  if (now < agent.yieldUntil) return
  const campaign =
    now < agent.failbackUntil ||
    lease.shouldCampaign({
      self: agent.self,
      candidates: agent.candidates,
      silentMs: silentMs(agent, now),
      holder: holder(agent, now),
      failoverTimeoutMs: agent.settings.failoverTimeoutMs,
    })
  if (campaign) sendRound(agent, lease.nextTerm(agent.highestTerm), now)
}

/** Asks every node for `term`: this one decides at once, the peers answer on their links. */
function sendRound(agent: LeaseAgent, term: number, now: number): void {
  const durationMs = agent.settings.durationMs
  agent.round = { term, sentAt: now, durationMs, grantedBy: new Set() }
  agent.answerVectors = new Map()
  agent.outbid = false
  const own = decide(agent, { term, candidate: agent.self, durationMs }, now)
  answered(
    agent,
    agent.self,
    { granted: own.granted, term, ...promised(own, now) },
    ownVector(agent),
  )
  const frame = protocol.writeLeaseRequest(term, durationMs)
  for (const peer of agent.mesh.config.peers.keys()) replication.sendToPeer(agent.mesh, peer, frame)
}

const ownVector = (agent: LeaseAgent): Map<number, number> =>
  agent.mesh.held.state.ok
    ? Y.decodeStateVector(Y.encodeStateVector(agent.mesh.held.state.doc))
    : new Map()

/**
 * What a grantor's answer says it holds to: the term to beat, and the holder only while the
 * promise is in force (a promise that lapsed names nobody who could be matching).
 */
const promised = (decision: lease.GrantDecision, now: number) => ({
  promisedTerm: decision.promise?.term ?? 0,
  promisedHolder:
    decision.promise !== null && now < decision.promise.expiresAt ? decision.promise.holder : '',
})

/** The grantor's side: decides, and persists a grant before anything answers it. */
function decide(agent: LeaseAgent, request: lease.LeaseRequest, now: number): lease.GrantDecision {
  const forgotten =
    now < agent.unknownUntil ? { term: 0, holder: '', expiresAt: agent.unknownUntil } : null
  const promised = agent.store.load() ?? forgotten
  const decision = lease.decideGrant(promised, request, now, agent.settings.durationMs)
  if (!decision.granted) {
    agent.highestTerm = Math.max(agent.highestTerm, decision.promise?.term ?? 0)
    return decision
  }
  agent.store.save(decision.promise)
  agent.highestTerm = Math.max(agent.highestTerm, decision.promise.term)
  // Granting a higher term to another node: whatever this node held is over (it expired here
  // first, or the grant would have been refused).
  if (request.candidate !== agent.self && agent.held !== null) {
    agent.held = null
    agent.onChange()
  }
  return decision
}

function answered(
  agent: LeaseAgent,
  grantor: string,
  decision: { granted: boolean; term: number; promisedTerm: number; promisedHolder: string },
  vector: Map<number, number>,
): void {
  agent.highestTerm = Math.max(agent.highestTerm, decision.promisedTerm)
  const named = decision.promisedHolder
  if (!decision.granted && named !== '' && named !== agent.self) {
    const now = clock.now()
    const heard = agent.heardHolder
    if (heard === null || now >= heard.until || decision.promisedTerm >= heard.term) {
      agent.heardHolder = {
        term: decision.promisedTerm,
        holder: named,
        until: now + agent.settings.durationMs,
      }
    }
  }
  const round = agent.round
  if (round === null || decision.term !== round.term) return
  if (!decision.granted) {
    if (decision.promisedTerm >= round.term) agent.outbid = true
    return
  }
  round.grantedBy.add(grantor)
  agent.answerVectors.set(grantor, vector)
  if (round.grantedBy.size !== majority(agent)) return
  // A renewal keeps what the grantors held when they granted the term: that is what the holder
  // had to cover before its first step; it need not catch up again at every renewal.
  const renewed = agent.held !== null && agent.held.round.term === round.term
  agent.held = { round, vectors: renewed ? agent.held!.vectors : agent.answerVectors }
  agent.onChange()
}

/** How a failback request went here: handed over, passed to the holder, or nobody to ask. */
export type FailbackOutcome = 'target_holds' | 'handed_over' | 'asked_holder' | 'no_holder'

/**
 * Failback, an operator's action: the holder stops matching, then releases its grantors (its own
 * promise first) and leaves the campaign to `target` for a failover timeout; the target, told by
 * the release, campaigns for a higher term at once. Elsewhere the request goes to the holder.
 */
export function failback(agent: LeaseAgent, target: string): FailbackOutcome {
  const now = clock.now()
  if (holder(agent, now) === target) return 'target_holds'
  if (!holding(agent, now)) {
    const known = holder(agent, now)
    if (known === null) return 'no_holder'
    const sent = replication.sendToPeer(agent.mesh, known, protocol.writeFailback(target))
    return sent ? 'asked_holder' : 'no_holder'
  }
  const term = heldTerm(agent)
  // Stopped before anything is released: no grantor frees its promise while this node matches.
  agent.held = null
  agent.round = null
  agent.yieldUntil = now + agent.settings.failoverTimeoutMs
  agent.onChange()
  released(agent, agent.self, term, target, now)
  const frame = protocol.writeLeaseRelease(term, target)
  for (const peer of agent.mesh.config.peers.keys()) replication.sendToPeer(agent.mesh, peer, frame)
  return 'handed_over'
}

/** A grantor hears that `from` stopped holding `term`: its promise to it ends now. */
function released(agent: LeaseAgent, from: string, term: number, target: string, now: number) {
  const promise = agent.store.load()
  if (promise !== null && promise.term === term && promise.holder === from) {
    agent.store.save({ ...promise, expiresAt: Math.min(promise.expiresAt, now) })
  }
  if (agent.heardHolder?.holder === from) agent.heardHolder = null
  if (target !== agent.self) return
  agent.failbackUntil = now + agent.settings.failoverTimeoutMs
  sendRound(agent, lease.nextTerm(agent.highestTerm), now)
}

function receive(agent: LeaseAgent, peer: string, frame: protocol.LeaseFrame): void {
  const now = clock.now()
  switch (frame.type) {
    case 'lease_release':
      return released(agent, peer, frame.term, frame.target, now)
    case 'failback':
      // Only the holder hands over; a request that reached a former holder is dropped.
      if (holding(agent, now)) failback(agent, frame.target)
      return
    case 'lease_request': {
      const decision = decide(
        agent,
        { term: frame.term, candidate: peer, durationMs: frame.durationMs },
        now,
      )
      const answer = protocol.writeLeaseAnswer({
        term: frame.term,
        granted: decision.granted,
        ...promised(decision, now),
        stateVector: agent.mesh.held.state.ok
          ? Y.encodeStateVector(agent.mesh.held.state.doc)
          : new Uint8Array([0]),
      })
      replication.sendToPeer(agent.mesh, peer, answer)
      return
    }
    case 'lease_answer':
      return answered(
        agent,
        peer,
        {
          granted: frame.granted,
          term: frame.term,
          promisedTerm: frame.promisedTerm,
          promisedHolder: frame.promisedHolder,
        },
        Y.decodeStateVector(frame.stateVector),
      )
  }
}

export type LeaseStatus = {
  candidates: readonly string[]
  holding: boolean
  ready: boolean
  term: number
  holder: string | null
  /** Until when this node may match (its clock), while it holds the lease. */
  validUntil: number | null
  /** This node's own promise as a grantor. */
  promise: lease.LeasePromise | null
}

export function status(agent: LeaseAgent): LeaseStatus {
  const isHolding = holding(agent)
  return {
    candidates: agent.candidates,
    holding: isHolding,
    ready: ready(agent),
    term: isHolding ? heldTerm(agent) : agent.highestTerm,
    holder: holder(agent),
    validUntil:
      isHolding && !solo(agent)
        ? lease.validUntil(agent.held!.round, majority(agent), leaseDriftRate)
        : null,
    promise: agent.store.load(),
  }
}
