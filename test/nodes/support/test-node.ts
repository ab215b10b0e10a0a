// A real clearmesh node for a test: its own process group, a free port, a temporary data folder,
// known secrets. It can be SIGKILLed (node and workerd together) and restarted from its folder.

import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  groupAlive,
  signalGroup,
  spawnNode,
  type NodeExit,
  type NodeProcess,
  type NodeSpec,
} from '../../../scripts/lib/node-process'
import { apiClient, type ApiClient } from '../../support/api-client'

export type TestNode = {
  readonly id: string
  readonly dataDir: string
  readonly adminToken: string
  /** Base URL of the running process; the port stays the same across restarts. */
  url(): string
  client(): ApiClient
  /** SIGKILL to the node's group; resolves once neither the node nor its workerd is left. */
  kill(): Promise<void>
  /** Starts the node again from the same data folder; resolves with ms from spawn to ready. */
  restart(): Promise<number>
  /** Process group id of the current process (the node's pid). */
  pid(): number
  /** Graceful stop (SIGTERM) and removal of the data folder; the exit, if it was running. */
  stop(): Promise<NodeExit | undefined>
  /** The last lines the current process printed. */
  output(): string
}

export type TestNodeOptions = {
  id?: string
  shards?: number
  /** The port to serve on; the default 0 picks a free one on the first start. */
  port?: number
  /** The other nodes of a mesh, `b=http://127.0.0.1:8788,...` (NodeSpec.peers). */
  peers?: string
  /** Epoch checkpoints of shards and markets (NodeSpec.checkpointEveryMs); unset: none. */
  checkpointEveryMs?: number
  /** Mesh-wide secrets; random ones of this node's own when unset. */
  secrets?: {
    adminToken: string
    keySecret: string
    meshSecret?: string
    operatorSigningKey?: string
    /** NODE_PUBLIC_KEYS: every mesh node's pinned key; unset, unpinned. */
    nodePublicKeys?: string
  }
}

const running = new Set<NodeProcess>()

// However the test run ends, no node (or workerd) outlives it.
process.once('exit', () => running.forEach((node) => signalGroup(node.pid, 'SIGKILL')))

async function spawnReady(spec: NodeSpec): Promise<{ node: NodeProcess; url: string; ms: number }> {
  const startedAt = performance.now()
  const node = spawnNode(spec, { readyTimeoutMs: 90_000 })
  running.add(node)
  void node.exited.then(() => running.delete(node))
  try {
    const url = await node.ready
    return { node, url, ms: performance.now() - startedAt }
  } catch (error) {
    await node.kill()
    throw error
  }
}

/** Starts a node; the first start picks a free port (port 0) that every restart then reuses. */
export async function startTestNode(
  options: TestNodeOptions = {},
): Promise<TestNode & { coldStartMs: number }> {
  const id = options.id ?? 'a'
  const root = await mkdtemp(join(tmpdir(), 'clearmesh-node-'))
  const adminToken = options.secrets?.adminToken ?? `admin-${randomBytes(12).toString('hex')}`
  const spec: NodeSpec = {
    id,
    port: options.port ?? 0,
    data: join(root, id),
    env: {
      CLEARMESH_ADMIN_TOKEN: adminToken,
      CLEARMESH_KEY_SECRET: options.secrets?.keySecret ?? `keys-${randomBytes(12).toString('hex')}`,
      ...(options.secrets?.meshSecret !== undefined && {
        CLEARMESH_MESH_SECRET: options.secrets.meshSecret,
      }),
      ...(options.secrets?.operatorSigningKey !== undefined && {
        CLEARMESH_OPERATOR_SIGNING_KEY: options.secrets.operatorSigningKey,
      }),
      ...(options.secrets?.nodePublicKeys !== undefined && {
        CLEARMESH_NODE_PUBLIC_KEYS: options.secrets.nodePublicKeys,
      }),
    },
  }
  if (options.shards !== undefined) spec.shards = options.shards
  if (options.peers !== undefined) spec.peers = options.peers
  if (options.checkpointEveryMs !== undefined) spec.checkpointEveryMs = options.checkpointEveryMs
  let current = await spawnReady(spec)
  spec.port = Number(new URL(current.url).port)

  return {
    id,
    dataDir: spec.data,
    adminToken,
    coldStartMs: current.ms,
    url: () => current.url,
    client: () => apiClient(fetch, current.url, adminToken),
    output: () => current.node.output(),
    async kill() {
      await current.node.kill()
      if (groupAlive(current.node.pid)) throw new Error(`node ${id} left a live process behind`)
    },
    async restart() {
      if (groupAlive(current.node.pid)) throw new Error(`node ${id} is still running`)
      current = await spawnReady(spec)
      return current.ms
    },
    pid: () => current.node.pid,
    async stop() {
      const exit = groupAlive(current.node.pid) ? await current.node.stop() : undefined
      await rm(root, { recursive: true, force: true })
      return exit
    },
  }
}
