// A shard whose stored bytes fail their checksum refuses to serve while it repairs: the API answers 503 (retryable,
// not executed) with the one error envelope, changes nothing, and other shards keep serving.
// Its own file: the damage must not leak into other tests' shards.

import { evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { shardOf } from '../../src/state/shard-of'
import {
  accountOf,
  accountShardOf,
  api,
  bindings,
  expectRejectedUnchanged,
  newAccount,
  setUpApiTests,
  shardCount,
  shardFingerprints,
  uid,
} from './helpers'

setUpApiTests()

/** An account id that lands on `shard` (ids are hashed into shards). */
function idOnShard(shard: number, prefix: string): string {
  for (;;) {
    const id = uid(prefix)
    if (shardOf(id, shardCount) === shard) return id
  }
}

describe('a damaged shard', () => {
  it('answers 503 shard_damaged, retryable and not executed, and changes nothing', async () => {
    const victim = await newAccount('100', undefined, 'victim')
    const shard = shardOf(victim.accountId, shardCount)
    const shardName = accountShardOf((await accountOf(victim.key)).reflects).shard
    expect(shardName).toBe(`a/shard/${shard}`)
    // A second account on the same shard and a funded one on another shard.
    const neighbour = idOnShard(shard, 'neighbour')
    expect((await api.admin('POST', '/v1/admin/accounts', { accountId: neighbour })).status).toBe(
      201,
    )
    const elsewhereId = idOnShard((shard + 1) % shardCount, 'elsewhere')
    const elsewhere = { key: await api.fundedAccount(elsewhereId, '100') }

    // Flip the checksum of the shard's last logged update, then reload the shard from storage.
    const stub = bindings.SHARD.get(bindings.SHARD.idFromName(shardName))
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec(
        "UPDATE update_log SET checksum = 'ffffffffffffffffffffffffffffffff' WHERE seq = (SELECT MAX(seq) FROM update_log)",
      )
    })
    await evictDurableObject(stub)

    const status = (await api.admin('GET', '/v1/admin/shards')).body.shards.find(
      (s: { shard: string }) => s.shard === shardName,
    )
    expect(status.damage).toEqual(expect.objectContaining({ where: expect.any(String) }))
    // It keeps what verifies and repairs from its peers; this node has none, so it stays so.
    expect(status.repair).toMatchObject({ state: 'repairing', peersNeeded: 1 })

    const damaged = { status: 503, code: 'shard_damaged', retryable: true }
    // Soft, so that every route's envelope is reported.
    const notExecuted = (reply: { body: any }) =>
      expect
        .soft(reply.body.error, 'executionStatus')
        .toHaveProperty('executionStatus', 'not_executed')

    notExecuted(
      await expectRejectedUnchanged(
        () =>
          api.admin('POST', '/v1/admin/deposits', {
            depositId: uid('dep'),
            accountId: neighbour,
            asset: 'USD',
            amount: '5',
            signedAt: Date.now(),
          }),
        damaged,
      ),
    )
    notExecuted(
      await expectRejectedUnchanged(
        () => api.admin('POST', '/v1/admin/accounts', { accountId: idOnShard(shard, 'new') }),
        damaged,
      ),
    )
    notExecuted(
      await expectRejectedUnchanged(
        () => api.admin('POST', `/v1/admin/accounts/${neighbour}/keys`, { scopes: ['read'] }),
        damaged,
      ),
    )
    notExecuted(
      await expectRejectedUnchanged(
        () =>
          api.signed(victim.key, 'POST', '/v1/withdrawals', {
            withdrawalId: uid('wd'),
            asset: 'USD',
            amount: '1',
          }),
        damaged,
      ),
    )
    for (const path of ['/v1/account', '/v1/ledger']) {
      notExecuted(await expectRejectedUnchanged(() => api.signed(victim.key, 'GET', path), damaged))
    }

    // The other shards keep serving, reads and writes.
    const before = await shardFingerprints()
    expect((await accountOf(elsewhere.key)).collateral).toBe('100')
    const written = await api.signed(elsewhere.key, 'POST', '/v1/withdrawals', {
      withdrawalId: uid('wd'),
      asset: 'USD',
      amount: '1',
    })
    expect(written.status).toBe(201)
    const after = await shardFingerprints()
    expect(after.find((s) => s.shard === shardName)).toEqual(
      before.find((s) => s.shard === shardName),
    )
  })
})
