// Starts the default local deployment: a mesh of `--nodes` nodes (default 3) named a, b, c... on
// ports 8787, 8788... with data under .mesh/<id>, each its own child process running
// scripts/node.ts with every other node as its peer.
// Prints every node's URL and the admin token; Ctrl-C stops every node and exits 0.
//
//   npm start [-- --nodes 3] [--port 8787] [--data .mesh] [--shards 16] [--host 127.0.0.1]

import { join, resolve } from 'node:path'
import { shardCountMax } from '../src/constants'
import { integerOption, parseOptions, runMain } from './lib/cli'
import { signalGroup, spawnNode, type NodeProcess, type NodeSpec } from './lib/node-process'
import { newOperatorSigningKey, pinnedNodeKeys, resolveSecret } from './lib/secrets'

const usage = `usage: npm start [-- --nodes <n>] [--port <first port>] [--data <root>] [--shards <n>] [--host <host>]
  --nodes   how many nodes, named a, b, c... (default 3)
  --port    port of the first node; node i serves on port + i (default 8787)
  --data    folder holding one data folder per node (default .mesh)
  --shards  number of shard documents (default: wrangler.toml)
  --host    address to listen on (default 127.0.0.1)`

type StartArgs = { nodes: number; port: number; data: string; shards?: number; host: string }

const nodeIds = 'abcdefghijklmnopqrstuvwxyz'

function parseStartArgs(argv: string[]): StartArgs {
  const values = parseOptions(argv, {
    nodes: { type: 'string', default: '3' },
    port: { type: 'string', default: '8787' },
    data: { type: 'string', default: '.mesh' },
    shards: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
  })
  const nodes = integerOption('--nodes', values.nodes, 1, nodeIds.length)
  const args: StartArgs = {
    nodes,
    port: integerOption('--port', values.port, 1, 65_535 - nodes + 1),
    data: resolve(values.data),
    host: values.host,
  }
  if (values.shards !== undefined)
    args.shards = integerOption('--shards', values.shards, 1, shardCountMax)
  return args
}

/**
 * The admin token, key secret, mesh secret and operator signing key are mesh-wide (an API key must
 * verify on every node, peers prove the mesh secret to each other, every node verifies the
 * operator's signature on deposits and breakers, and any node takes them locally), so they are resolved once and handed to every node. They live in the first node's data folder, where
 * `npm run node -- --id a --data .mesh/a` keeps them too, so both ways of starting agree.
 */
async function meshSecrets(firstNodeData: string) {
  const adminToken = await resolveSecret(
    process.env.CLEARMESH_ADMIN_TOKEN,
    join(firstNodeData, 'admin-token'),
  )
  const keySecret = await resolveSecret(
    process.env.CLEARMESH_KEY_SECRET,
    join(firstNodeData, 'key-secret'),
  )
  const meshSecret = await resolveSecret(
    process.env.CLEARMESH_MESH_SECRET,
    join(firstNodeData, 'mesh-secret'),
  )
  const operatorSigningKey = await resolveSecret(
    process.env.CLEARMESH_OPERATOR_SIGNING_KEY,
    join(firstNodeData, 'operator-signing-key'),
    newOperatorSigningKey,
  )
  return {
    adminToken: adminToken.value,
    keySecret: keySecret.value,
    meshSecret: meshSecret.value,
    operatorSigningKey: operatorSigningKey.value,
  }
}

/** The local mesh settles every minute (a deployed one sets SETTLEMENT_INTERVAL_MS). */
const settlementIntervalMs = 60_000
/** And folds its documents' history every 5 minutes, as wrangler.toml's CHECKPOINT_INTERVAL_MS. */
const checkpointIntervalMs = 300_000

function nodeSpecs(args: StartArgs, env: Record<string, string>): NodeSpec[] {
  const url = (i: number) => `http://${args.host}:${args.port + i}`
  return Array.from({ length: args.nodes }, (_, i) => {
    const id = nodeIds[i]!
    const peers = Array.from({ length: args.nodes }, (_, j) => j)
      .filter((j) => j !== i)
      .map((j) => `${nodeIds[j]}=${url(j)}`)
      .join(',')
    const spec: NodeSpec = {
      id,
      port: args.port + i,
      data: join(args.data, id),
      host: args.host,
      peers,
      settleEveryMs: settlementIntervalMs,
      checkpointEveryMs: checkpointIntervalMs,
    }
    if (args.shards !== undefined) spec.shards = args.shards
    return { ...spec, env }
  })
}

const startNode = (spec: NodeSpec): NodeProcess =>
  spawnNode(spec, {
    onLine: (line, stream) =>
      (stream === 'stderr' ? console.error : console.log)(`[${spec.id}] ${line}`),
  })

async function stopAll(nodes: NodeProcess[]): Promise<boolean> {
  console.log(`clearmesh: stopping ${nodes.map((node) => node.spec.id).join(', ')}`)
  const exits = await Promise.all(nodes.map((node) => node.stop()))
  return exits.every((exit) => exit.code === 0 || exit.signal === 'SIGTERM')
}

async function main(argv: string[]): Promise<number> {
  const args = parseStartArgs(argv)
  const secrets = await meshSecrets(join(args.data, nodeIds[0]!))
  const env = {
    CLEARMESH_ADMIN_TOKEN: secrets.adminToken,
    CLEARMESH_KEY_SECRET: secrets.keySecret,
    CLEARMESH_MESH_SECRET: secrets.meshSecret,
    CLEARMESH_OPERATOR_SIGNING_KEY: secrets.operatorSigningKey,
    // Every node's key, pinned on every node: none acknowledges a checkpoint in another's name.
    CLEARMESH_NODE_PUBLIC_KEYS: pinnedNodeKeys(secrets.keySecret, [
      ...nodeIds.slice(0, args.nodes),
    ]),
  }
  const nodes = nodeSpecs(args, env).map(startNode)
  // Nodes run in their own process groups, so a terminal's Ctrl-C reaches only this process:
  // forward it. If this process dies any other way, take the nodes (and their workerd) along.
  process.on('exit', () => nodes.forEach((node) => signalGroup(node.pid, 'SIGKILL')))
  const stopped = new Promise<'signal'>((resolve) => {
    process.once('SIGINT', () => resolve('signal'))
    process.once('SIGTERM', () => resolve('signal'))
  })
  const firstExit = Promise.race(nodes.map((node) => node.exited.then(() => node)))
  const ready = await Promise.race([Promise.all(nodes.map((node) => node.ready)), stopped]).catch(
    (error: Error) => error,
  )
  if (ready instanceof Error || ready === 'signal') {
    // The node's own output was already echoed above; its first line says what went wrong.
    if (ready instanceof Error) console.error(`clearmesh: ${ready.message.split('\n')[0]}`)
    await stopAll(nodes)
    return ready === 'signal' ? 0 : 1
  }
  console.log(`\nclearmesh: ${nodes.length} node${nodes.length === 1 ? '' : 's'} ready`)
  nodes.forEach((node, i) => console.log(`  ${node.spec.id}  ${ready[i]}  data ${node.spec.data}`))
  console.log(`admin token: ${secrets.adminToken}\nCtrl-C stops every node.`)
  const outcome = await Promise.race([stopped, firstExit])
  if (outcome !== 'signal') console.error(`clearmesh: node ${outcome.spec.id} exited; stopping`)
  const clean = await stopAll(nodes)
  return outcome === 'signal' && clean ? 0 : 1
}

runMain('clearmesh', usage, main)
