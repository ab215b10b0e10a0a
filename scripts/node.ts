// Runs one clearmesh node locally: the Worker bundled as wrangler would bundle it, served by
// miniflare (workerd) with its Durable Objects persisted under the node's data folder.
//
//   npm run node -- --id a --port 8787 --data .mesh/a [--peers b=http://127.0.0.1:8788,...]
//                   [--shards 16] [--host 127.0.0.1] [--clock-skew-ms 0] [--grant-policy shortfall]
//
// Prints `clearmesh node <id> listening on http://<host>:<port>` once the node answers, which is
// what scripts/start.ts and the node tests wait for.

import { mkdir } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Log, LogLevel, Miniflare } from 'miniflare'
import { clockSkewMsMax, shardCountMax } from '../src/constants'
import { grantPolicies, type GrantPolicy } from '../src/domain/escrow'
import { bundleWorker } from './lib/bundle'
import { integerOption, parseOptions, runMain, UsageError } from './lib/cli'
import { readyLine, adminTokenLine } from './lib/node-process'
import { newOperatorSigningKey, resolveSecret, type Secret } from './lib/secrets'
import { loadWorkerConfig, type WorkerConfig } from './lib/worker-config'

const repoRoot = fileURLToPath(new URL('..', import.meta.url))

const usage = `usage: npm run node -- --id <id> --port <port> --data <folder> [--peers <list>] [--shards <n>] [--host <host>] [--settle-every <ms>] [--checkpoint-every <ms>] [--clock-skew-ms <ms>] [--grant-policy <policy>]
  --id      node id: 1-32 lowercase letters, digits or dashes, e.g. a
  --port    TCP port to serve on (0 picks a free one)
  --data    folder that keeps this node's Durable Objects and development secrets
  --peers   the other nodes of the mesh, e.g. b=http://127.0.0.1:8788,c=http://127.0.0.1:8789
  --shards  number of shard documents, equal on every node of a mesh (default: wrangler.toml)
  --host    address to listen on (default 127.0.0.1)
  --settle-every  settlement epoch length in ms on the instruments this node is home to
  --checkpoint-every  epoch checkpoint length in ms of the shard and market documents (0 or unset: none)
            (default 0: settle only on POST /v1/admin/settlements)
  --grant-policy  what a node grants a peer that asks for escrow rights: ${grantPolicies.join(', ')}
            (default demand; RIGHTS_GRANT_POLICY)
  --clock-skew-ms  test only: ms added to the node's clock, -${clockSkewMsMax} to ${clockSkewMsMax}
            (default 0), to see what a node whose clock is off does (the chaos harness's skew)
env: CLEARMESH_ADMIN_TOKEN, CLEARMESH_KEY_SECRET, CLEARMESH_MESH_SECRET,
     CLEARMESH_OPERATOR_SIGNING_KEY (generated into the data folder when unset; every node of a
     mesh needs the same key and mesh secrets and operator key), CLEARMESH_OPERATOR_PUBLIC_KEY
     (alone, without a signing key: the node verifies deposits and breakers but takes none),
     CLEARMESH_NODE_PUBLIC_KEYS (every mesh node's key, a=<base64url>,b=...: NODE_PUBLIC_KEYS;
     unset, peers' checkpoint acknowledgements are checked against the key they carry)`

type NodeArgs = {
  id: string
  port: number
  data: string
  host: string
  shards: number | undefined
  peers: string
  settleEveryMs: number | undefined
  checkpointEveryMs: number | undefined
  clockSkewMs: number
  grantPolicy: GrantPolicy | undefined
}

function parseNodeArgs(argv: string[]): NodeArgs {
  const {
    id,
    port,
    data,
    shards,
    host,
    peers,
    'settle-every': settleEvery,
    'checkpoint-every': checkpointEvery,
    'clock-skew-ms': clockSkew,
    'grant-policy': grantPolicy,
  } = parseOptions(argv, {
    id: { type: 'string' },
    port: { type: 'string' },
    data: { type: 'string' },
    shards: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    peers: { type: 'string', default: '' },
    'settle-every': { type: 'string' },
    'checkpoint-every': { type: 'string' },
    'clock-skew-ms': { type: 'string', default: '0' },
    'grant-policy': { type: 'string' },
  })
  if (id === undefined || port === undefined || data === undefined) {
    throw new UsageError('--id, --port and --data are required')
  }
  // Same rule as the Worker's NODE_ID check, so a bad id fails here and not at the first request.
  if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(id)) {
    throw new UsageError('--id must be 1-32 lowercase letters, digits or dashes')
  }
  if (grantPolicy !== undefined && !grantPolicies.includes(grantPolicy as GrantPolicy)) {
    throw new UsageError(`--grant-policy must be ${grantPolicies.join(' or ')}`)
  }
  return {
    id,
    port: integerOption('--port', port, 0, 65_535),
    data: resolve(data),
    host,
    shards: shards === undefined ? undefined : integerOption('--shards', shards, 1, shardCountMax),
    peers,
    settleEveryMs:
      settleEvery === undefined
        ? undefined
        : integerOption('--settle-every', settleEvery, 0, 86_400_000),
    checkpointEveryMs:
      checkpointEvery === undefined
        ? undefined
        : integerOption('--checkpoint-every', checkpointEvery, 0, 86_400_000),
    clockSkewMs: integerOption('--clock-skew-ms', clockSkew, -clockSkewMsMax, clockSkewMsMax),
    grantPolicy: grantPolicy as GrantPolicy | undefined,
  }
}

