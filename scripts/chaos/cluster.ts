// A local mesh for the chaos harness: one real node process per id (scripts/lib/node-process.ts,
// each its own process group, port and data folder), a TCP proxy on every directed link between
// nodes (each node dials its peers through them) and one in front of every node's client port.
// Faults act from outside, on what an operator could touch: sockets (the proxies), processes
// (SIGKILL, SIGSTOP/SIGCONT of the whole group) and data folders (wipe, corrupt a stored update
// with the sqlite3 tool while the node is down).

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, type WriteStream } from 'node:fs'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { GrantPolicy } from '../../src/domain/escrow'
import { stateVectorDigest } from '../../src/state/digest'
import { apiClient, type ApiClient } from '../../test/support/api-client'
import { follow } from '../lib/follower'
import { parseMeshStatus, type DocDigest } from '../lib/mesh-status'
import { signalGroup, spawnNode, type NodeProcess, type NodeSpec } from '../lib/node-process'
import { newOperatorSigningKey, pinnedNodeKeys } from '../lib/secrets'
import { reservePorts, startTcpProxy, type TcpProxy } from '../lib/tcp-proxy'

/**
 * `absent`: not started yet, it joins mid-run (F12); `left`: drained and stopped for good (F12).
 * Neither is a member: clients do not pick it, and convergence and the final reads skip it.
 */
export type NodeState = 'down' | 'running' | 'paused' | 'absent' | 'left'

export type ChaosNode = {
  readonly id: string
  readonly port: number
  readonly data: string
  /** The proxy clients reach this node through. */
  readonly clientProxy: TcpProxy
  state: NodeState
  process: NodeProcess | undefined
  /** Ms its clock is set off by at its next start (F9). */
  clockSkewMs: number
}

export type ClusterOptions = {
  ids: string[]
  shards: number
  /** Folder holding one data folder per node. */
  root: string
  /** Where each node's output goes, `<id>.log`; nowhere when unset. */
  logDir?: string
  random: () => number
  readyTimeoutMs?: number
  /** Nodes in every peer list that do not start with the others: they join mid-run. */
  absent?: string[]
  /** Settlement epoch length passed to every node (`--settle-every`); 0 or unset: none. */
  settleEveryMs?: number
  /** Epoch checkpoint length passed to every node (`--checkpoint-every`); 0 or unset: none. */
  checkpointEveryMs?: number
  /** Every node's escrow grant policy (`--grant-policy`); unset: the default. */
  grantPolicy?: GrantPolicy
}

export type Cluster = {
  readonly ids: string[]
  readonly adminToken: string
  readonly meshSecret: string
  node(id: string): ChaosNode
  /** The proxy carrying `from`'s connections to `to`. */
  link(from: string, to: string): TcpProxy
  links(): TcpProxy[]
  /** The nodes that are neither absent nor left, whatever their state. */
  members(): string[]
  /** The node's own port (operator calls, final reads); `clientUrl` goes through its proxy. */
  directUrl(id: string): string
  clientUrl(id: string): string
  /** Admin client on the node's own port, each call bounded by `timeoutMs`. */
  admin(id: string, timeoutMs?: number): ApiClient
  /** Starts a node that is down or absent; resolves with ms from spawn to serving. */
  start(id: string): Promise<number>
  /** Stops a node (SIGTERM) and starts it again with its clock `clockSkewMs` off. */
  restart(id: string, clockSkewMs: number): Promise<number>
  /** Stops a node (SIGTERM) for the rest of the run. */
  leave(id: string): Promise<void>
  /** How far the node's clock reads from this process's, by its health answer. */
  clockOffset(id: string): Promise<number>
  kill(id: string): Promise<void>
  pause(id: string): void
  resume(id: string): void
  /** Kills the node, deletes its data folder and starts it empty. */
  wipe(id: string): Promise<number>
  /** While the node is down: damages its newest stored update (or a snapshot chunk). */
  corrupt(id: string, how: 'flip' | 'truncate'): Promise<string>
  meshStatus(id: string, timeoutMs?: number): Promise<Map<string, DocDigest>>
  /**
   * Every top-level map of a document, read as a y-websocket follower reads it, once the
   * follower holds the state vector whose digest the node reported (if it reported one).
   */
  readDocument(
    id: string,
    doc: string,
    stateVectorDigest: string | null,
    timeoutMs?: number,
  ): Promise<Record<string, Record<string, unknown>>>
  /** Heals every link and client proxy. */
  healNetwork(): void
  stop(): Promise<void>
}

