// The node's configuration, read once from the Worker's bindings and checked before it serves.

import * as clock from './clock'
import {
  clockSkewMsMax,
  inFlightMaxDefault,
  keyRateBurstDefault,
  keyRateMax,
  keyRatePerSecondDefault,
  failoverTimeoutMsDefault,
  leaseDurationMsDefault,
  leaseDurationMsMin,
  markMaxAgeMsDefault,
  shardCountDefault,
  shardCountMax,
  signatureWindowMsDefault,
} from './constants'
import { grantPolicies, settlementNodeOf, type GrantPolicy } from './domain/escrow'
import type { Instrument } from './domain/instrument'
import type { Rate } from './domain/rate-limit'
import { readCatalog } from './instruments'
import { createHmac } from 'node:crypto'
import { publicKeyOfSigningKey, signingKeyOfSeed } from './state/operator-signature'
import type { MarketReplica } from './replica/market-replica'
import type { ShardReplica } from './replica/shard-replica'

export type Env = {
  SHARD: DurableObjectNamespace<ShardReplica>
  MARKET: DurableObjectNamespace<MarketReplica>
  /** This node's id in the mesh, e.g. "a". */
  NODE_ID: string
  /** Number of shard documents (must be equal on every node of a mesh). */
  SHARD_COUNT?: string
  /** Bearer token of the operator's admin API. */
  ADMIN_TOKEN: string
  /** Mesh-wide secret that API key secrets are derived from, so none is ever stored. */
  KEY_SECRET: string
  /** Receive window of signed requests, in milliseconds. */
  SIGNATURE_WINDOW_MS?: string
  /** JSON array of instrument specs; the built-in catalog when unset. */
  INSTRUMENTS?: string
  /** A mark older than this is stale, and reads say so. */
  MARK_MAX_AGE_MS?: string
  /** The other nodes of the mesh: `b=http://127.0.0.1:8788,c=http://127.0.0.1:8789`. */
  PEERS?: string
  /** Secret every node of the mesh holds; peers prove it to open a link. */
  MESH_SECRET?: string
  /** Durability of a withdrawal that does not ask for one: `local` (default) or `quorum`. */
  WITHDRAWAL_DURABILITY?: string
  /** What a node grants a peer asking for escrow rights: `demand` (default), `shortfall` or `all`. */
  RIGHTS_GRANT_POLICY?: string
  /** Settlement epoch length; `0` (default) settles only when the operator asks. */
  SETTLEMENT_INTERVAL_MS?: string
  /** How long a matcher lease lasts (default 3 s), and the silence before failover (5 s). */
  LEASE_DURATION_MS?: string
  FAILOVER_TIMEOUT_MS?: string
  /** Test only (design.md F9): ms added to this node's clock, src/clock.ts; unset in production. */
  CLOCK_SKEW_MS?: string
  /** Requests per second and at once of an API key that carries no rate of its own. */
  KEY_RATE_PER_SECOND?: string
  KEY_RATE_BURST?: string
  /** Requests served at once past which this node sheds load (503 `overloaded`). */
  IN_FLIGHT_MAX?: string
  /** The operator's Ed25519 signing key (base64url PKCS#8), on nodes that take admin writes. */
  OPERATOR_SIGNING_KEY?: string
  /** The operator's Ed25519 public key (base64url, raw 32 bytes); every node needs it (or the
   * signing key, which it is derived from). */
  OPERATOR_PUBLIC_KEY?: string
  /** This node's own Ed25519 signing key (base64url PKCS#8): it signs the epoch checkpoints it
   * acknowledges. Unset, it is derived from KEY_SECRET and NODE_ID (local meshes only: every
   * node holding KEY_SECRET could then sign for every other). */
  NODE_SIGNING_KEY?: string
  /** Every mesh node's Ed25519 public key, this one's too: `a=<base64url>,b=<base64url>`. Set, an
   * acknowledgement a peer sends in a node's name is taken only under that node's key; unset, under
   * the key it carries (unpinned: a node holding the mesh secret could sign in another's name). */
  NODE_PUBLIC_KEYS?: string
  /** Epoch checkpoint length of shard documents; `0` (default) writes none. */
  CHECKPOINT_INTERVAL_MS?: string
}