/** The bundle lives beside the data folder, not in it: the data folder holds only state. */
const bundlePath = (data: string) => join(dirname(data), '.build', basename(data), 'worker.mjs')

function miniflareOptions(
  args: NodeArgs,
  config: WorkerConfig,
  scriptPath: string,
  secrets: {
    adminToken: string
    keySecret: string
    meshSecret: string
    operatorSigningKey: string | undefined
    operatorPublicKey: string | undefined
    nodePublicKeys: string | undefined
  },
) {
  return {
    name: config.name,
    modules: true,
    scriptPath,
    // Module names are paths relative to this root; workerd refuses names that climb out of it.
    modulesRoot: dirname(scriptPath),
    compatibilityDate: config.compatibilityDate,
    compatibilityFlags: config.compatibilityFlags,
    durableObjects: config.durableObjects,
    durableObjectsPersist: args.data,
    bindings: {
      ...config.vars,
      NODE_ID: args.id,
      ...(args.shards !== undefined && { SHARD_COUNT: String(args.shards) }),
      ADMIN_TOKEN: secrets.adminToken,
      KEY_SECRET: secrets.keySecret,
      MESH_SECRET: secrets.meshSecret,
      ...(secrets.operatorSigningKey !== undefined && {
        OPERATOR_SIGNING_KEY: secrets.operatorSigningKey,
      }),
      ...(secrets.operatorPublicKey !== undefined && {
        OPERATOR_PUBLIC_KEY: secrets.operatorPublicKey,
      }),
      ...(secrets.nodePublicKeys !== undefined && { NODE_PUBLIC_KEYS: secrets.nodePublicKeys }),
      PEERS: args.peers,
      ...(args.settleEveryMs !== undefined && {
        SETTLEMENT_INTERVAL_MS: String(args.settleEveryMs),
      }),
      // Off unless asked, whatever wrangler.toml (a deployed node's defaults) says.
      CHECKPOINT_INTERVAL_MS: String(args.checkpointEveryMs ?? 0),
      ...(args.clockSkewMs !== 0 && { CLOCK_SKEW_MS: String(args.clockSkewMs) }),
      ...(args.grantPolicy !== undefined && { RIGHTS_GRANT_POLICY: args.grantPolicy }),
    },
    host: args.host,
    port: args.port,
    // Never fetch Request.cf from the internet: a node must start offline, and fast.
    cf: false,
    log: new Log(LogLevel.WARN),
  }
}

/**
 * Miniflare installs SIGINT/SIGTERM handlers that exit with 128+signal before an async dispose
 * could run; remove the ones it added so this runner decides how to stop. Its `exit` hook stays,
 * so workerd is still killed if this process exits any other way.
 */
function withoutMiniflareSignalHandlers<T>(create: () => T): T {
  const signals = ['SIGINT', 'SIGTERM'] as const
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]))
  const created = create()
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener)
    }
  }
  return created
}