const execFileAsync = promisify(execFile)

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const { ids } = options
  const keySecret = `keys-${randomBytes(12).toString('hex')}`
  const secrets = {
    adminToken: `admin-${randomBytes(12).toString('hex')}`,
    keySecret,
    meshSecret: `mesh-${randomBytes(12).toString('hex')}`,
    operatorSigningKey: newOperatorSigningKey(),
    nodePublicKeys: pinnedNodeKeys(keySecret, ids),
  }
  // Node ports are held while the proxies take theirs, so no proxy is handed a node's port.
  // Node ports under the ephemeral range: a restarted node gets its port back (see reservePorts).
  const reserved = await reservePorts(ids.length, { below: 32_768 })
  const ports = new Map(ids.map((id, i) => [id, reserved.ports[i]!]))
  const links = new Map<string, TcpProxy>()
  const nodes = new Map<string, ChaosNode>()
  try {
    for (const from of ids) {
      for (const to of ids) {
        if (from === to) continue
        const proxy = await startTcpProxy(`${from}->${to}`, ports.get(to)!, {
          random: options.random,
        })
        links.set(`${from}->${to}`, proxy)
      }
    }
    for (const id of ids) {
      const clientProxy = await startTcpProxy(`client->${id}`, ports.get(id)!, {
        random: options.random,
      })
      nodes.set(id, {
        id,
        port: ports.get(id)!,
        data: join(options.root, id),
        clientProxy,
        state: options.absent?.includes(id) ? 'absent' : 'down',
        process: undefined,
        clockSkewMs: 0,
      })
    }
  } finally {
    await reserved.release()
  }
  const logs = new Map<string, WriteStream>()
  const log = (id: string) => {
    if (options.logDir === undefined) return undefined
    let stream = logs.get(id)
    if (stream === undefined) {
      stream = createWriteStream(join(options.logDir, `${id}.log`), { flags: 'a' })
      logs.set(id, stream)
    }
    return stream
  }
  // However the harness ends, no node (or workerd) outlives it.
  const killAll = () => {
    for (const node of nodes.values()) if (node.process) signalGroup(node.process.pid, 'SIGKILL')
  }
  process.once('exit', killAll)

  const node = (id: string) => {
    const found = nodes.get(id)
    if (found === undefined) throw new Error(`no node ${id}`)
    return found
  }
  const spec = (id: string): NodeSpec => ({
    id,
    port: node(id).port,
    data: node(id).data,
    shards: options.shards,
    ...(options.settleEveryMs !== undefined && { settleEveryMs: options.settleEveryMs }),
    ...(options.checkpointEveryMs !== undefined && {
      checkpointEveryMs: options.checkpointEveryMs,
    }),
    ...(options.grantPolicy !== undefined && { grantPolicy: options.grantPolicy }),
    ...(node(id).clockSkewMs !== 0 && { clockSkewMs: node(id).clockSkewMs }),
    peers: ids
      .filter((other) => other !== id)
      .map((other) => `${other}=${links.get(`${id}->${other}`)!.url}`)
      .join(','),
    env: {
      CLEARMESH_ADMIN_TOKEN: secrets.adminToken,
      CLEARMESH_KEY_SECRET: secrets.keySecret,
      CLEARMESH_MESH_SECRET: secrets.meshSecret,
      CLEARMESH_OPERATOR_SIGNING_KEY: secrets.operatorSigningKey,
      CLEARMESH_NODE_PUBLIC_KEYS: secrets.nodePublicKeys,
    },
  })
  /** SIGTERM (SIGCONT first if paused); the node is down once its process group is gone. */
  const stopNode = async (id: string) => {
    const target = node(id)
    if (target.state === 'paused') cluster.resume(id)
    if (target.process !== undefined && target.state === 'running') await target.process.stop(5_000)
    if (target.state === 'running') target.state = 'down'
  }
  const directUrl = (id: string) => `http://127.0.0.1:${node(id).port}`
  const admin = (id: string, timeoutMs = 10_000) =>
    apiClient(
      (url, init) => fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
      directUrl(id),
      secrets.adminToken,
    )

  const cluster: Cluster = {
    ids,
    adminToken: secrets.adminToken,
    meshSecret: secrets.meshSecret,
    node,
    link(from, to) {
      const proxy = links.get(`${from}->${to}`)
      if (proxy === undefined) throw new Error(`no link ${from}->${to}`)
      return proxy
    },
    links: () => [...links.values()],
    members: () => ids.filter((id) => !['absent', 'left'].includes(node(id).state)),
    directUrl,
    clientUrl: (id) => node(id).clientProxy.url,
    admin,
    async start(id) {
      const target = node(id)
      if (target.state !== 'down' && target.state !== 'absent')
        throw new Error(`node ${id} is ${target.state}`)
      const startedAt = performance.now()
      const stream = log(id)
      stream?.write(`--- start ${new Date().toISOString()}\n`)
      const proc = spawnNode(spec(id), {
        readyTimeoutMs: options.readyTimeoutMs ?? 120_000,
        onLine: (line, where) => stream?.write(`${where === 'stderr' ? '! ' : ''}${line}\n`),
      })
      target.process = proc
      target.state = 'running'
      try {
        await proc.ready
      } catch (error) {
        await proc.kill()
        target.state = 'down'
        throw error
      }
      return Math.round(performance.now() - startedAt)
    },
    async restart(id, clockSkewMs) {
      await stopNode(id)
      node(id).clockSkewMs = clockSkewMs
      return cluster.start(id)
    },
    async leave(id) {
      await stopNode(id)
      node(id).state = 'left'
      log(id)?.write(`--- left ${new Date().toISOString()}\n`)
    },
    async clockOffset(id) {
      const sentAt = Date.now()
      const reply = await fetch(`${directUrl(id)}/health`, { signal: AbortSignal.timeout(5_000) })
      const { at } = (await reply.json()) as { at: number }
      return Math.round(at - (sentAt + Date.now()) / 2)
    },
    async kill(id) {
      const target = node(id)
      if (target.process === undefined || target.state === 'down') return
      // A stopped process takes SIGKILL too; the group is gone before this resolves.
      await target.process.kill()
      target.state = 'down'
      log(id)?.write(`--- killed ${new Date().toISOString()}\n`)
    },
    pause(id) {
      const target = node(id)
      if (target.state !== 'running' || target.process === undefined) return
      signalGroup(target.process.pid, 'SIGSTOP')
      target.state = 'paused'
    },
    resume(id) {
      const target = node(id)
      if (target.state !== 'paused' || target.process === undefined) return
      signalGroup(target.process.pid, 'SIGCONT')
      target.state = 'running'
    },
    async wipe(id) {
      await cluster.kill(id)
      await rm(node(id).data, { recursive: true, force: true })
      return cluster.start(id)
    },
    async corrupt(id, how) {
      if (node(id).state !== 'down') throw new Error(`node ${id} must be down to corrupt`)
      return corruptNewestUpdate(node(id).data, how)
    },
    async meshStatus(id, timeoutMs = 10_000) {
      const reply = await admin(id, timeoutMs).admin('GET', '/v1/mesh/status')
      if (reply.status !== 200)
        throw new Error(`${id} mesh status: ${reply.status} ${JSON.stringify(reply.body)}`)
      return parseMeshStatus(reply.body)
    },
    async readDocument(id, doc, expected, timeoutMs = 15_000) {
      const follower = await follow(id, directUrl(id), secrets.meshSecret, doc, {
        timeoutMs,
        id: 'chaos',
      })
      // A catch-up larger than one piece arrives as a SyncStep2 and then updates: a document
      // read at the SyncStep2 alone lacks the rest (chaos seed 42 read a market half-way). The
      // last piece may hold deletions only, which no state vector shows: wait for quiet too.
      const deadline = performance.now() + timeoutMs
      const quiet = () => Date.now() - follower.lastArrivalMs() >= finalReadQuietMs
      while ((expected !== null && stateVectorDigest(follower.ydoc) !== expected) || !quiet()) {
        if (performance.now() > deadline) {
          follower.close()
          throw new Error(`${id} ${doc}: the follower never held the state the node reported`)
        }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      follower.close()
      const content: Record<string, Record<string, unknown>> = {}
      for (const name of [...follower.ydoc.share.keys()].sort())
        content[name] = follower.ydoc.getMap(name).toJSON() as Record<string, unknown>
      return content
    },
    healNetwork() {
      for (const proxy of links.values()) proxy.heal()
      for (const each of nodes.values()) each.clientProxy.heal()
    },
    async stop() {
      await Promise.all(
        [...nodes.values()].map(async (each) => {
          await stopNode(each.id)
        }),
      )
      await Promise.all([...links.values()].map((proxy) => proxy.close()))
      await Promise.all([...nodes.values()].map((each) => each.clientProxy.close()))
      await Promise.all(
        [...logs.values()].map((s) => new Promise<void>((resolve) => s.end(resolve))),
      )
      process.removeListener('exit', killAll)
    },
  }
  return cluster
}

