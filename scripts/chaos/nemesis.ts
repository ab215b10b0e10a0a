// The nemesis: a seeded plan of faults (design.md §5), one at a time, each held for a while and
// then healed, while the workload runs. The plan is drawn from the seed before the run starts,
// so a seed names the same faults on the same nodes in the same order; only timing varies.
//
//   majority  F1  the nodes split in two groups, a majority and a minority
//   isolate   F2  one node cut off from every other
//   bridge    F3  two groups that cannot talk, and one node that talks to both
//   ring      F4  each node talks only to its two neighbours on a ring
//   oneway    F5  one link passes bytes in one direction only
//   delay     F6  every link slowed (delay and jitter), one node's clients too
//   loss      F6  one node's links (and clients) reset at random, as a lossy path makes TCP give up
//   duplicate F6  every link sends some WebSocket data frames twice
//   reorder   F6  every link swaps some WebSocket data frames with the next one
//   kill      F7  SIGKILL a node (and its workerd), restart it from its data folder
//   pause     F8  SIGSTOP a node's process group, SIGCONT it later
//   skew      F9  restart a node with its clock set 1-30 s off, either way; back to 0 at the heal
//   corrupt   F10 drain a node, kill it, damage its newest stored update, restart it
//   wipe      F11 drain a node, kill it, delete its data folder, start it empty
//   join      F12 a node in every peer list, absent from the start, starts empty and catches up
//   leave     F12 drain a node, stop it for the rest of the run
//   failover  F2/F7 kill or cut off the node holding an instrument's matcher lease (asked of the
//             mesh when the fault starts) for 8-14 s, past the failover timeout, so the matcher
//             moves to the next candidate; then restart or reconnect it (it does not fail back)
// Partitions cut links (reset, refuse) or blackhole them (drop every byte silently), by the seed.
// Membership is static (every node's --peers names every node): a join or leave changes which
// nodes run, not the mesh's configuration, so quorums stay over every configured node.

import { rm } from 'node:fs/promises'
import { clockSkewMsMax } from '../../src/constants'
import { integerBetween, pick, shuffled } from '../lib/random'
import type { DocDigest } from '../lib/mesh-status'
import type { Cluster } from './cluster'
import type { HistoryWriter } from './history'
import { sleep } from './workload'

export const faultKinds = [
  'majority',
  'isolate',
  'bridge',
  'ring',
  'oneway',
  'delay',
  'loss',
  'duplicate',
  'reorder',
  'kill',
  'pause',
  'skew',
  'corrupt',
  'wipe',
  'join',
  'leave',
  'failover',
] as const

export type FaultKind = (typeof faultKinds)[number]

/** Names the CLI accepts for groups of faults. */
export const faultGroups: Record<string, readonly FaultKind[]> = {
  partition: ['majority', 'isolate', 'bridge', 'ring'],
  network: ['oneway', 'delay', 'loss', 'duplicate', 'reorder'],
  membership: ['join', 'leave'],
  matcher: ['failover'],
  // Everything that a healthy mesh must survive (a damaged shard repairs from its peers).
  all: faultKinds,
}

export function parseFaults(text: string): FaultKind[] {
  const kinds = new Set<FaultKind>()
  for (const name of text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')) {
    const group = faultGroups[name]
    if (group !== undefined) group.forEach((kind) => kinds.add(kind))
    else if ((faultKinds as readonly string[]).includes(name)) kinds.add(name as FaultKind)
    else
      throw new Error(
        `unknown fault "${name}"; use ${[...Object.keys(faultGroups), ...faultKinds].join(', ')}`,
      )
  }
  return [...kinds]
}

export type Fault = {
  kind: FaultKind
  /** Ms after the workload started. */
  at: number
  holdMs: number
  /** Pairs of nodes that cannot talk (partitions). */
  cuts?: [string, string][]
  how?: 'cut' | 'blackhole'
  groups?: string[][]
  node?: string
  link?: { from: string; to: string; drop: 'up' | 'down' }
  delay?: { delayMs: number; jitterMs: number }
  resetChance?: number
  /** Chance per WebSocket data frame (duplicate, reorder). */
  frameChance?: number
  corruption?: 'flip' | 'truncate'
  /** Ms the node's clock is set off by while the fault holds (skew). */
  skewMs?: number
  /** Of a failover: whose lease holder, and whether it is killed or cut off. */
  instrument?: string
  failoverBy?: 'kill' | 'isolate'
}

