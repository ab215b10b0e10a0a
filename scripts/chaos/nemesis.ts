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
//   corrupt   F10 drain a node, kill it, damage its newest stored update, restart it
//   wipe      F11 drain a node, kill it, delete its data folder, start it empty
// Partitions cut links (reset, refuse) or blackhole them (drop every byte silently), by the seed.

import { rm } from 'node:fs/promises'
import { integerBetween, pick, shuffled } from '../lib/random'
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
  'corrupt',
  'wipe',
] as const

export type FaultKind = (typeof faultKinds)[number]

/** Names the CLI accepts for groups of faults. */
export const faultGroups: Record<string, readonly FaultKind[]> = {
  partition: ['majority', 'isolate', 'bridge', 'ring'],
  network: ['oneway', 'delay', 'loss', 'duplicate', 'reorder'],
  // Everything that a healthy mesh must survive (a damaged shard repairs from its peers).
  all: [
    'majority',
    'isolate',
    'bridge',
    'ring',
    'oneway',
    'delay',
    'loss',
    'kill',
    'pause',
    'corrupt',
    'wipe',
  ],
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
}

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
    case 'kill':
    case 'pause':
    case 'wipe':
      return { ...base, node: order[0]! }
  }
}

/** The faults of a run of `durationMs`: quiet gaps of 2-5 s between faults held 4-10 s. */
export function planFaults(
  kinds: readonly FaultKind[],
  ids: string[],
  durationMs: number,
  random: () => number,
): Fault[] {
  if (kinds.length === 0) return []
  const plan: Fault[] = []
  let at = integerBetween(random, 2_000, 4_000)
  for (;;) {
    let kind = pick(random, kinds)
    // A ring of three is the full mesh; a bridge needs two sides.
    if ((kind === 'ring' && ids.length < 4) || (kind === 'bridge' && ids.length < 3))
      kind = 'isolate'
    const fault = drawFault(kind, ids, random, at)
    if (at + fault.holdMs > durationMs) break
    plan.push(fault)
    at += fault.holdMs + integerBetween(random, 2_000, 5_000)
  }
  return plan
}

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
  const { kind, node } = fault
  const describe = {
    node,
    groups: fault.groups,
    how: fault.how,
    link: fault.link,
    ...fault.delay,
    ...(fault.resetChance !== undefined && { resetChance: fault.resetChance }),
    ...(fault.frameChance !== undefined && { frameChance: fault.frameChance }),
  }
  if (kind === 'wipe' || kind === 'corrupt') {
    const drained = await drain(cluster, node!, 30_000)
    if (!drained) {
      cluster.node(node!).clientProxy.heal()
      event('skip', { node, why: 'its writes did not reach a peer within 30 s' })
      return
    }
  }
  // A corruption is announced once it is done, with what it damaged.
  if (kind !== 'corrupt') event('start', describe)
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
    } else if (kind === 'kill') await cluster.kill(node!)
    else if (kind === 'pause') cluster.pause(node!)
    else if (kind === 'wipe' || kind === 'corrupt') await cluster.kill(node!)
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
  for (const id of cluster.ids) {
    const node = cluster.node(id)
    if (node.state === 'paused') cluster.resume(id)
    if (node.state === 'down') {
      try {
        const ms = await cluster.start(id)
        options.log(`[nemesis] ${id} serving again after ${ms} ms`)
      } catch (error) {
        options.log(`[nemesis] ${id} did not start: ${String(error).split('\n')[0]}`)
      }
    }
    if (node.state === 'running') await options.onNodeBack(id)
  }
  if (fault.cuts !== undefined || fault.kind === 'kill' || fault.kind === 'wipe') {
    const up = await allLinksUp(cluster, 30_000)
    if (up) relinkMs.push(Math.round(performance.now() - healedAt))
  }
}

/** Whether every document of every node has a link to every peer, polled until `timeoutMs`. */
export async function allLinksUp(cluster: Cluster, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    try {
      const views = await Promise.all(cluster.ids.map((id) => cluster.meshStatus(id, 5_000)))
      const peers = cluster.ids.length - 1
      const complete = views.every((view) =>
        [...view.values()].every(
          (doc) =>
            new Set(doc.links.filter((l) => l.state === 'up').map((l) => l.peer)).size === peers,
        ),
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
