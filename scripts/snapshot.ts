// Snapshot export and restore of a node's documents (scripts/lib/snapshot.ts has the format).
//
//   npm run snapshot -- export --node http://127.0.0.1:8787 --out snapshot.json
//   npm run snapshot -- restore --node http://127.0.0.1:8789 --in snapshot.json
//
// The admin token comes from CLEARMESH_ADMIN_TOKEN or --token. A restored node then catches up
// from its peers whatever came after the snapshot.

import { parseOptions, runMain, UsageError } from './lib/cli'
import { progressDisplay } from './lib/progress'
import {
  exportSnapshot,
  readSnapshotFile,
  restoreSnapshot,
  writeSnapshotFile,
  type Progress,
} from './lib/snapshot'

const usage = `usage: npm run snapshot -- export --node <url> --out <file> [--token <admin token>]
       npm run snapshot -- restore --node <url> --in <file> [--token <admin token>]
  export   writes every document of the node (state, state vector, checksums) to <file>
  restore  checks <file> and loads every document into the node (a new or wiped one; it then
           catches up from its peers)
env: CLEARMESH_ADMIN_TOKEN (instead of --token)`

const display = progressDisplay()
const progress: Progress = (done, total, doc) => {
  display.update(`${done}/${total} ${doc}`)
  if (done === total) display.done()
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  const options = parseOptions(rest, {
    node: { type: 'string' },
    out: { type: 'string' },
    in: { type: 'string' },
    token: { type: 'string' },
  })
  const token = options.token ?? process.env.CLEARMESH_ADMIN_TOKEN
  if (options.node === undefined) throw new UsageError('--node is required')
  if (token === undefined || token === '') {
    throw new UsageError('give the admin token: --token or CLEARMESH_ADMIN_TOKEN')
  }
  const node = options.node.replace(/\/+$/, '')
  if (command === 'export') {
    if (options.out === undefined) throw new UsageError('export needs --out <file>')
    const file = await exportSnapshot(node, token, progress)
    await writeSnapshotFile(options.out, file)
    const bytes = file.documents.reduce((n, d) => n + d.bytes, 0)
    console.log(
      `${file.documents.length} documents of node ${file.node}, ${bytes} bytes, to ${options.out}`,
    )
    return 0
  }
  if (command === 'restore') {
    if (options.in === undefined) throw new UsageError('restore needs --in <file>')
    const file = await readSnapshotFile(options.in)
    const restored = await restoreSnapshot(node, token, file, progress)
    console.log(`${restored} documents of node ${file.node}'s snapshot restored into ${node}`)
    return 0
  }
  throw new UsageError(command === undefined ? 'export or restore?' : `unknown command ${command}`)
}

runMain('snapshot', usage, main)