/** The instrument whose matcher a failover fault moves (every catalog has it). */
const failoverInstrument = 'BTC-PERP'

/** Skews drawn for F9: 1-30 s either way, well inside the mesh token's lifetime. */
const skewMsRange = [1_000, 30_000] as const
if (skewMsRange[1] > clockSkewMsMax) throw new Error('skew over the node clock skew bound')

/** Pairs of nodes in different groups. */
const across = (groups: string[][]): [string, string][] =>
  groups.flatMap((group, i) =>
    groups
      .slice(i + 1)
      .flatMap((other) => group.flatMap((x) => other.map((y) => [x, y] as [string, string]))),
  )

/** Draws the fault of `kind` on `ids`. */
function drawFault(kind: FaultKind, ids: string[], random: () => number, at: number): Fault {
  const holdMs = integerBetween(random, 4_000, 10_000)
  const how = random() < 0.5 ? 'cut' : 'blackhole'
  const order = shuffled(random, ids)
  const base = { kind, at, holdMs }
  switch (kind) {
    case 'majority': {
      const minority = Math.max(1, Math.floor((ids.length - 1) / 2))
      const groups = [order.slice(0, minority), order.slice(minority)]
      return { ...base, how, groups, cuts: across(groups) }
    }
    case 'isolate': {
      const groups = [order.slice(0, 1), order.slice(1)]
      return { ...base, how, groups, node: order[0]!, cuts: across(groups) }
    }
    case 'bridge': {
      const [bridge, ...rest] = order
      const half = Math.ceil(rest.length / 2)
      const groups = [rest.slice(0, half), rest.slice(half)]
      return { ...base, how, groups, node: bridge!, cuts: across(groups) }
    }
    case 'ring': {
      const neighbours = (i: number, j: number) =>
        Math.abs(i - j) === 1 || Math.abs(i - j) === order.length - 1
      const cuts: [string, string][] = []
      order.forEach((x, i) =>
        order.forEach((y, j) => {
          if (i < j && !neighbours(i, j)) cuts.push([x, y])
        }),
      )
      return { ...base, how, groups: [order], cuts }
    }
    case 'oneway': {
      // The smaller id dials, so its proxy to the other carries the pair's link.
      const [x, y] = order.slice(0, 2).sort()
      return { ...base, link: { from: x!, to: y!, drop: random() < 0.5 ? 'up' : 'down' } }
    }
    case 'delay':
      return {
        ...base,
        node: order[0]!,
        delay: {
          delayMs: integerBetween(random, 20, 300),
          jitterMs: integerBetween(random, 0, 200),
        },
      }
    case 'loss':
      return { ...base, node: order[0]!, resetChance: integerBetween(random, 1, 5) / 100 }
    case 'duplicate':
    case 'reorder':
      return { ...base, frameChance: integerBetween(random, 5, 30) / 100 }
    case 'corrupt':
      return { ...base, node: order[0]!, corruption: random() < 0.5 ? 'flip' : 'truncate' }
    case 'skew': {
      const skewMs = integerBetween(random, ...skewMsRange) * (random() < 0.5 ? -1 : 1)
      return { ...base, node: order[0]!, skewMs }
    }
    case 'kill':
    case 'pause':
    case 'wipe':
    case 'join':
    case 'leave':
      return { ...base, node: order[0]! }
    case 'failover':
      return {
        ...base,
        holdMs: integerBetween(random, 8_000, 14_000),
        instrument: failoverInstrument,
        failoverBy: random() < 0.5 ? 'kill' : 'isolate',
      }
  }
}

/**
 * The lease holder once the running nodes agree on one (a lease settles about one lease length
 * after a start, and moves after a fault), asked every 250 ms for up to 15 s.
 */
async function agreedHolder(cluster: Cluster, instrument: string): Promise<string | undefined> {
  const deadline = performance.now() + 15_000
  for (;;) {
    const holder = await leaseHolder(cluster, instrument)
    if (holder !== undefined || performance.now() > deadline) return holder
    await sleep(250)
  }
}

