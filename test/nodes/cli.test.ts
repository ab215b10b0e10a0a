// The operator CLI as a user runs it: the real `clearmesh` binary (bin/clearmesh.js) against a
// real node, with the node URL and admin token from the environment as `npm start` prints them.
// Each command's output, its effect as the SDK reads it back, and its exit code on failure.

import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newOperatorSigningKey } from '../../scripts/lib/secrets'
import { createClient } from '../../src/client'
import { startTestNode, type TestNode } from './support/test-node'

type Run = { code: number; stdout: string; stderr: string }

describe('clearmesh CLI against a node', () => {
  let node: TestNode
  const adminToken = 'cli-admin-token-0123456789'

  const clearmesh = (args: string[], env: Record<string, string> = {}): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        ['bin/clearmesh.js', ...args],
        {
          env: {
            ...process.env,
            CLEARMESH_NODE: node.url(),
            CLEARMESH_ADMIN_TOKEN: adminToken,
            ...env,
          },
        },
        (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
      )
    })

  const admin = () => createClient({ nodes: [node.url()], adminToken }).admin!

  beforeAll(async () => {
    node = await startTestNode({
      secrets: {
        adminToken,
        keySecret: 'cli-key-secret-0123456789',
        operatorSigningKey: newOperatorSigningKey(),
      },
    })
  })

  afterAll(async () => {
    await node?.stop()
  })

  it('status: the node, its links and findings, the breakers', async () => {
    const run = await clearmesh(['status'])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^node a at http:\/\/127\.0\.0\.1:\d+: \d+ documents, peers none/)
    expect(run.stdout).toContain('findings: 0')
    expect(run.stdout).toContain('breakers: withdrawals normal; every instrument normal')
  })

  it('account create, deposit (a repeat replays, another amount is refused), account show', async () => {
    const created = await clearmesh(['account', 'create', '--account', 'cli-acc', '--json'])
    expect(created.code, created.stderr).toBe(0)
    const { key } = JSON.parse(created.stdout)
    expect(key).toEqual(
      expect.objectContaining({ accountId: 'cli-acc', secret: expect.any(String) }),
    )

    const deposit = ['deposit', '--account', 'cli-acc', '--amount', '250.5', '--id', 'cli-dep-1']
    const first = await clearmesh(deposit)
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout.trim()).toBe('deposit cli-dep-1: 250.5 USD to cli-acc on node a')
    const again = await clearmesh(deposit)
    expect(again.stdout).toContain('(recorded before: replayed)')
    const other = await clearmesh(deposit.map((arg) => (arg === '250.5' ? '1' : arg)))
    expect(other.code).toBe(1)
    expect(other.stderr).toMatch(/^clearmesh: idempotency_conflict: .* \(HTTP 409 from http/)

    const shown = await clearmesh(['account', 'show'], {
      CLEARMESH_KEY_ID: key.keyId,
      CLEARMESH_KEY_SECRET: key.secret,
    })
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(/^account cli-acc \(node a, read \d+ ms ago\)/)
    expect(shown.stdout).toContain('collateral 250.5')
    expect(shown.stdout).toContain('withdrawable 250.5')
  })

  it('halt and resume an instrument and withdrawals, as the node then reports', async () => {
    const halt = await clearmesh(['halt', 'instrument', 'BTC-PERP', '--reason', 'drill'])
    expect(halt.code, halt.stderr).toBe(0)
    expect(halt.stdout).toContain('instrument BTC-PERP: halted')
    const withdrawals = await clearmesh([
      'halt',
      'withdrawals',
      '--reason',
      'drill',
      '--mode',
      'halted',
    ])
    expect(withdrawals.code, withdrawals.stderr).toBe(0)
    expect((await admin().breakers()).value).toEqual(
      expect.objectContaining({
        withdrawals: 'halted',
        instruments: expect.objectContaining({ 'BTC-PERP': 'halted' }),
      }),
    )
    const status = await clearmesh(['status'])
    expect(status.stdout).toContain('breakers: withdrawals halted; BTC-PERP halted')

    expect((await clearmesh(['resume', 'instrument', 'BTC-PERP'])).code).toBe(0)
    expect((await clearmesh(['resume', 'withdrawals'])).code).toBe(0)
    const after = (await admin().breakers()).value
    expect(after.withdrawals).toBe('normal')
    expect(after.instruments['BTC-PERP']).toBe('normal')
  })

  it('snapshot export runs npm run snapshot, its progress as plain lines off a terminal', async () => {
    const out = join(node.dataDir, '..', 'cli-snapshot.json')
    const run = await clearmesh(['snapshot', 'export', '--node', node.url(), '--out', out])
    expect(run.code, run.stderr).toBe(0)
    const progress = run.stderr.trim().split('\n')
    expect(progress.length).toBeGreaterThan(1)
    expect(progress.at(-1)).toMatch(/^(\d+)\/\1 (shard|market)\//)
    expect(run.stdout).toMatch(/^\d+ documents of node a, \d+ bytes, to /)
    expect(JSON.parse(await readFile(out, 'utf8')).format).toBe('clearmesh-snapshot/1')
  })

  it('says what is wrong and exits non-zero', async () => {
    const noToken = await clearmesh(['deposit', '--account', 'x', '--amount', '1'], {
      CLEARMESH_ADMIN_TOKEN: '',
    })
    expect(noToken.code).toBe(2)
    expect(noToken.stderr).toContain('give the admin token')
    const badToken = await clearmesh(['status', '--token', 'not-the-token-0123456789'])
    expect(badToken.code).toBe(1)
    expect(badToken.stdout).toContain('no status (invalid_admin_token')
    const badTarget = await clearmesh(['halt', 'market', '--reason', 'x'])
    expect(badTarget.code).toBe(2)
    expect(badTarget.stderr).toContain('the target is: instrument <symbol> | venue | withdrawals')
    const unknown = await clearmesh(['launch'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('unknown command launch')
  })
})
