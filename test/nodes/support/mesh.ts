// A mesh of real clearmesh nodes for a test: N processes (each its own process group, port and
// temporary data folder) sharing the admin token, key secret and mesh secret, each naming every
// other node as a peer and pinning every node's key. Optionally every link runs through a TCP proxy per direction (the dialling
// node is given the proxy's address), so a test can cut and heal links on real sockets.
//
// Convergence (checker C1, invariant I1) is judged from GET /v1/mesh/status on every node: every
// document has the same state-vector digest and content digest everywhere, and none holds pending
// structs or damage.

import { randomBytes } from 'node:crypto'
import { newOperatorSigningKey, pinnedNodeKeys } from '../../../scripts/lib/secrets'
import { rm } from 'node:fs/promises'
import type { ApiClient } from '../../support/api-client'
import { send, type Write } from './ledger-writes'
import {
  disagreement,
  parseMeshStatus,
  type DocDigest,
  type LinkState,
} from '../../../scripts/lib/mesh-status'
import { reservePorts, startTcpProxy, type TcpProxy } from '../../../scripts/lib/tcp-proxy'
import { startTestNode, type TestNode } from './test-node'

export type MeshNode = TestNode & {
  /** SIGKILL, delete the data folder, start again with the same secrets, port and peers. */
  wipe(): Promise<number>
}

export type MeshOptions = {
  ids?: string[]
  shards?: number
  /** Route every link through a TCP proxy per direction (needed to cut links). */
  proxied?: boolean
  /** Epoch checkpoints of shards and markets (NodeSpec.checkpointEveryMs); unset: none. */
  checkpointEveryMs?: number
}

export type { DocDigest, LinkState }

export type Mesh = {
  readonly ids: string[]
  readonly nodes: MeshNode[]
  readonly adminToken: string
  readonly meshSecret: string
  /** The operator's key every node of the mesh signs deposits and breakers with. */
  readonly operatorSigningKey: string
  node(id: string): MeshNode
  client(id: string): ApiClient
  /** The proxy carrying `from`'s connections to `to` (proxied meshes only). */
  proxy(from: string, to: string): TcpProxy
  /**
   * Cuts every link between `id` and the other nodes, both directions: with resets and refusals
   * (`cut`, the default), or by silently dropping every byte (`blackhole`).
   */
  isolate(id: string, how?: 'cut' | 'blackhole'): void
  /** Heals every cut link. */
  healAll(): void
  /** Every document of one node, by document name (`shard/0`, `market/BTC-PERP`). */
  digests(id: string): Promise<Map<string, DocDigest>>
  /**
   * Polls every node (or `among`) until all documents agree and none is pending; returns the ms it
   * took and prints it. Throws with the differing documents and link states past the deadline.
   */
  converge(label: string, options?: { timeoutMs?: number; among?: string[] }): Promise<number>
  /** Every node's recent output, for failure messages. */
  output(): string
  stop(): Promise<void>
}

