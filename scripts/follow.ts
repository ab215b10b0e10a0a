// The backup follower (scripts/lib/backup-follower.ts) and the rebuild of a node from its files.
//
//   npm run follow -- --node http://127.0.0.1:8787 --out backup/
//   npm run follow -- export --out backup/ --snapshot snapshot.json
//   npm run follow -- restore --out backup/ --node http://127.0.0.1:8787
//
// Following needs the admin token (to list the node's documents) and the mesh secret (to sign
// the follower's read-only mesh tokens). `export` writes the files as a snapshot file that
// `npm run snapshot -- restore` loads; `restore` loads them into a new or wiped node directly.

import { parseOptions, runMain, UsageError } from './lib/cli'
import {
  readManifest,
  snapshotOfFolder,
  startBackupFollower,
  type BackupFollower,
} from './lib/backup-follower'
import { storedDocuments } from './lib/backup-store'
import { nodeDocuments, restoreSnapshot, writeSnapshotFile, type Progress } from './lib/snapshot'

const usage = `usage: npm run follow -- --node <url> --out <dir> [--token <admin token>]
                         [--mesh-secret <secret>] [--id <follower id>]
       npm run follow -- export --out <dir> --snapshot <file>
       npm run follow -- restore --out <dir> --node <url> [--token <admin token>]
  (follow)  keeps every document of the node in <dir>, following it live; stop with Ctrl-C
  export    writes the replica in <dir> as a snapshot file (npm run snapshot -- restore takes it)
  restore   loads the replica in <dir> into the node (a new or wiped one)
env: CLEARMESH_ADMIN_TOKEN, CLEARMESH_MESH_SECRET (instead of --token, --mesh-secret)`

const discoveryRetryMs = 2_000
const progressIntervalMs = 1_000

const progress: Progress = (done, total, doc) =>
  process.stderr.write(`\r${done}/${total} ${doc.padEnd(24)}${done === total ? '\n' : ''}`)

const required = (value: string | undefined, what: string): string => {
  if (value === undefined || value === '') throw new UsageError(`give ${what}`)
  return value
}

/** The node's id and documents; while it cannot be reached, those of an earlier run's files. */
async function discover(node: string, token: string, folder: string) {
  for (;;) {
    try {
      return await nodeDocuments(node, token)
    } catch (error) {
      // An answer (401, 500) will not change by asking again; no answer may.
      if (!(error instanceof TypeError)) throw error
      const manifest = await readManifest(folder)
      const stored = await storedDocuments(folder)
      if (manifest !== undefined && stored.length > 0) {
        console.error(`follow: ${node} unreachable; following the ${stored.length} documents held`)
        return { nodeId: manifest.node, names: stored }
      }
      console.error(`follow: ${node} unreachable (${error.message}); asking again`)
      await new Promise((resolve) => setTimeout(resolve, discoveryRetryMs))
    }
  }
}

/** One line: documents synced and connected, bytes on disk, clock units behind, last update. */
function statusLine(follower: BackupFollower): string {
  const { documents } = follower
  const synced = documents.filter((d) => d.provider.synced && d.lag() === 0).length
  const connected = documents.filter((d) => d.provider.wsconnected).length
  const bytes = documents.reduce((n, d) => n + d.store.bytes(), 0)
  const lag = documents.reduce((n, d) => n + d.lag(), 0)
  const last = Math.max(...documents.map((d) => d.lastUpdateAt()))
  const age = last === 0 ? 'none' : `${((Date.now() - last) / 1000).toFixed(0)} s ago`
  return (
    `node ${follower.nodeId}: ${synced}/${documents.length} synced, ${connected} connected, ` +
    `${(bytes / 1e6).toFixed(2)} MB on disk, lag ${lag} units, last update ${age}`
  )
}

async function followNode(
  node: string,
  folder: string,
  credentials: { token: string; meshSecret: string; id: string },
) {
  const { token, meshSecret } = credentials
  const { nodeId, names } = await discover(node, token, folder)
  let failure: unknown
  let finish!: () => void
  const finished = new Promise<void>((resolve) => (finish = resolve))
  const follower = await startBackupFollower({
    node,
    folder,
    meshSecret,
    nodeId,
    documents: names,
    id: credentials.id,
    onFailure: (error) => {
      failure ??= error
      finish()
    },
  })
  const tty = process.stderr.isTTY
  let printed = ''
  const timer = setInterval(() => {
    const line = statusLine(follower)
    // A terminal gets one line rewritten in place; a log gets a line when something changed.
    if (tty) process.stderr.write(`\r${line.padEnd(printed.length)}`)
    else if (line.replace(/, last update.*/, '') !== printed.replace(/, last update.*/, ''))
      console.error(line)
    printed = line
  }, progressIntervalMs)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, finish)
  await finished
  clearInterval(timer)
  const last = statusLine(follower)
  await follower.stop()
  console.error(`${tty ? '\n' : ''}follow: stopped; ${last}`)
  if (failure !== undefined) throw failure
  return 0
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0]?.startsWith('--') === false ? argv[0] : undefined
  const options = parseOptions(command === undefined ? argv : argv.slice(1), {
    node: { type: 'string' },
    out: { type: 'string' },
    snapshot: { type: 'string' },
    token: { type: 'string' },
    'mesh-secret': { type: 'string' },
    id: { type: 'string' },
  })
  const folder = required(options.out, '--out <dir>')
  if (command === 'export') {
    const snapshot = required(options.snapshot, '--snapshot <file>')
    const file = await snapshotOfFolder(folder)
    await writeSnapshotFile(snapshot, file)
    const bytes = file.documents.reduce((n, d) => n + d.bytes, 0)
    console.log(
      `${file.documents.length} documents of node ${file.node}, ${bytes} bytes, to ${snapshot}`,
    )
    return 0
  }
  const node = required(options.node, '--node <url>').replace(/\/+$/, '')
  const token = required(
    options.token ?? process.env.CLEARMESH_ADMIN_TOKEN,
    'the admin token: --token or CLEARMESH_ADMIN_TOKEN',
  )
  if (command === 'restore') {
    const file = await snapshotOfFolder(folder)
    const restored = await restoreSnapshot(node, token, file, progress)
    console.log(`${restored} documents of node ${file.node}'s replica restored into ${node}`)
    return 0
  }
  if (command !== undefined) throw new UsageError(`unknown command ${command}`)
  if (options.id !== undefined && !/^[a-z0-9-]{1,32}$/.test(options.id)) {
    throw new UsageError('--id is 1 to 32 of a-z, 0-9 and -')
  }
  const meshSecret = required(
    options['mesh-secret'] ?? process.env.CLEARMESH_MESH_SECRET,
    'the mesh secret: --mesh-secret or CLEARMESH_MESH_SECRET',
  )
  return followNode(node, folder, { token, meshSecret, id: options.id ?? 'backup' })
}

runMain('follow', usage, main)
