// How replicas are named and reached: the only place that knows. On one node every replica lives
// in this Worker's namespaces; names carry the node id so that replicas of several nodes can share
// one Cloudflare account.

import type { Env, NodeConfig } from '../config'
import { assert } from '../domain/assert'
import { shardOf } from '../state/shard-of'
import type { MarketReplica } from './market-replica'
import type { ShardReplica } from './shard-replica'

export const shardName = (nodeId: string, shard: number): string => `${nodeId}/shard/${shard}`
export const marketName = (nodeId: string, symbol: string): string => `${nodeId}/market/${symbol}`

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

export function marketStub(
  env: Env,
  config: NodeConfig,
  symbol: string,
): DurableObjectStub<MarketReplica> {
  assert(config.instruments.has(symbol), 'a market stub is for a listed instrument')
  return env.MARKET.get(env.MARKET.idFromName(marketName(config.nodeId, symbol)))
}

/** Every replica of this node, by name: each shard's, then each instrument's market. */
export function nodeReplicas(
  env: Env,
  config: NodeConfig,
): { name: string; stub: DurableObjectStub<ShardReplica> | DurableObjectStub<MarketReplica> }[] {
  return [
    ...Array.from({ length: config.shardCount }, (_, shard) => ({
      name: shardName(config.nodeId, shard),
      stub: shardStub(env, config, shard),
    })),
    ...[...config.instruments.keys()].map((symbol) => ({
      name: marketName(config.nodeId, symbol),
      stub: marketStub(env, config, symbol),
    })),
  ]
}