export async function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  const ids = options.ids ?? ['a', 'b', 'c']
  const keySecret = `keys-${randomBytes(12).toString('hex')}`
  const secrets = {
    adminToken: `admin-${randomBytes(12).toString('hex')}`,
    keySecret,
    meshSecret: `mesh-${randomBytes(12).toString('hex')}`,
    operatorSigningKey: newOperatorSigningKey(),
    nodePublicKeys: pinnedNodeKeys(keySecret, ids),
  }
  // Ports are fixed before any node starts: every node's peer list names them. They stay held
  // while the proxies take theirs, so no proxy is handed a node's port.
  const reserved = await reservePorts(ids.length)
  const ports = new Map(ids.map((id, i) => [id, reserved.ports[i]!]))
  const proxies = new Map<string, TcpProxy>()
  if (options.proxied === true) {
    for (const from of ids) {
      for (const to of ids) {
        if (from !== to)
          proxies.set(`${from}->${to}`, await startTcpProxy(`${from}->${to}`, ports.get(to)!))
      }
    }
  }
  await reserved.release()
  const peerUrl = (from: string, to: string) =>
    proxies.get(`${from}->${to}`)?.url ?? `http://127.0.0.1:${ports.get(to)}`
  const peersOf = (id: string) =>
    ids
      .filter((other) => other !== id)
      .map((other) => `${other}=${peerUrl(id, other)}`)
      .join(',')

  const started = await Promise.allSettled(
    ids.map((id) =>
      startTestNode({
        id,
        port: ports.get(id)!,
        peers: peersOf(id),
        secrets,
        ...(options.shards !== undefined && { shards: options.shards }),
        ...(options.checkpointEveryMs !== undefined && {
          checkpointEveryMs: options.checkpointEveryMs,
        }),
      }),
    ),
  )
  const failed = started.find((result) => result.status === 'rejected')
  if (failed !== undefined) {
    await Promise.all(
      started.map((result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)),
    )
    await Promise.all([...proxies.values()].map((proxy) => proxy.close()))
    throw (failed as PromiseRejectedResult).reason
  }
  const nodes: MeshNode[] = started.map((result) => {
    const node = (result as PromiseFulfilledResult<TestNode>).value
    return Object.assign(node, {
      async wipe() {
        await node.kill()
        await rm(node.dataDir, { recursive: true, force: true })
        return node.restart()
      },
    })
  })
  const node = (id: string) => {
    const found = nodes.find((candidate) => candidate.id === id)
    if (found === undefined) throw new Error(`no node ${id}`)
    return found
  }

  const digests = async (id: string) => {
    const reply = await node(id).client().admin('GET', '/v1/mesh/status')
    if (reply.status !== 200) {
      throw new Error(`${id} mesh status: ${reply.status} ${JSON.stringify(reply.body)}`)
    }
    return parseMeshStatus(reply.body)
  }

  const mesh: Mesh = {
    ids,
    nodes,
    adminToken: secrets.adminToken,
    meshSecret: secrets.meshSecret,
    operatorSigningKey: secrets.operatorSigningKey,
    node,
    client: (id) => node(id).client(),
    proxy(from, to) {
      const proxy = proxies.get(`${from}->${to}`)
      if (proxy === undefined) throw new Error(`no proxy ${from}->${to}: start the mesh proxied`)
      return proxy
    },
    isolate(id, how = 'cut') {
      for (const other of ids.filter((other) => other !== id)) {
        for (const proxy of [mesh.proxy(id, other), mesh.proxy(other, id)]) {
          if (how === 'cut') proxy.cut()
          else proxy.blackhole()
        }
      }
    },
    healAll() {
      for (const proxy of proxies.values()) proxy.heal()
    },
    digests,
    async converge(label, { timeoutMs = 30_000, among = ids } = {}) {
      const startedAt = performance.now()
      let last = ''
      for (;;) {
        let views: Map<string, DocDigest>[] | undefined
        try {
          views = await Promise.all(among.map((id) => digests(id)))
        } catch (error) {
          last = String(error) // a node restarting: ask again
        }
        if (views !== undefined) {
          last = disagreement(among, views)
          if (last === '') {
            const ms = Math.round(performance.now() - startedAt)
            console.log(`[mesh] ${label}: converged on ${among.join(',')} in ${ms} ms`)
            return ms
          }
        }
        if (performance.now() - startedAt > timeoutMs) {
          throw new Error(`${label}: no convergence after ${timeoutMs} ms\n${last}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    },
    output: () => nodes.map((n) => `--- node ${n.id}\n${n.output()}`).join('\n'),
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()))
      await Promise.all([...proxies.values()].map((proxy) => proxy.close()))
    },
  }
  await leasesHeld(mesh)
  return mesh
}

/**
 * Waits until every market's matcher lease is held by a node that is ready to match and that every
 * node names as the holder: a mesh takes orders only from then (about one lease length after a
 * cold start, since a grantor that starts with no promise grants nothing for one lease).
 */
async function leasesHeld(mesh: Mesh): Promise<void> {
  await waitFor('every market has a ready lease holder', async () => {
    const views = await Promise.all(
      mesh.ids.map(async (id) => {
        const reply = await mesh.client(id).admin('GET', '/v1/mesh/status')
        return (reply.body.documents as any[])
          .filter((doc) => doc.lease !== undefined)
          .map((doc) => ({
            name: String(doc.shard).slice(String(doc.shard).indexOf('/') + 1),
            lease: doc.lease,
          }))
      }),
    )
    const markets = new Set(views.flat().map((doc) => doc.name))
    for (const market of markets) {
      const leases = views.map((docs) => docs.find((doc) => doc.name === market)?.lease)
      const holder = leases[0]?.holder
      const settled =
        holder != null &&
        leases.every((lease) => lease?.holder === holder) &&
        leases[mesh.ids.indexOf(holder)]?.ready === true
      // Thrown, not returned: the last view is what the timeout reports.
      if (!settled) throw new Error(`${market}: ${JSON.stringify(leases)}`)
    }
    return true
  })
}

/** The link `id` dials to `peer` of every document (by document name), with its redial counters. */
export async function dialledLinks(
  mesh: Mesh,
  id: string,
  peer: string,
): Promise<{ doc: string; state: string; reconnects: number; prompted: number }[]> {
  const reply = await mesh.client(id).admin('GET', '/v1/mesh/status')
  if (reply.status !== 200) throw new Error(`${id} mesh status: ${reply.status}`)
  return (reply.body.documents as any[]).map((document) => {
    const link = (document.links as any[]).find(
      (candidate) =>
        candidate.peer === peer && (candidate.state === 'down' || candidate.direction === 'out'),
    )
    if (link === undefined) throw new Error(`${id} does not dial ${peer} for ${document.shard}`)
    return {
      doc: String(document.shard),
      state: link.state,
      reconnects: link.reconnects,
      prompted: link.prompted,
    }
  })
}

/** Polls `check` until it returns a value other than undefined; throws `what` past the deadline. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  { timeoutMs = 30_000, intervalMs = 20 } = {},
): Promise<T> {
  const deadline = performance.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (error) {
      lastError = error
    }
    if (performance.now() > deadline) {
      throw new Error(
        `${what}: not within ${timeoutMs} ms${lastError ? ` (${String(lastError)})` : ''}`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** p-th percentile (0-100) of `values`, nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((x, y) => x - y)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1]!
}

/**
 * `count` deposits of 1.25 to one account on one node, `concurrency` at a time, with request ids
 * of the longest allowed length: the quickest way to grow one shard document (about 440 bytes of
 * update per deposit). Returns the writes with their outcomes.
 */
export async function bulkDeposits(
  client: ApiClient,
  accountId: string,
  count: number,
  tag: string,
  concurrency = 8,
): Promise<Write[]> {
  const writes: Write[] = Array.from({ length: count }, (_, i) => ({
    kind: 'deposit',
    accountId,
    // Padded to the 64-character id limit.
    requestId: `${tag}-${i}-`.padEnd(64, 'p'),
    amount: '1.25',
  }))
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < writes.length) {
        const write = writes[next++]!
        await send(client, { accountId, key: { keyId: '', secret: '' } }, write)
      }
    }),
  )
  return writes
}
