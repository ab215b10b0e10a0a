// How the API reaches shard replicas: the only place that knows how a shard's Durable Object is
// named. On one node every shard lives in this Worker's namespace; the name carries the node id
// so that replicas of several nodes can share one Cloudflare account.

import type { Env, NodeConfig } from '../config'
import { assert } from '../domain/assert'
import type { ShardReplica } from '../replica/shard-replica'
import { shardOf } from '../state/shard-of'

export const shardName = (nodeId: string, shard: number): string => `${nodeId}/shard/${shard}`

export function shardStub(
  env: Env,
  config: NodeConfig,
  shard: number,
): DurableObjectStub<ShardReplica> {
  assert(shard >= 0 && shard < config.shardCount, 'shard index within the shard count')
  return env.SHARD.get(env.SHARD.idFromName(shardName(config.nodeId, shard)))
}

export const accountStub = (env: Env, config: NodeConfig, accountId: string) =>
  shardStub(env, config, shardOf(accountId, config.shardCount))
