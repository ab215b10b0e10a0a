// The outbox seam between durable storage and replication: a subscriber receives every update
// the shard made durable, after its storage transaction, in increasing sequence order, and the
// received updates alone rebuild the replica's content exactly.

import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import type { DurableUpdate } from '../../src/replica/outbox'
import type { ShardReplica } from '../../src/replica/shard-replica'
import { contentDigest, stateVectorDigest } from '../../src/state/digest'
import { depositOf, freshShard, logRows, usd, withdrawalOf } from './helpers'

const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i])

describe('outbox', () => {
  it('offers every durable update after commit, in order, enough to rebuild the shard', async () => {
    const stub = freshShard('outbox')
    const received: DurableUpdate[] = []
    const problems: string[] = []

    const result = await runInDurableObject(stub, async (instance: ShardReplica, state) => {
      const sql = state.storage.sql
      const unsubscribe = instance.subscribe((offered) => {
        // By the time it is offered the update is stored, under its seq, byte for byte.
        const rows = sql
          .exec<{ body: ArrayBuffer; origin: string }>(
            'SELECT body, origin FROM update_log WHERE seq = ?',
            offered.seq,
          )
          .toArray()
        const row = rows[0]
        if (row === undefined) problems.push(`seq ${offered.seq} offered before it was stored`)
        else if (!sameBytes(new Uint8Array(row.body), offered.update)) {
          problems.push(`seq ${offered.seq} offered with other bytes than stored`)
        } else if (row.origin !== offered.origin) problems.push(`seq ${offered.seq} origin`)
        received.push(offered)
      })

      // (Each awaited: a write may be asynchronous, e.g. a withdrawal that reads the markets.)
      const writes: { ok: boolean }[] = []
      const quiet: { ok: boolean; code?: string; value?: { replayed: boolean } }[] = []
      writes.push(await instance.createAccount({ accountId: 'alice' }))
      writes.push(await instance.createAccount({ accountId: 'bob' }))
      writes.push(await instance.deposit(depositOf('alice', 'd1', usd(50))))
      writes.push(await instance.deposit(depositOf('bob', 'd1', usd(5))))
      writes.push(await instance.withdraw(withdrawalOf('alice', 'w1', usd(20))))
      writes.push(
        await instance.createKey({ keyId: 'k1', accountId: 'alice', scopes: ['read'], label: '' }),
      )
      writes.push(await instance.revokeKey({ keyId: 'k1' }))
      // Rejected and replayed commands make nothing durable, so offer nothing.
      quiet.push(await instance.deposit(depositOf('nobody', 'd1', usd(1))))
      quiet.push(await instance.withdraw(withdrawalOf('bob', 'w1', usd(6))))
      quiet.push(await instance.deposit(depositOf('alice', 'd1', usd(50))))
      quiet.push(await instance.createAccount({ accountId: 'alice' }))
      const offeredBeforeCompaction = received.length
      // Compaction folds the log; later updates still come with increasing seqs.
      instance.compact()
      for (let i = 0; i < 20; i++) {
        writes.push(
          await instance.deposit(depositOf(i % 2 ? 'alice' : 'bob', `l${i}`, BigInt(i + 1))),
        )
      }
      // What the subscriber should be able to rebuild: the replica as of its last offer.
      const status = instance.status()
      unsubscribe()
      // After unsubscribing nothing more arrives.
      writes.push(await instance.deposit(depositOf('bob', 'unheard', 1n)))
      return {
        accepted: writes.every((write) => write.ok),
        quiet: quiet.map((write) => (write.ok ? write.value?.replayed : write.code)),
        offeredBeforeCompaction,
        status,
      }
    })

    expect(problems).toEqual([])
    expect(result.accepted).toBe(true)
    expect(result.quiet).toEqual(['account_not_found', 'insufficient_funds', true, true])
    expect(result.offeredBeforeCompaction).toBe(7)
    expect(received).toHaveLength(27) // 28 durable rows, the last one written unsubscribed
    expect(received.map((update) => update.seq)).toEqual(
      Array.from({ length: 27 }, (_, i) => i + 1),
    )
    expect(received.every((update) => update.origin === 'a')).toBe(true)
    expect(result.status.storage.snapshot?.uptoSeq).toBe(7)
    expect((await logRows(stub)).map((row) => row.seq)).toEqual(
      Array.from({ length: 21 }, (_, i) => i + 8), // 8..28
    )

    // The received updates alone rebuild the replica's content and state vector, applied in
    // log order or in reverse (Yjs holds early arrivals pending until their dependencies come).
    for (const order of ['log order', 'reverse order'] as const) {
      const doc = new Y.Doc()
      const updates = order === 'log order' ? received : [...received].reverse()
      for (const { update } of updates) Y.applyUpdate(doc, update)
      expect(doc.store.pendingStructs, order).toBeNull()
      expect(contentDigest(doc), order).toBe(result.status.contentDigest)
      expect(stateVectorDigest(doc), order).toBe(result.status.stateVectorDigest)
      doc.destroy()
    }
  }, 30_000)

  it('offers writes that arrive over RPC while subscribed', async () => {
    const stub = freshShard('outbox-rpc')
    const received: DurableUpdate[] = []
    await runInDurableObject(stub, (instance: ShardReplica) => {
      instance.subscribe((offered) => received.push(offered))
    })
    await stub.createAccount({ accountId: 'alice' })
    await stub.deposit(depositOf('alice', 'd1', usd(1)))
    await stub.deposit(depositOf('alice', 'd1', usd(1))) // replayed: nothing new
    expect(received.map((update) => update.seq)).toEqual([1, 2])
  }, 30_000)

  it('acknowledges a durable write and still offers it to every other subscriber when one throws', async () => {
    // A broken link must neither turn a committed write into an error for the client nor keep
    // the update from the other links.
    const stub = freshShard('outbox-throw')
    const outcome = await runInDurableObject(stub, (instance: ShardReplica) => {
      const received: number[] = []
      instance.subscribe(() => {
        throw new Error('link down')
      })
      instance.subscribe((offered) => received.push(offered.seq))
      let write: unknown
      try {
        write = instance.createAccount({ accountId: 'alice' })
      } catch (error) {
        write = `threw: ${String(error)}`
      }
      return { write, received }
    })
    expect(outcome.write).toMatchObject({ ok: true, value: { replayed: false } })
    expect(outcome.received).toEqual([1])
    expect((await logRows(stub)).map((row) => row.seq)).toEqual([1])
  }, 30_000)
})
