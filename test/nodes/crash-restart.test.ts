// F7 on one node: SIGKILL a node (and its workerd) while deposits and withdrawals are in flight,
// restart it from the same data folder, and check I2 (no acknowledged write lost) and I3 (a retried
// request id takes effect once) against what the clients were told.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { groupAlive } from '../../scripts/lib/node-process'
import { startTestNode, type TestNode } from './support/test-node'
import {
  checkLedgers,
  checkShards,
  entryId,
  micros,
  readAccount,
  seededRandom,
  send,
  testSeed,
  type Account,
  type Write,
} from './support/ledger-writes'

const seed = testSeed()
const random = seededRandom(seed)
const accountCount = 4
const concurrency = 12
/** Acknowledged writes before the kill: enough that the node is busy, few enough to stay quick. */
const ackedBeforeKill = 120

const amount = (max: number) => `${1 + Math.floor(random() * max)}.${Math.floor(random() * 100)}`

describe(`a node killed while writes are in flight (seed ${seed})`, () => {
  let node: TestNode & { coldStartMs: number }
  const accounts: Account[] = []
  const writes: Write[] = []
  const figures: Record<string, number> = {}

  beforeAll(async () => {
    node = await startTestNode()
    figures.coldStartMs = Math.round(node.coldStartMs)
    for (let i = 0; i < accountCount; i++) {
      const accountId = `crash-${i}`
      const key = await node.client().fundedAccount(accountId, '1000')
      accounts.push({ accountId, key })
      writes.push({
        kind: 'deposit',
        accountId,
        requestId: `initial-${accountId}`,
        amount: '1000',
        outcome: 'acked',
      })
    }
  })

  afterEach((context) => {
    // The node's own log is the first thing to read when a check fails.
    if (context.task.result?.state === 'fail') console.log(`node output:\n${node?.output()}`)
  })

  afterAll(async () => {
    console.log(`crash-restart figures (seed ${seed}): ${JSON.stringify(figures)}`)
    await node?.stop()
  })

  it('keeps every acknowledged write and replays retried request ids', async () => {
    const client = node.client()
    let acked = 0
    let killing: Promise<void> | undefined
    const startedAt = performance.now()
    // Each worker keeps one write in flight until the kill; the kill comes from inside a worker,
    // so the other workers' requests are on the wire when it lands.
    const worker = async (w: number) => {
      for (let n = 0; killing === undefined; n++) {
        const account = accounts[Math.floor(random() * accounts.length)]!
        const withdrawal = random() < 0.4
        const write: Write = {
          kind: withdrawal ? 'withdrawal' : 'deposit',
          accountId: account.accountId,
          requestId: `w${w}-${n}`,
          amount: withdrawal ? amount(40) : amount(100),
        }
        writes.push(write)
        await send(client, account, write)
        if (write.outcome === 'acked' && ++acked >= ackedBeforeKill && killing === undefined) {
          figures.writesPerSecond = Math.round((acked * 1000) / (performance.now() - startedAt))
          killing = node.kill()
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)))
    await killing
    // Neither the node nor its workerd survived the kill (an orphan would hold the port).
    expect(groupAlive(node.pid())).toBe(false)

    const outcomes = countOutcomes(writes)
    figures.acked = outcomes.acked
    figures.refused = outcomes.refused
    figures.unknown = outcomes.unknown
    // The kill landed while requests were on the wire, or this test tested nothing.
    expect(outcomes.unknown).toBeGreaterThan(0)

    figures.restartToReadyMs = Math.round(await node.restart())
    const restartedAt = performance.now()
    const restarted = node.client()
    await readAccount(restarted, accounts[0]!)
    figures.readyToFirstReadMs = Math.round(performance.now() - restartedAt)

    expect((await checkShards(restarted)).problems).toEqual([])
    const check = await checkLedgers(restarted, accounts, writes)
    expect(check.problems).toEqual([])
    figures.unknownPresent = check.unknownPresent
    figures.unknownAbsent = check.unknownAbsent

    // Every acknowledged withdrawal reads back by its id with the amount the client was told.
    for (const write of writes.filter((w) => w.kind === 'withdrawal' && w.outcome === 'acked')) {
      const account = accounts.find((a) => a.accountId === write.accountId)!
      const read = await restarted.signed(account.key, 'GET', `/v1/withdrawals/${write.requestId}`)
      expect(read.status, `${write.requestId}`).toBe(200)
      expect(micros(read.body.amount)).toBe(micros(write.amount))
    }

    // An unanswered withdrawal reads back by its id exactly when its ledger entry exists.
    const present = new Set(check.presentIds)
    for (const write of writes.filter((w) => w.kind === 'withdrawal' && w.outcome === 'unknown')) {
      const account = accounts.find((a) => a.accountId === write.accountId)!
      const read = await restarted.signed(account.key, 'GET', `/v1/withdrawals/${write.requestId}`)
      expect(read.status, `${write.requestId}`).toBe(present.has(entryId(write)) ? 200 : 404)
    }

    // A retry of an acknowledged request id replays and moves no money.
    for (const account of accounts) {
      for (const kind of ['deposit', 'withdrawal'] as const) {
        const original = writes.find(
          (w) => w.accountId === account.accountId && w.kind === kind && w.outcome === 'acked',
        )
        if (original === undefined) continue
        const retry: Write = { ...original, outcome: undefined }
        const reply = await send(restarted, account, retry)
        expect(reply?.status, `${kind} ${original.requestId}`).toBe(201)
        expect(reply?.headers.get('Idempotent-Replayed')).toBe('true')
      }
      const after = await readAccount(restarted, account)
      expect(micros(after.collateral)).toBe(check.balances.get(account.accountId))
    }

    // Retrying every unanswered write settles it: each then takes effect exactly once.
    for (const write of writes.filter((w) => w.outcome === 'unknown')) {
      const account = accounts.find((a) => a.accountId === write.accountId)!
      await send(restarted, account, write)
      expect(write.outcome, `retry of ${write.requestId}: ${write.status}`).not.toBe('unknown')
    }
    const settled = await checkLedgers(restarted, accounts, writes)
    expect(settled.problems).toEqual([])
    expect(settled.unknownPresent + settled.unknownAbsent).toBe(0)
  })

  it('stops on SIGTERM with exit code 0 and leaves no process behind', async () => {
    const pid = node.pid()
    expect(await node.stop()).toEqual({ code: 0, signal: null })
    expect(groupAlive(pid)).toBe(false)
  })
})

function countOutcomes(writes: Write[]) {
  const counts = { acked: 0, refused: 0, unknown: 0 }
  for (const write of writes) counts[write.outcome ?? 'unknown']++
  return counts
}