/** Resolves with the exit code once SIGINT or SIGTERM arrived and workerd is disposed. */
function stopOnSignals(mf: Miniflare): Promise<number> & { signalled: boolean } {
  let resolveStopped!: (code: number) => void
  const stopped = Object.assign(new Promise<number>((resolve) => (resolveStopped = resolve)), {
    signalled: false,
  })
  const stop = (signal: NodeJS.Signals) => {
    // A second signal means "now": do not wait for dispose again.
    if (stopped.signalled) process.exit(128 + (signal === 'SIGINT' ? 2 : 15))
    stopped.signalled = true
    mf.dispose().then(
      () => resolveStopped(0),
      (error: unknown) => {
        console.error(`clearmesh node: dispose failed: ${String(error)}`)
        resolveStopped(1)
      },
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  return stopped
}

/** Serving means the Worker answers through the socket with a valid config, not just a bound port. */
async function checkServing(url: string, id: string): Promise<void> {
  const response = await fetch(new URL('/health', url), { signal: AbortSignal.timeout(30_000) })
  const body = (await response.json().catch(() => null)) as { node?: string } | null
  if (response.status !== 200 || body?.node !== id) {
    throw new Error(`health check answered ${response.status} ${JSON.stringify(body)}`)
  }
}

/**
 * Replicas start their mesh links when they first load; reading the mesh status loads every one,
 * so a restarted node catches up from its peers without waiting for a client.
 */
async function wakeReplicas(url: string, adminToken: string): Promise<void> {
  const response = await fetch(new URL('/v1/mesh/status', url), {
    headers: { authorization: `Bearer ${adminToken}` },
    signal: AbortSignal.timeout(30_000),
  })
  if (response.status !== 200) throw new Error(`mesh status answered ${response.status}`)
}

/** Said once, on the start that generated the secret: where it is kept from now on. */
const generatedNote = (id: string, what: string, secret: Secret) =>
  secret.source === 'generated'
    ? [`clearmesh node ${id} ${what} generated into ${secret.file}`]
    : []

/** Waits until the node serves, then prints the secrets' origin and the ready line. */
async function announceWhenServing(
  mf: Miniflare,
  args: NodeArgs,
  adminToken: Secret,
  generated: { what: string; secret: Secret | undefined }[],
): Promise<void> {
  const ready = await mf.ready
  const url = `http://${args.host.includes(':') ? `[${args.host}]` : args.host}:${ready.port}`
  await checkServing(ready.href, args.id)
  await wakeReplicas(ready.href, adminToken.value)
  console.log(adminTokenLine(args.id, adminToken.source === 'env' ? undefined : adminToken.value))
  for (const { what, secret } of [{ what: 'admin token', secret: adminToken }, ...generated]) {
    if (secret !== undefined)
      for (const note of generatedNote(args.id, what, secret)) console.log(note)
  }
  console.log(readyLine(args.id, url))
}

async function main(argv: string[]): Promise<number> {
  const args = parseNodeArgs(argv)
  await mkdir(args.data, { recursive: true })
  const adminToken = await resolveSecret(
    process.env.CLEARMESH_ADMIN_TOKEN,
    join(args.data, 'admin-token'),
  )
  const keySecret = await resolveSecret(
    process.env.CLEARMESH_KEY_SECRET,
    join(args.data, 'key-secret'),
  )
  const meshSecret = await resolveSecret(
    process.env.CLEARMESH_MESH_SECRET,
    join(args.data, 'mesh-secret'),
  )
  // Given only the operator's public key, a node verifies deposits and breakers and makes none.
  const operatorPublicKey = process.env.CLEARMESH_OPERATOR_PUBLIC_KEY || undefined
  const operatorSigningKey =
    operatorPublicKey !== undefined && !process.env.CLEARMESH_OPERATOR_SIGNING_KEY
      ? undefined
      : await resolveSecret(
          process.env.CLEARMESH_OPERATOR_SIGNING_KEY,
          join(args.data, 'operator-signing-key'),
          newOperatorSigningKey,
        )
  const config = await loadWorkerConfig(
    join(repoRoot, 'wrangler.toml'),
    join(repoRoot, 'node_modules', '.cache', 'clearmesh'),
  )
  const scriptPath = bundlePath(args.data)
  await bundleWorker(config.main, scriptPath)
  const options = miniflareOptions(args, config, scriptPath, {
    adminToken: adminToken.value,
    keySecret: keySecret.value,
    meshSecret: meshSecret.value,
    operatorSigningKey: operatorSigningKey?.value,
    operatorPublicKey,
    nodePublicKeys: process.env.CLEARMESH_NODE_PUBLIC_KEYS || undefined,
  })
  const mf = withoutMiniflareSignalHandlers(() => new Miniflare(options))
  const stopped = stopOnSignals(mf)
  // A signal during start-up disposes miniflare and makes `ready` fail: that is a clean stop.
  const generated = [
    { what: 'key secret', secret: keySecret },
    { what: 'operator signing key', secret: operatorSigningKey },
  ]
  return announceWhenServing(mf, args, adminToken, generated).then(
    () => stopped,
    async (error: unknown) => {
      if (stopped.signalled) return stopped
      await mf.dispose().catch(() => undefined)
      throw error
    },
  )
}

runMain('clearmesh node', usage, main)