/** The node every running node names as the holder of `instrument`'s lease, if they agree. */
async function leaseHolder(cluster: Cluster, instrument: string): Promise<string | undefined> {
  const named = new Set<string | null>()
  for (const id of cluster.ids.filter((id) => cluster.node(id).state === 'running')) {
    try {
      const reply = await cluster.admin(id).admin('GET', '/v1/mesh/status')
      const market = (reply.body.documents as { shard: string; lease?: { holder: string } }[]).find(
        (doc) => doc.shard.endsWith(`/market/${instrument}`),
      )
      named.add(market?.lease?.holder ?? null)
    } catch {
      named.add(null) // a node that does not answer names nobody
    }
  }
  const [holder] = named
  return named.size === 1 && typeof holder === 'string' ? holder : undefined
}

/**
 * The faults of a run of `durationMs`: quiet gaps of 2-5 s between faults held 4-10 s, each on
 * the nodes running then. With `join`, one node is absent from the start and joins as the first
 * or second fault; a `leave` stops one node for good, once, if two others keep running. Nodes in
 * `anchored` (an instrument's home, the settlement node) never join or leave: without them no
 * order could match, so what the checkers judge would be mostly refusals.
 */
export function planFaults(
  kinds: readonly FaultKind[],
  ids: string[],
  durationMs: number,
  random: () => number,
  anchored: readonly string[] = [],
): Fault[] {
  if (kinds.length === 0) return []
  const mobile = (nodes: string[]) => nodes.filter((id) => !anchored.includes(id))
  // Drawn only with a join, so that a seed without one plans what it always did.
  const joiner =
    kinds.includes('join') && mobile(ids).length > 0 ? pick(random, mobile(ids)) : undefined
  const joinIndex = joiner === undefined ? 0 : integerBetween(random, 0, 1)
  let running = ids.filter((id) => id !== joiner)
  let joined = false
  let left = false
  const drawable = kinds.filter((kind) => kind !== 'join')
  const plan: Fault[] = []
  let at = integerBetween(random, 2_000, 4_000)
  for (;;) {
    const joinPending = joiner !== undefined && !joined
    const joinsNow = joinPending && (plan.length >= joinIndex || drawable.length === 0)
    if (!joinsNow && drawable.length === 0) break
    let kind: FaultKind = joinsNow ? 'join' : pick(random, drawable)
    // A ring of three is the full mesh; a bridge needs two sides; a leave, two nodes left after
    // (the join first, when it is what makes them two).
    if ((kind === 'ring' && running.length < 4) || (kind === 'bridge' && running.length < 3))
      kind = 'isolate'
    if (kind === 'leave' && (left || running.length < 3 || mobile(running).length === 0))
      kind = joinPending ? 'join' : 'isolate'
    const on = kind === 'join' ? [joiner!] : kind === 'leave' ? mobile(running) : running
    const fault = drawFault(kind, on, random, at)
    if (at + fault.holdMs > durationMs) break
    plan.push(fault)
    if (kind === 'join') {
      running = [...running, joiner!].sort()
      joined = true
    }
    if (kind === 'leave') {
      running = running.filter((id) => id !== fault.node)
      left = true
    }
    at += fault.holdMs + integerBetween(random, 2_000, 5_000)
  }
  return plan
}

/** The node absent from the start of a run of `plan`, that joins mid-run. */
export const joinerOf = (plan: readonly Fault[]): string | undefined =>
  plan.find((fault) => fault.kind === 'join')?.node

export type Nemesis = {
  /**
   * Resolves once every planned fault ran and was healed. A fault that starts late (the one
   * before it took longer, e.g. a slow restart) still runs for its whole hold, so a seed always
   * means the same faults.
   */
  readonly finished: Promise<void>
  /** Stops after the fault in progress is healed (an interrupted run). */
  stop(): Promise<void>
  /** Per fault, ms from its heal until every link was up again (partitions and kills). */
  readonly relinkMs: number[]
}

export type NemesisOptions = {
  cluster: Cluster
  history: HistoryWriter
  plan: Fault[]
  /** Called after a node is serving again (posts it fresh marks). */
  onNodeBack(node: string): Promise<void>
  log(line: string): void
}

