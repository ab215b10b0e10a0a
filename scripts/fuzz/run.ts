// The long API fuzz: the generators and the property of test/api/fuzz.test.ts (one piece of code,
// test/support/fuzz-requests.ts), run for as many cases as asked against a real node process
// (scripts/node.ts on workerd, a temporary data folder, loopback only). Every case is a hostile
// request to a route of the OpenAPI document; each must get a 4xx with the error envelope, change
// no document nor mark when rejected, and leave the node serving. Prints progress, then one JSON
// line with the counts; on a failure, fast-check's seed, path and shrunk counterexample, and the
// node's last output. The node is stopped at the end, whatever happens.
//
//   npm run fuzz -- [--runs 10000] [--seed N] [--path P] [--max-body-bytes 1048576] [--keep]

import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { apiClient } from '../../test/support/api-client'
import { fuzzApi, prepareWorld } from '../../test/support/fuzz-requests'
import { integerOption, parseOptions, runMain } from '../lib/cli'
import { spawnNode } from '../lib/node-process'

const usage = `usage: npm run fuzz -- [--runs 10000] [--seed N] [--path P] [--max-body-bytes N] [--keep]
  --runs            generated cases (default 10000)
  --seed            fast-check seed (default: random, printed)
  --path            replay one counterexample: the path a failure printed (with its --seed)
  --max-body-bytes  largest body a huge-body case sends (default 1048576)
  --keep            keep the node's data folder (printed) instead of deleting it`

/**
 * fetch, sent again once when the connection fails before any answer: after the node resets a
 * connection on an oversize body (see sendCase), undici may hand the next request the dead pooled
 * connection. A request that never reached the node is safe to send again.
 */
const fetchOnce = (url: string, init?: RequestInit): Promise<Response> =>
  fetch(url, init).catch((error: Error & { cause?: { code?: string } }) => {
    const code = error.cause?.code ?? ''
    if (!/^(ECONNRESET|EPIPE|UND_ERR_SOCKET|UND_ERR_CLOSED)$/.test(code)) throw error
    return fetch(url, init)
  })

/** The node's receive window for signed requests (wrangler.toml SIGNATURE_WINDOW_MS). */
const windowMs = 5_000

async function main(argv: string[]): Promise<number> {
  const values = parseOptions(argv, {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    path: { type: 'string' },
    'max-body-bytes': { type: 'string', default: String(1024 * 1024) },
    keep: { type: 'boolean', default: false },
  })
  const runs = integerOption('--runs', values.runs, 1, 10_000_000)
  const seed =
    values.seed === undefined
      ? Math.floor(Math.random() * 2 ** 31)
      : integerOption('--seed', values.seed, 0, 2 ** 31 - 1)
  const maxBodyBytes = integerOption(
    '--max-body-bytes',
    values['max-body-bytes'],
    16 * 1024 + 1,
    64 * 1024 * 1024,
  )

  const root = await mkdtemp(join(tmpdir(), 'clearmesh-fuzz-'))
  const adminToken = `admin-${randomBytes(12).toString('hex')}`
  const node = spawnNode(
    {
      id: 'a',
      port: 0,
      data: join(root, 'a'),
      env: {
        CLEARMESH_ADMIN_TOKEN: adminToken,
        CLEARMESH_KEY_SECRET: `keys-${randomBytes(12).toString('hex')}`,
      },
    },
    { readyTimeoutMs: 120_000 },
  )
  const interrupted = () => {
    void node.kill().finally(() => process.exit(130))
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  let failed = false
  try {
    const base = await node.ready
    console.log(
      `fuzz: node a on ${base}, seed ${seed}, ${runs} runs${values.path ? `, path ${values.path}` : ''}`,
    )
    const client = apiClient(fetchOnce, base, adminToken)
    const world = await prepareWorld(client, { tag: `fz${seed.toString(36)}`, adminToken })
    const report = await fuzzApi(
      { client, base, world },
      {
        seed,
        numRuns: runs,
        ...(values.path !== undefined && { path: values.path }),
        windowMs,
        maxBodyBytes,
        sweep: true,
        progressEvery: 500,
        onProgress: (so) =>
          console.log(
            `fuzz: ${so.cases} cases in ${Math.round(so.ms / 1000)} s, ${so.accepted} accepted, ` +
              `statuses ${JSON.stringify(so.byStatus)}`,
          ),
      },
    )
    // The node still serves: its health, a signed read, a write.
    const health = await client.plain('GET', '/health')
    const read = await client.signed(world.own.key, 'GET', '/v1/account')
    const write = await client.admin('POST', '/v1/admin/deposits', {
      depositId: `after-fuzz-${seed}`,
      accountId: world.other.accountId,
      asset: 'USD',
      amount: '1',
      signedAt: Date.now(),
    })
    if (health.status !== 200 || read.status !== 200 || write.status !== 201) {
      throw new Error(
        `the node stopped serving after the fuzz: health ${health.status}, read ${read.status}, write ${write.status}`,
      )
    }
    console.log(`fuzz result: ${JSON.stringify({ ok: true, ...report })}`)
    return 0
  } catch (error) {
    failed = true
    console.error(`fuzz FAILED (seed ${seed}): ${(error as Error)?.stack ?? String(error)}`)
    for (let cause = (error as { cause?: unknown }).cause; cause !== undefined;) {
      console.error(`cause: ${(cause as Error)?.stack ?? String(cause)}`)
      cause = (cause as { cause?: unknown })?.cause
    }
    console.error(`replay: npm run fuzz -- --seed ${seed} --runs ${runs} [--path <path above>]`)
    console.error(`node output:\n${node.output()}`)
    return 1
  } finally {
    await node.stop()
    if (values.keep || failed) console.log(`fuzz: node data kept in ${root}`)
    else await rm(root, { recursive: true, force: true })
  }
}

runMain('fuzz', usage, main)
