// Disaster recovery with `npm run snapshot` on a proxied 3-node mesh: deposits, an export of node
// b to a file, more deposits, then node c wiped while cut off from its peers and restored from the
// file. Alone, c serves exactly what the snapshot held; once healed it catches the rest up from its
// peers, and every node holds every acknowledged deposit (I2) and converges (I1). A file whose
// bytes were altered is refused before anything reaches the node.

import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMesh, type Mesh } from './support/mesh'
import { checkLedgers, send, type Account, type Write } from './support/ledger-writes'

const run = promisify(execFile)
const accountCount = 4
const depositsPerPhase = 12

describe('a wiped node restored from a snapshot file, then caught up from its peers', () => {
  let mesh: Mesh
  let folder: string
  const accounts: Account[] = []
  const before: Write[] = []
  const after: Write[] = []

  /** `npm run snapshot -- <args>` as an operator runs it, with the admin token in the env. */
  const snapshot = (...args: string[]) =>
    run('npx', ['tsx', 'scripts/snapshot.ts', ...args], {
      env: { ...process.env, CLEARMESH_ADMIN_TOKEN: mesh.adminToken },
      timeout: 60_000,
    })

  async function deposits(into: Write[], phase: string) {
    for (let i = 0; i < depositsPerPhase; i++) {
      const account = accounts[i % accountCount]!
      const node = i % 2 === 0 ? 'a' : 'b'
      const write: Write = {
        kind: 'deposit',
        accountId: account.accountId,
        requestId: `${phase}-${i}`,
        amount: `${i + 1}.5`,
      }
      await send(mesh.client(node), account, write)
      expect(write.outcome, JSON.stringify(write)).toBe('acked')
      into.push(write)
    }
  }

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'clearmesh-snapshot-'))
    mesh = await startMesh({ ids: ['a', 'b', 'c'], proxied: true })
    for (let i = 0; i < accountCount; i++) {
      const key = await mesh.client('a').fundedAccount(`snap-${i}`, '0', ['read'])
      accounts.push({ accountId: `snap-${i}`, key })
    }
  })

  afterAll(async () => {
    await mesh?.stop()
    await rm(folder, { recursive: true, force: true })
  })

  it('exports every document of a node to a checksummed file', async () => {
    await deposits(before, 'before')
    await mesh.converge('before the export')
    const file = join(folder, 'b.json')
    const { stdout } = await snapshot('export', '--node', mesh.node('b').url(), '--out', file)
    expect(stdout).toMatch(/^18 documents of node b, [0-9]+ bytes, to /)
    const written = JSON.parse(await readFile(file, 'utf8'))
    expect(written.format).toBe('clearmesh-snapshot/1')
    expect(written.documents.map((d: { doc: string }) => d.doc)).toContain('market/BTC-PERP')
    await deposits(after, 'after')
  })

  it('refuses a file whose bytes were altered, and leaves the node as it was', async () => {
    await mesh.converge('after the export')
    const written = JSON.parse(await readFile(join(folder, 'b.json'), 'utf8'))
    const document = written.documents.find((d: { bytes: number }) => d.bytes > 2)
    const bytes = Buffer.from(document.update, 'base64')
    bytes[bytes.length - 1]! ^= 0xff
    document.update = bytes.toString('base64')
    const altered = join(folder, 'altered.json')
    await writeFile(altered, JSON.stringify(written))
    const digestsOfC = async () =>
      [...(await mesh.digests('c')).values()].map((d) => `${d.doc} ${d.contentDigest}`)
    const unchanged = await digestsOfC()
    const refused = snapshot('restore', '--node', mesh.node('c').url(), '--in', altered)
    await expect(refused).rejects.toMatchObject({
      stderr: expect.stringContaining('does not match its checksum'),
    })
    expect(await digestsOfC()).toEqual(unchanged)
  })

  it('restores a wiped, cut-off node to exactly what the snapshot held', async () => {
    await mesh.converge('before the wipe')
    mesh.isolate('c')
    await mesh.node('c').wipe()
    // The key went with the wipe, and c has not caught up from a peer since: not a definite 401.
    const empty = await mesh.client('c').signed(accounts[0]!.key, 'GET', '/v1/account')
    expect(empty.status).toBe(503)
    expect(empty.body.error).toMatchObject({ code: 'shard_syncing', retryable: true })
    const { stdout } = await snapshot(
      'restore',
      '--node',
      mesh.node('c').url(),
      '--in',
      join(folder, 'b.json'),
    )
    expect(stdout).toMatch(/^18 documents of node b's snapshot restored into /)
    // Cut off, c holds the snapshot's deposits and none of those that came after it.
    const alone = await checkLedgers(mesh.client('c'), accounts, before)
    expect(alone.problems).toEqual([])
  })

  it('catches up from its peers once healed: every acknowledged deposit everywhere', async () => {
    mesh.healAll()
    await mesh.converge('after the restore and heal', { timeoutMs: 60_000 })
    for (const id of mesh.ids) {
      const check = await checkLedgers(mesh.client(id), accounts, [...before, ...after])
      expect(check.problems, id).toEqual([])
    }
  })
})