export function startNemesis(options: NemesisOptions): Nemesis {
  let stopping = false
  let wake: (() => void) | undefined
  const nap = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  const relinkMs: number[] = []
  const startedAt = options.history.now()
  const done = (async () => {
    for (const fault of options.plan) {
      const wait = startedAt + fault.at - options.history.now()
      if (wait > 0) await nap(wait)
      if (stopping) return
      await runFault(options, fault, nap, relinkMs, () => stopping)
    }
  })()
  return {
    relinkMs,
    finished: done,
    async stop() {
      stopping = true
      wake?.()
      await done
    },
  }
}

/** Applies one fault, holds it (cut short by stop), heals it; every step goes in the history. */
async function runFault(
  options: NemesisOptions,
  fault: Fault,
  nap: (ms: number) => Promise<void>,
  relinkMs: number[],
  stopping: () => boolean,
): Promise<void> {
  const { cluster, history } = options
  const event = (f: 'start' | 'stop' | 'skip', value: Record<string, unknown>) => {
    history.append({ type: 'nemesis', t: history.now(), f, fault: fault.kind, value })
    options.log(`[nemesis] ${f} ${fault.kind} ${JSON.stringify(value)}`)
  }
  const { kind } = fault
  const node = kind === 'failover' ? await agreedHolder(cluster, fault.instrument!) : fault.node
  if (kind === 'failover' && node === undefined) {
    event('skip', { instrument: fault.instrument, why: 'the nodes do not agree on a lease holder' })
    return
  }
  const describe = {
    ...(kind === 'failover' && { instrument: fault.instrument, by: fault.failoverBy }),
    node,
    groups: fault.groups,
    how: fault.how,
    link: fault.link,
    ...fault.delay,
    ...(fault.resetChance !== undefined && { resetChance: fault.resetChance }),
    ...(fault.frameChance !== undefined && { frameChance: fault.frameChance }),
    ...(fault.skewMs !== undefined && { skewMs: fault.skewMs }),
  }
  if (kind === 'wipe' || kind === 'corrupt' || kind === 'leave') {
    const drained = await drain(cluster, node!, 30_000)
    if (!drained) {
      cluster.node(node!).clientProxy.heal()
      event('skip', { node, why: 'its writes did not reach a peer within 30 s' })
      return
    }
  }
  // A corruption is announced once it is done, with what it damaged; a skew with the node's
  // clock as read back from it.
  if (kind !== 'corrupt' && kind !== 'skew') event('start', describe)
  try {
    if (fault.cuts !== undefined) {
      for (const [x, y] of fault.cuts) {
        for (const proxy of [cluster.link(x, y), cluster.link(y, x)]) {
          if (fault.how === 'blackhole') proxy.blackhole()
          else proxy.cut()
        }
      }
    } else if (kind === 'oneway') {
      cluster.link(fault.link!.from, fault.link!.to).impair({ drop: fault.link!.drop })
    } else if (kind === 'delay') {
      for (const proxy of cluster.links()) proxy.impair(fault.delay!)
      cluster.node(node!).clientProxy.impair(fault.delay!)
    } else if (kind === 'loss') {
      const impairment = { resetChance: fault.resetChance! }
      for (const other of cluster.ids.filter((id) => id !== node)) {
        cluster.link(node!, other).impair(impairment)
        cluster.link(other, node!).impair(impairment)
      }
      cluster.node(node!).clientProxy.impair(impairment)
    } else if (kind === 'duplicate' || kind === 'reorder') {
      const impairment =
        kind === 'duplicate'
          ? { duplicateChance: fault.frameChance! }
          : { reorderChance: fault.frameChance! }
      for (const proxy of cluster.links()) proxy.impair(impairment)
    } else if (kind === 'kill' || (kind === 'failover' && fault.failoverBy === 'kill'))
      await cluster.kill(node!)
    else if (kind === 'failover') {
      for (const other of cluster.ids.filter((id) => id !== node)) {
        cluster.link(node!, other).cut()
        cluster.link(other, node!).cut()
      }
    } else if (kind === 'pause') cluster.pause(node!)
    else if (kind === 'wipe' || kind === 'corrupt') await cluster.kill(node!)
    else if (kind === 'leave') await cluster.leave(node!)
    else if (kind === 'join') await startLogged(options, node!)
    else if (kind === 'skew') {
      await restartLogged(options, node!, fault.skewMs!)
      event('start', { ...describe, clockOffsetMs: await cluster.clockOffset(node!) })
    }
    if (kind === 'corrupt') {
      try {
        event('start', { ...describe, damaged: await cluster.corrupt(node!, fault.corruption!) })
      } catch (error) {
        event('skip', { node, why: `could not corrupt: ${String(error).slice(0, 200)}` })
      }
    }
    if (kind === 'wipe') {
      await rm(cluster.node(node!).data, { recursive: true, force: true })
    }
    if (!stopping()) await nap(fault.holdMs)
  } finally {
    await heal(options, fault, relinkMs)
    event('stop', { node })
  }
}