/**
 * How durable a write is before it is answered: `local`, persisted on the node that took it;
 * `quorum`, persisted on a majority of the mesh's nodes.
 */
export type Durability = 'local' | 'quorum'
export const durabilities: readonly Durability[] = ['local', 'quorum']

export type NodeConfig = {
  nodeId: string
  shardCount: number
  adminToken: string
  keySecret: string
  signatureWindowMs: number
  instruments: Map<string, Instrument>
  markMaxAgeMs: number
  /** Peer node id → base URL; empty for a single node. */
  peers: Map<string, string>
  meshSecret: string
  withdrawalDurability: Durability
  rightsGrantPolicy: GrantPolicy
  /** Settlement epoch length in ms; 0 when epochs run only on the operator's request. */
  settlementIntervalMs: number
  /** The node that may spend an account's realized gains (escrow.ts): the smallest node id. */
  settlementNode: string
  /** Matcher leases (domain/lease.ts): a grant's length, and the silence before failover. */
  leaseDurationMs: number
  failoverTimeoutMs: number
  /** The rate of API keys that carry none of their own. */
  keyRate: Rate
  inFlightMax: number
  /** Signs deposits and breakers; null on a node that only verifies them. */
  operatorSigningKey: string | null
  /** Verifies every deposit and breaker a peer sends. */
  operatorPublicKey: string
  /** Signs the checkpoints this node acknowledges; its public key is in `/v1/mesh/status`. */
  nodeSigningKey: string
  nodePublicKey: string
  /** Node id → public key of every mesh node, pinned by NODE_PUBLIC_KEYS; null when unpinned. */
  nodePublicKeys: ReadonlyMap<string, string> | null
  /** Epoch length of shard checkpoints in ms; 0 when none are written. */
  checkpointIntervalMs: number
}

const secretLengthMin = 16
const nodeIdPattern = /^[a-z0-9][a-z0-9-]{0,31}$/
/** An Ed25519 public key as the config holds it: base64url of its raw 32 bytes. */
const publicKeyPattern = /^[A-Za-z0-9_-]{43}$/

