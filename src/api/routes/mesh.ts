// The mesh's two HTTP faces: the sync endpoint peers and y-websocket followers open (a WebSocket
// per document, admitted by a mesh token), and the operator's view of links and digests.

import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import * as clock from '../../clock'
import type { NodeConfig } from '../../config'
import * as liveness from '../../domain/liveness'
import { heartbeatTiming } from '../../mesh/replication'
import { marketStub, nodeReplicas, shardStub } from '../../replica/addressing'
import { peerHeader } from '../../replica/replica-mesh'
import type { MeshStatus as ReplicaMeshStatus } from '../../replica/shard-replica'
import type { Finding as FindingEntry } from '../../state/shard-doc'
import { ApiError } from '../api-error'
import type { AppEnv } from '../app-env'
import { adminAuth } from '../middleware/admin-auth'
import { verifiedPeer } from '../middleware/mesh-peer'
import { createRouter, errorsOf, json } from '../router'
import { ShardStatus } from './admin-shards'

/** A document's link to one peer: up (with traffic and how far apart the two are) or down. */
const MeshLink = z
  .object({
    peer: z.string(),
    state: z.enum(['up', 'down']),
    role: z.string().optional(),
    direction: z.enum(['in', 'out']).optional(),
    openedAt: z.number().int().optional(),
    lastHeardAt: z.number().int().optional(),
    bytesIn: z.number().int().optional(),
    bytesOut: z.number().int().optional(),
    updatesIn: z.number().int().optional(),
    updatesOut: z.number().int().optional(),
    unacknowledged: z.number().int().optional(),
    behind: z.number().int().optional().openapi({
      description: "clock units the peer holds that this replica lacks, by the peer's last word",
    }),
    ahead: z.number().int().optional().openapi({
      description: "clock units this replica holds that the peer lacks, by the peer's last word",
    }),
    reconnects: z.number().int().optional(),
    prompted: z.number().int().optional(),
    lastError: z.string().nullable().optional(),
  })
  .openapi('MeshLink')

/** What the reconciler or a repair found in a document (an invariant violation, a merged copy). */
const Finding = z
  .object({
    id: z.string(),
    kind: z.enum(['merged_copy', 'violation', 'repair', 'forged_entry', 'checkpoint_mismatch']),
    invariant: z.string(),
    accountId: z.string().nullable(),
    message: z.string(),
    evidence: z.unknown(),
    ts: z.number().int(),
    node: z.string(),
  })
  .openapi('Finding')

export const MeshStatus = z
  .object({
    node: z.string(),
    nodeKey: z.string().openapi({
      description: "this node's Ed25519 public key (base64url): it signs epoch checkpoints",
    }),
    peerKeysPinned: z.boolean().openapi({
      description:
        "whether NODE_PUBLIC_KEYS pins every node's key: a peer's checkpoint acknowledgement is " +
        "then taken only under its node's pinned key; else under the key it carries (unpinned)",
    }),
    peers: z.array(z.string()),
    liveness: z
      .array(
        z.object({
          peer: z.string(),
          lastHeardAt: z.number().nullable(),
          state: z.enum(['alive', 'suspect', 'dead']),
        }),
      )
      .openapi({ description: 'each peer node as its heartbeats say: alive, suspect or dead' }),
    documents: z.array(
      ShardStatus.extend({ links: z.array(MeshLink), findings: z.array(Finding) }),
    ),
  })
  .openapi('MeshStatus')

/** The replica of document `kind/name` on this node, or undefined when there is none. */
export function replicaOf(config: NodeConfig, env: AppEnv['Bindings'], kind: string, name: string) {
  if (kind === 'shard' && /^[0-9]{1,3}$/.test(name) && Number(name) < config.shardCount) {
    return shardStub(env, config, Number(name))
  }
  if (kind === 'market' && config.instruments.has(name)) return marketStub(env, config, name)
  return undefined
}

async function openSync(c: Context<AppEnv>) {
  const { kind, name } = c.req.param() as { kind: string; name: string }
  const replica = replicaOf(c.var.config, c.env, kind, name)
  if (replica === undefined) throw new ApiError(404, 'not_found', `no document ${kind}/${name}`)
  if (c.req.header('Upgrade') !== 'websocket') {
    throw new ApiError(426, 'upgrade_required', 'the sync endpoint speaks WebSocket')
  }
  const peer = await verifiedPeer(c, c.req.query('token') ?? '', `${kind}/${name}`)
  const headers = new Headers(c.req.raw.headers)
  headers.set(peerHeader, `${peer.role}.${peer.id}`)
  return replica.fetch(new Request(c.req.raw, { headers }))
}

const meshStatus = createRoute({
  method: 'get',
  path: '/v1/mesh/status',
  tags: ['admin'],
  summary: "This node's documents: digests, pending structs, and each peer link's state and lag",
  security: [{ adminToken: [] }],
  middleware: [adminAuth()] as const,
  responses: {
    200: json(MeshStatus, 'status'),
    ...errorsOf(401),
  },
})

export const meshRoutes = createRouter()
meshRoutes.get('/v1/mesh/sync/:kind/:name', openSync)
meshRoutes.openapi(meshStatus, async (c) => {
  const { config } = c.var
  const replicas = nodeReplicas(c.env, config)
  const documents = await Promise.all(
    replicas.map(
      ({ stub }) => stub.meshStatus() as Promise<ReplicaMeshStatus & { findings: FindingEntry[] }>,
    ),
  )
  // Each replica hears its peers on its own links; the node heard a peer if any of them did.
  const peerLiveness = liveness.merge(
    documents.map((document) => document.liveness),
    clock.now(),
    heartbeatTiming,
  )
  return c.json(
    {
      node: config.nodeId,
      nodeKey: config.nodePublicKey,
      peerKeysPinned: config.nodePublicKeys !== null,
      peers: [...config.peers.keys()],
      liveness: peerLiveness,
      documents,
    },
    200,
  )
})