/** Undoes a fault: links and client proxies forward again, nodes run again. */
async function heal(options: NemesisOptions, fault: Fault, relinkMs: number[]): Promise<void> {
  const { cluster } = options
  const healedAt = performance.now()
  cluster.healNetwork()
  if (fault.kind === 'skew') await restartLogged(options, fault.node!, 0)
  for (const id of cluster.ids) {
    const node = cluster.node(id)
    if (node.state === 'paused') cluster.resume(id)
    if (node.state === 'down') await startLogged(options, id)
    if (node.state === 'running') await options.onNodeBack(id)
  }
  if (
    fault.cuts !== undefined ||
    ['kill', 'wipe', 'corrupt', 'skew', 'join', 'failover'].includes(fault.kind)
  ) {
    const up = await allLinksUp(cluster, 30_000)
    if (up) relinkMs.push(Math.round(performance.now() - healedAt))
  }
}

/** Starts a node that is down or absent; a failed start is logged and leaves it down. */
async function startLogged(options: NemesisOptions, id: string): Promise<void> {
  try {
    const ms = await options.cluster.start(id)
    options.log(`[nemesis] ${id} serving after ${ms} ms`)
  } catch (error) {
    options.log(`[nemesis] ${id} did not start: ${String(error).split('\n')[0]}`)
  }
}

/** Restarts a node with its clock `clockSkewMs` off; a failed start leaves it down. */
async function restartLogged(options: NemesisOptions, id: string, clockSkewMs: number) {
  try {
    const ms = await options.cluster.restart(id, clockSkewMs)
    options.log(`[nemesis] ${id} serving with its clock ${clockSkewMs} ms off after ${ms} ms`)
  } catch (error) {
    options.log(`[nemesis] ${id} did not restart: ${String(error).split('\n')[0]}`)
  }
}

/**
 * Whether every document of every member (a node neither absent nor left) has a link to every
 * other member, polled until `timeoutMs`.
 */
export async function allLinksUp(cluster: Cluster, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    try {
      const members = cluster.members()
      const views = await Promise.all(members.map((id) => cluster.meshStatus(id, 5_000)))
      const linked = (doc: DocDigest) =>
        new Set(
          doc.links.filter((l) => l.state === 'up' && members.includes(l.peer)).map((l) => l.peer),
        ).size
      const complete = views.every((view) =>
        [...view.values()].every((doc) => linked(doc) === members.length - 1),
      )
      if (complete) return true
    } catch {
      // A node still starting: ask again.
    }
    await sleep(200)
  }
  return false
}

/**
 * Stops clients reaching `id` and waits until a peer holds everything it holds: for every
 * document some up link reports nothing ahead. Wiping (or damaging) a node whose acknowledged
 * writes no peer holds would lose them by construction under `local` durability.
 */
async function drain(cluster: Cluster, id: string, timeoutMs: number): Promise<boolean> {
  cluster.node(id).clientProxy.cut()
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    try {
      const view = await cluster.meshStatus(id, 5_000)
      const held = [...view.values()].every((doc) =>
        doc.links.some((link) => link.state === 'up' && (link.ahead ?? 1) === 0),
      )
      if (held) return true
    } catch {
      // ask again
    }
    await sleep(200)
  }
  return false
}