export function readConfig(env: Env): NodeConfig {
  const shardCount = Number(env.SHARD_COUNT ?? shardCountDefault)
  const signatureWindowMs = Number(env.SIGNATURE_WINDOW_MS ?? signatureWindowMsDefault)
  const markMaxAgeMs = Number(env.MARK_MAX_AGE_MS ?? markMaxAgeMsDefault)
  if (!nodeIdPattern.test(env.NODE_ID ?? '')) {
    throw new Error('NODE_ID must be 1-32 lowercase letters, digits or dashes')
  }
  if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > shardCountMax) {
    throw new Error(`SHARD_COUNT must be an integer from 1 to ${shardCountMax}`)
  }
  if (!Number.isInteger(signatureWindowMs) || signatureWindowMs < 100) {
    throw new Error('SIGNATURE_WINDOW_MS must be an integer of at least 100')
  }
  if (!Number.isInteger(markMaxAgeMs) || markMaxAgeMs < 1) {
    throw new Error('MARK_MAX_AGE_MS must be a positive integer')
  }
  const withdrawalDurability = env.WITHDRAWAL_DURABILITY ?? 'local'
  if (!durabilities.includes(withdrawalDurability as Durability)) {
    throw new Error('WITHDRAWAL_DURABILITY must be "local" or "quorum"')
  }
  const rightsGrantPolicy = env.RIGHTS_GRANT_POLICY ?? 'demand'
  if (!grantPolicies.includes(rightsGrantPolicy as GrantPolicy)) {
    throw new Error(`RIGHTS_GRANT_POLICY must be one of ${grantPolicies.join(', ')}`)
  }
  const settlementIntervalMs = Number(env.SETTLEMENT_INTERVAL_MS ?? 0)
  if (!Number.isInteger(settlementIntervalMs) || settlementIntervalMs < 0) {
    throw new Error('SETTLEMENT_INTERVAL_MS must be a whole number of milliseconds')
  }
  const checkpointIntervalMs = Number(env.CHECKPOINT_INTERVAL_MS ?? 0)
  if (!Number.isInteger(checkpointIntervalMs) || checkpointIntervalMs < 0) {
    throw new Error('CHECKPOINT_INTERVAL_MS must be a whole number of milliseconds')
  }
  const leaseDurationMs = Number(env.LEASE_DURATION_MS ?? leaseDurationMsDefault)
  if (!Number.isInteger(leaseDurationMs) || leaseDurationMs < leaseDurationMsMin) {
    throw new Error(`LEASE_DURATION_MS must be an integer of at least ${leaseDurationMsMin}`)
  }
  const failoverTimeoutMs = Number(env.FAILOVER_TIMEOUT_MS ?? failoverTimeoutMsDefault)
  if (!Number.isInteger(failoverTimeoutMs) || failoverTimeoutMs < 1) {
    throw new Error('FAILOVER_TIMEOUT_MS must be a positive integer')
  }
  const clockSkewMs = Number(env.CLOCK_SKEW_MS ?? 0)
  if (!Number.isInteger(clockSkewMs) || Math.abs(clockSkewMs) > clockSkewMsMax) {
    throw new Error(
      `CLOCK_SKEW_MS must be a whole number of ms from -${clockSkewMsMax} to ${clockSkewMsMax}`,
    )
  }
  const keyRate = {
    perSecond: Number(env.KEY_RATE_PER_SECOND ?? keyRatePerSecondDefault),
    burst: Number(env.KEY_RATE_BURST ?? keyRateBurstDefault),
  }
  for (const value of [keyRate.perSecond, keyRate.burst]) {
    if (!Number.isInteger(value) || value < 1 || value > keyRateMax) {
      throw new Error(
        `KEY_RATE_PER_SECOND and KEY_RATE_BURST must be integers from 1 to ${keyRateMax}`,
      )
    }
  }
  const inFlightMax = Number(env.IN_FLIGHT_MAX ?? inFlightMaxDefault)
  if (!Number.isInteger(inFlightMax) || inFlightMax < 1) {
    throw new Error('IN_FLIGHT_MAX must be a positive integer')
  }
  const peers = readPeers(env.PEERS, env.NODE_ID)
  const operator = readOperatorKeys(env)
  const nodeKeys = readNodeKey(env)
  const nodePublicKeys = readNodePublicKeys(
    env.NODE_PUBLIC_KEYS,
    env.NODE_ID,
    peers,
    nodeKeys.nodePublicKey,
  )
  if (peers.size > 0 && (env.MESH_SECRET ?? '').length < secretLengthMin) {
    throw new Error(
      `MESH_SECRET must have at least ${secretLengthMin} characters when PEERS is set`,
    )
  }
  if ((env.ADMIN_TOKEN ?? '').length < secretLengthMin) {
    throw new Error(`ADMIN_TOKEN must have at least ${secretLengthMin} characters`)
  }
  if ((env.KEY_SECRET ?? '').length < secretLengthMin) {
    throw new Error(`KEY_SECRET must have at least ${secretLengthMin} characters`)
  }
  // Every entry point of an isolate reads the configuration first, so the clock is set before
  // anything reads it.
  clock.setSkew(clockSkewMs)
  return {
    nodeId: env.NODE_ID,
    shardCount,
    adminToken: env.ADMIN_TOKEN,
    keySecret: env.KEY_SECRET,
    signatureWindowMs,
    instruments: readCatalog(env.INSTRUMENTS),
    markMaxAgeMs,
    peers,
    meshSecret: env.MESH_SECRET ?? '',
    withdrawalDurability: withdrawalDurability as Durability,
    rightsGrantPolicy: rightsGrantPolicy as GrantPolicy,
    settlementIntervalMs,
    settlementNode: settlementNodeOf([env.NODE_ID, ...peers.keys()]),
    leaseDurationMs,
    failoverTimeoutMs,
    keyRate,
    inFlightMax,
    ...operator,
    ...nodeKeys,
    nodePublicKeys,
    checkpointIntervalMs,
  }
}

/** The signing key of a node given no NODE_SIGNING_KEY (local meshes: scripts pin its public key). */
export const derivedNodeSigningKey = (keySecret: string, nodeId: string): string =>
  signingKeyOfSeed(
    createHmac('sha256', keySecret).update(`clearmesh/node-key/v1/${nodeId}`).digest(),
  )

