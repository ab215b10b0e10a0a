// Operator view of this node's shard replicas: storage, digests, damage and repair; forced
// compaction; and epoch checkpoints (their state, and a step taken now instead of on the alarm).

import { createRoute, z } from '@hono/zod-openapi'
import type { Env, NodeConfig } from '../../config'
import { ApiError } from '../api-error'
import { shardStub } from '../../replica/addressing'
import { createRouter, errorsOf, json } from '../router'

const security = [{ adminToken: [] }]

export const Damage = z.object({
  where: z.string(),
  reason: z.string(),
  seq: z.number().optional(),
})

export const ShardStatus = z
  .object({
    shard: z.string(),
    damage: Damage.nullable(),
    repair: z
      .object({
        state: z.enum(['repairing', 'repaired']),
        startedAt: z.number(),
        finishedAt: z.number().nullable(),
        damage: Damage,
        peers: z.array(z.string()),
        peersNeeded: z.number(),
      })
      .nullable(),
    storage: z.object({
      logRows: z.number(),
      logBytes: z.number(),
      lastSeq: z.number(),
      snapshot: z
        .object({
          generation: z.number(),
          uptoSeq: z.number(),
          chunkCount: z.number(),
          bytes: z.number(),
          checksum: z.string(),
        })
        .nullable(),
    }),
    stateVectorDigest: z.string().nullable(),
    contentDigest: z.string().nullable(),
    pending: z.boolean(),
  })
  .openapi('ShardStatus')

const listShards = createRoute({
  method: 'get',
  path: '/v1/admin/shards',
  tags: ['admin'],
  summary: 'Every shard replica of this node: storage, digests, pending structs, damage',
  security,
  responses: {
    200: json(z.object({ node: z.string(), shards: z.array(ShardStatus) }), 'status'),
    ...errorsOf(401),
  },
})

const shardParams = z.object({
  // A path parameter is a string: coercing it would make the document call it optional.
  shard: z
    .string()
    .regex(/^[0-9]{1,3}$/, 'shard must be a shard number')
    .transform(Number)
    .openapi({ type: 'integer', minimum: 0 }),
})

const compactShard = createRoute({
  method: 'post',
  path: '/v1/admin/shards/{shard}/compact',
  tags: ['admin'],
  summary: 'Fold the shard log into a snapshot now instead of on the next alarm',
  security,
  request: {
    params: shardParams,
  },
  responses: { 200: json(ShardStatus, 'compacted'), ...errorsOf(400, 401, 404) },
})

const Checkpoint = z
  .object({
    epoch: z.number(),
    root: z.string(),
    cutTime: z.number(),
    members: z.array(z.string()),
  })
  .passthrough()

const CheckpointState = z
  .object({
    inForce: Checkpoint.nullable(),
    latest: Checkpoint.nullable(),
    acks: z.array(z.object({ node: z.string(), root: z.string() }).passthrough()),
    step: z
      .object({
        written: z.number().nullable(),
        acknowledged: z.number().nullable(),
        mismatched: z.number().nullable(),
        compacted: z.number(),
      })
      .optional(),
  })
  .openapi('CheckpointState')

const getCheckpoint = createRoute({
  method: 'get',
  path: '/v1/admin/shards/{shard}/checkpoint',
  tags: ['admin'],
  summary: "The shard's epoch checkpoint in force, the latest written, and its acknowledgements",
  security,
  request: { params: shardParams },
  responses: { 200: json(CheckpointState, 'checkpoints'), ...errorsOf(400, 401, 404) },
})

const stepCheckpoint = createRoute({
  method: 'post',
  path: '/v1/admin/shards/{shard}/checkpoint',
  tags: ['admin'],
  summary:
    'Take the checkpoint steps now: cut `epoch` (on the writer, the settlement node), ' +
    'acknowledge the latest checkpoint, compact the one in force',
  security,
  request: {
    params: shardParams,
    body: {
      content: {
        'application/json': {
          schema: z.strictObject({ epoch: z.number().int().min(0).nullable() }),
        },
      },
    },
  },
  responses: { 200: json(CheckpointState, 'after the step'), ...errorsOf(400, 401, 404) },
})

const stubOf = (c: { var: { config: NodeConfig }; env: Env }, shard: number) => {
  if (shard >= c.var.config.shardCount) throw new ApiError(404, 'not_found', `no shard ${shard}`)
  return shardStub(c.env, c.var.config, shard)
}

export const adminShardRoutes = createRouter()
  .openapi(listShards, async (c) => {
    const { config } = c.var
    const shards = await Promise.all(
      Array.from({ length: config.shardCount }, (_, shard) =>
        shardStub(c.env, config, shard).status(),
      ),
    )
    return c.json({ node: config.nodeId, shards }, 200)
  })
  .openapi(compactShard, async (c) => {
    const stub = stubOf(c, c.req.valid('param').shard)
    await stub.compact()
    return c.json(await stub.status(), 200)
  })
  .openapi(getCheckpoint, async (c) => {
    const stub = stubOf(c, c.req.valid('param').shard)
    return c.json(await stub.checkpointState(), 200)
  })
  .openapi(stepCheckpoint, async (c) => {
    const stub = stubOf(c, c.req.valid('param').shard)
    const step = await stub.checkpoint(c.req.valid('json').epoch)
    return c.json({ ...(await stub.checkpointState()), step }, 200)
  })
