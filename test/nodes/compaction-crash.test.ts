// F7 during compaction: one shard grows to a few thousand ledger entries, then compaction is
// requested and the node SIGKILLed 0 ms to tens of ms later, round after round. After every
// restart no shard may be damaged and every acknowledged entry must be there with its balance
// (design.md §3: the snapshot swap is atomic, reload = snapshot + log tail).

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { shardOf } from '../../src/state/shard-of'
import { startTestNode, type TestNode } from './support/test-node'
import {
  checkLedgers,
  checkShards,
  readAccount,
  seededRandom,
  send,
  testSeed,
  type Account,
  type Write,
} from './support/ledger-writes'

const seed = testSeed()
const random = seededRandom(seed)
const shardCount = 16
const accountCount = 3
/** Deposits before the first compaction: past the log's compaction threshold (2,000 rows). */
const initialEntries = 2_500
const entriesPerRound = 150
/** Requests in flight while filling, and while compacting (few: they queue before compaction). */
const fillConcurrency = 10
const compactionConcurrency = 2
/** Kill delays after sending the compaction request: before it lands, during it, after it. */
const killDelaysMs = [0, 3, 10, 30, 60, 120]

describe(`a node killed while it compacts a shard (seed ${seed})`, () => {
  let node: TestNode & { coldStartMs: number }
  let shard: number
  const accounts: Account[] = []
  const writes: Write[] = []
  const rounds: object[] = []
  const figures: Record<string, unknown> = { rounds }
  let nextId = 0

  /** Account ids that all land in one shard, so that shard holds every entry of the test. */
  function accountIdsInOneShard(): string[] {
    const target = shardOf('compact-0', shardCount)
    const ids: string[] = []
    for (let i = 0; ids.length < accountCount; i++) {
      if (shardOf(`compact-${i}`, shardCount) === target) ids.push(`compact-${i}`)
    }
    return ids
  }

  /** Deposits `count` entries with `concurrency` requests in flight; stops early if `until`. */
  async function deposit(count: number, concurrency: number, until = () => false): Promise<void> {
    const client = node.client()
    let left = count
    const worker = async () => {
      while (left-- > 0 && !until()) {
        const account = accounts[Math.floor(random() * accounts.length)]!
        const write: Write = {
          kind: 'deposit',
          accountId: account.accountId,
          requestId: `d-${nextId++}`,
          amount: `${1 + Math.floor(random() * 500)}.${String(Math.floor(random() * 1e6)).padStart(6, '0')}`,
        }
        writes.push(write)
        await send(client, account, write)
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
  }

  async function shardStatus() {
    const { shards, problems } = await checkShards(node.client())
    const status = shards.find((s) => s.shard === `${node.id}/shard/${shard}`)
    if (status === undefined) throw new Error(`no status for shard ${shard}`)
    return { status, problems }
  }

  beforeAll(async () => {
    node = await startTestNode({ shards: shardCount })
    figures.coldStartMs = Math.round(node.coldStartMs)
    for (const accountId of accountIdsInOneShard()) {
      const key = await node.client().fundedAccount(accountId, '1000')
      accounts.push({ accountId, key })
      const initial = `initial-${accountId}`
      writes.push({
        kind: 'deposit',
        accountId,
        requestId: initial,
        amount: '1000',
        outcome: 'acked',
      })
    }
    // The shard the node reports for these accounts is the one the test computed.
    const reflected = await readAccount(node.client(), accounts[0]!)
    shard = shardOf(accounts[0]!.accountId, shardCount)
    expect(reflected.reflects.shards[0]?.shard).toBe(`${node.id}/shard/${shard}`)
  })

  afterEach((context) => {
    // The node's own log is the first thing to read when a check fails.
    if (context.task.result?.state === 'fail') console.log(`node output:\n${node?.output()}`)
  })

  afterAll(async () => {
    const { rounds: _, ...rest } = figures
    console.log(`compaction-crash figures (seed ${seed}): ${JSON.stringify(rest)}`)
    for (const round of rounds) console.log(`  round ${JSON.stringify(round)}`)
    await node?.stop()
  })

  it('builds a shard of a few thousand entries and compacts it', async () => {
    const startedAt = performance.now()
    await deposit(initialEntries, fillConcurrency)
    figures.fillWritesPerSecond = Math.round(
      (initialEntries * 1000) / (performance.now() - startedAt),
    )
    expect(writes.filter((w) => w.outcome !== 'acked')).toEqual([])

    const before = await shardStatus()
    expect(before.problems).toEqual([])
    figures.beforeCompaction = before.status.storage

    const compactStartedAt = performance.now()
    const compacted = await node.client().admin('POST', `/v1/admin/shards/${shard}/compact`)
    figures.compactRequestMs = Math.round(performance.now() - compactStartedAt)
    expect(compacted.status).toBe(200)
    expect(compacted.body.damage).toBeNull()
    expect(compacted.body.storage.logRows).toBe(0)
    figures.afterCompaction = compacted.body.storage
    figures.entries = writes.length
  })

  it.each(killDelaysMs)(
    'survives a SIGKILL %i ms after the compaction request',
    async (delayMs) => {
      await deposit(entriesPerRound, fillConcurrency)
      const before = await shardStatus()
      expect(before.status.storage.logRows).toBeGreaterThan(0)

      // Writes keep arriving while the shard compacts, as they would in production.
      let killed = false
      const inFlight = deposit(10_000, compactionConcurrency, () => killed)
      const client = node.client()
      const compaction = client
        .admin('POST', `/v1/admin/shards/${shard}/compact`)
        .then((reply) => reply.status)
        .catch(() => 'no answer' as const)
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      killed = true
      await node.kill()
      const answered = await compaction
      await inFlight

      const restartMs = Math.round(await node.restart())
      const loadStartedAt = performance.now()
      const after = await shardStatus() // loads every shard: snapshot + log tail
      const loadMs = Math.round(performance.now() - loadStartedAt)
      expect(after.problems).toEqual([])
      const storage = after.status.storage
      // Either the old snapshot with its whole log or the new snapshot with what followed it.
      const generationBefore = before.status.storage.snapshot?.generation ?? 0
      expect(storage.snapshot?.generation ?? 0).toBeGreaterThanOrEqual(generationBefore)
      expect(storage.lastSeq).toBeGreaterThanOrEqual(storage.snapshot?.uptoSeq ?? 0)
      // An answered compaction was durable before it answered, like any other acknowledgement.
      const compacted = (storage.snapshot?.generation ?? 0) > generationBefore
      if (answered === 200) expect(compacted).toBe(true)

      const check = await checkLedgers(node.client(), accounts, writes)
      expect(check.problems).toEqual([])

      // Settle the unanswered writes so the next round starts from known state.
      for (const write of writes.filter((w) => w.outcome === 'unknown')) {
        await send(
          node.client(),
          accounts.find((a) => a.accountId === write.accountId)!,
          write,
        )
        expect(write.outcome, `retry of ${write.requestId}`).toBe('acked')
      }
      rounds.push({
        delayMs,
        compaction: answered,
        compacted,
        unknownPresent: check.unknownPresent,
        unknownAbsent: check.unknownAbsent,
        restartMs,
        loadMs,
        logRows: storage.logRows,
        snapshotBytes: storage.snapshot?.bytes,
        chunks: storage.snapshot?.chunkCount,
      })
    },
  )
})
