// Epoch checkpoints in a replica (a one-node mesh: the node is the writer and the only member):
// the checkpoint is written, acknowledged with the node's signature and compacted; balances,
// replays and the ledger listing are the same before, after and across a reload.

import { evictDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { depositOf, freshShard, usd, withdrawalOf } from './helpers'

describe('checkpoints', () => {
  it('writes, acknowledges and compacts a checkpoint; every figure survives a reload', async () => {
    const stub = freshShard('checkpoint')
    for (const accountId of ['alice', 'bob']) await stub.createAccount({ accountId })
    for (let i = 0; i < 40; i++) {
      expect((await stub.deposit(depositOf(i % 2 ? 'bob' : 'alice', `d${i}`, usd(5)))).ok).toBe(
        true,
      )
    }
    expect((await stub.withdraw(withdrawalOf('alice', 'w1', usd(7)))).ok).toBe(true)
    const collateral = async (accountId: string) => {
      const read = await stub.account(accountId)
      if (!read.ok) throw new Error(read.message)
      return [read.value.value.collateral, read.value.value.rights.byNode]
    }
    const before = [await collateral('alice'), await collateral('bob')]
    expect(before[0]![0]).toBe('93')

    const report = await stub.checkpoint(7)
    expect(report).toMatchObject({ written: 7, acknowledged: 7, mismatched: null })
    expect(report.compacted).toBe(41)
    const state = await stub.checkpointState()
    expect(state.inForce?.epoch).toBe(7)
    expect(state.acks).toHaveLength(1)
    expect(state.acks[0]).toMatchObject({ node: 'a', root: state.inForce!.root })
    // The entry is gone from the document; the checkpoint still answers for its request id.
    const folded = await stub.transfer('deposit/alice/d0')
    expect(folded.ok && folded.value.value).toMatchObject({ id: 'deposit/alice/d0', amount: '5' })
    expect([await collateral('alice'), await collateral('bob')]).toEqual(before)
    // Compaction folded the log into a snapshot of the compacted document. (Every id here is
    // recent, so the checkpoint still recognises all of them: scripts/bench/checkpoint.ts
    // measures what an old history shrinks to.)
    expect((await stub.status()).storage).toMatchObject({ logRows: 0, snapshot: { generation: 1 } })

    // Nothing more to cut for this epoch; a retry of a folded id replays, a new one counts.
    expect((await stub.checkpoint(7)).written).toBeNull()
    const replay = await stub.deposit(depositOf('alice', 'd0', usd(5)))
    expect(replay.ok && replay.value.replayed).toBe(true)
    const retried = await stub.withdraw(withdrawalOf('alice', 'w1', usd(7)))
    expect(retried.ok && retried.value.replayed).toBe(true)
    const conflict = await stub.deposit({ ...depositOf('alice', 'd0', usd(5)), requestDigest: 'x' })
    expect(!conflict.ok && conflict.code).toBe('idempotency_conflict')
    await stub.deposit(depositOf('alice', 'd-new', usd(1)))
    // The reconciler's audit starts from the openings: the folded history is no violation.
    expect(await stub.audit()).toEqual([])

    // The ledger shows the folded history as one opening balance, then what came after.
    const page = await stub.ledger('alice', null, 10)
    if (!page.ok) throw new Error(page.message)
    expect(page.value.value.entries.map((e) => [e.kind, e.amount])).toEqual([
      ['opening_balance', '93'],
      ['deposit', '1'],
    ])

    await evictDurableObject(stub)
    expect(await collateral('alice')).toEqual(['94', { a: '94' }])
    expect(await collateral('bob')).toEqual(before[1])
    expect((await stub.checkpointState()).inForce?.root).toBe(state.inForce!.root)
  })
})