/** How long a final read waits with nothing arriving before it takes the document as whole. */
const finalReadQuietMs = 250

/** Every SQLite file under `folder`. */
async function sqliteFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true })
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.sqlite'))
    .map((entry) => join(entry.parentPath, entry.name))
}

const sqlite = async (file: string, sql: string) =>
  (await execFileAsync('sqlite3', [file, sql], { timeout: 10_000 })).stdout.trim()

/**
 * F10 from outside: with the sqlite3 tool, zeroes (flip) or halves (truncate) the body of the
 * newest update in the log of one shard replica, keeping its checksum, so the stored bytes no
 * longer match it. Returns which replica and row were damaged.
 */
export async function corruptNewestUpdate(data: string, how: 'flip' | 'truncate'): Promise<string> {
  for (const file of (await sqliteFiles(data)).sort()) {
    let name: string
    try {
      name = await sqlite(file, 'SELECT name FROM replica_name')
    } catch {
      continue // not a replica's database
    }
    if (!name.includes('/shard/')) continue
    const seq = await sqlite(file, 'SELECT MAX(seq) FROM update_log')
    if (seq === '') continue
    const body = how === 'flip' ? 'zeroblob(length(body))' : 'substr(body, 1, length(body) / 2)'
    await sqlite(file, `UPDATE update_log SET body = ${body} WHERE seq = ${Number(seq)}`)
    return `${name} update ${seq} (${how})`
  }
  throw new Error(`no shard replica with a stored update under ${data}`)
}