/** This node's checkpoint signing key: configured, or derived from the key secret and node id. */
function readNodeKey(env: Env): Pick<NodeConfig, 'nodeSigningKey' | 'nodePublicKey'> {
  const signingKey = env.NODE_SIGNING_KEY || derivedNodeSigningKey(env.KEY_SECRET, env.NODE_ID)
  try {
    return { nodeSigningKey: signingKey, nodePublicKey: publicKeyOfSigningKey(signingKey) }
  } catch (error) {
    throw new Error(`NODE_SIGNING_KEY is not a base64url PKCS#8 Ed25519 key: ${String(error)}`)
  }
}

/**
 * Parses NODE_PUBLIC_KEYS (`id=key,id=key`): unset or empty, null (unpinned); else it names exactly
 * this node and its peers, and this node's entry is its own key, so a mistyped list fails here.
 */
export function readNodePublicKeys(
  text: string | undefined,
  self: string,
  peers: ReadonlyMap<string, string>,
  ownPublicKey: string,
): Map<string, string> | null {
  const entries = (text ?? '').split(',').filter((part) => part.trim() !== '')
  if (entries.length === 0) return null
  const keys = new Map<string, string>()
  for (const entry of entries) {
    const [id, key, ...rest] = entry.trim().split('=')
    if (id === undefined || key === undefined || rest.length > 0 || !nodeIdPattern.test(id)) {
      throw new Error(`NODE_PUBLIC_KEYS entry "${entry}" is not id=key`)
    }
    if (!publicKeyPattern.test(key)) {
      throw new Error(`NODE_PUBLIC_KEYS key of ${id} is not base64url of 32 bytes`)
    }
    if (keys.has(id)) throw new Error(`NODE_PUBLIC_KEYS names ${id} twice`)
    keys.set(id, key)
  }
  const members = [self, ...peers.keys()]
  const missing = members.filter((id) => !keys.has(id))
  const strangers = [...keys.keys()].filter((id) => !members.includes(id))
  if (missing.length > 0 || strangers.length > 0) {
    throw new Error(
      `NODE_PUBLIC_KEYS must name this node and its peers, exactly: ` +
        `missing [${missing.join(', ')}], not in the mesh [${strangers.join(', ')}]`,
    )
  }
  if (keys.get(self) !== ownPublicKey) {
    throw new Error(`NODE_PUBLIC_KEYS pins another key for ${self} than its NODE_SIGNING_KEY's`)
  }
  return keys
}

/** The operator's keys: the public one given or derived from the signing key, and consistent. */
function readOperatorKeys(env: Env): Pick<NodeConfig, 'operatorSigningKey' | 'operatorPublicKey'> {
  const signingKey = env.OPERATOR_SIGNING_KEY || null
  let derived: string | undefined
  try {
    derived = signingKey === null ? undefined : publicKeyOfSigningKey(signingKey)
  } catch (error) {
    throw new Error(`OPERATOR_SIGNING_KEY is not a base64url PKCS#8 Ed25519 key: ${String(error)}`)
  }
  const publicKey = env.OPERATOR_PUBLIC_KEY || derived
  if (publicKey === undefined || !publicKeyPattern.test(publicKey)) {
    throw new Error(
      'OPERATOR_PUBLIC_KEY (base64url of 32 bytes) or OPERATOR_SIGNING_KEY is required',
    )
  }
  if (derived !== undefined && derived !== publicKey) {
    throw new Error('OPERATOR_SIGNING_KEY is not the key of OPERATOR_PUBLIC_KEY')
  }
  return { operatorSigningKey: signingKey, operatorPublicKey: publicKey }
}

/** Parses `id=url,id=url`; a peer is another node, reached at an http(s) URL. */
export function readPeers(text: string | undefined, self: string): Map<string, string> {
  const peers = new Map<string, string>()
  for (const entry of (text ?? '').split(',').filter((part) => part.trim() !== '')) {
    const [id, url, ...rest] = entry.trim().split('=')
    if (id === undefined || url === undefined || rest.length > 0 || !nodeIdPattern.test(id)) {
      throw new Error(`PEERS entry "${entry}" is not id=url`)
    }
    if (!/^https?:\/\/[^\s/]+$/.test(url))
      throw new Error(`PEERS url "${url}" is not http(s)://host[:port]`)
    if (id === self || peers.has(id)) throw new Error(`PEERS names ${id} twice or names this node`)
    peers.set(id, url)
  }
  return peers
}
