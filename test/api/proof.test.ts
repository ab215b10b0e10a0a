// GET /v1/account/proof: the caller's balance at the epoch checkpoint in force on its shard, with
// a Merkle path and the nodes' signatures a client checks with verifyAccountProof; a proof whose
// leaf, path, root or signatures were tampered with, or that too few trusted nodes signed, is
// refused.

import { describe, expect, it } from 'vitest'
import { readConfig } from '../../src/config'
import { accountStub } from '../../src/replica/addressing'
import { verifyAccountProof, type AccountProof } from '../../src/state/state-proof'
import { api, bindings, deposit, newAccount, setUpApiTests } from './helpers'

setUpApiTests()

const config = readConfig(bindings)
/** Epochs only grow on a shard: each test cuts one later than any before. */
let epoch = Math.floor(Date.now() / 1_000)

describe('GET /v1/account/proof', () => {
  it('is 404 until a checkpoint of the shard is in force, then proves the balance', async () => {
    const { accountId, key } = await newAccount('100')
    const stub = accountStub(bindings, config, accountId)
    // The first test of the file: its storage is fresh, so no checkpoint is in force yet.
    expect((await stub.checkpointState()).inForce).toBeNull()
    const none = await api.signed(key, 'GET', '/v1/account/proof')
    expect(none.status).toBe(404)
    expect(none.body.error).toMatchObject({ code: 'not_found', retryable: false })
    expect((await stub.checkpoint(++epoch)).acknowledged).toBe(epoch)
    await deposit(accountId, '5')

    const reply = await api.signed(key, 'GET', '/v1/account/proof')
    expect(reply.status, JSON.stringify(reply.body)).toBe(200)
    const proof = reply.body as AccountProof
    expect(proof).toMatchObject({ epoch, leaf: { accountId, balance: '100' } })
    const status = await api.admin('GET', '/v1/mesh/status')
    const trusted = { [status.body.node]: status.body.nodeKey }
    const verified = await verifyAccountProof(proof, trusted)
    expect(verified).toEqual({
      ok: true,
      value: { accountId, balance: '100', epoch, signedBy: ['a'] },
    })
    // The deposit after the cut is in the account's figures, not in the proven balance.
    const account = await api.signed(key, 'GET', '/v1/account')
    expect(account.body.collateral).toBe('105')
  })

  it('refuses a proof whose leaf, path, root or signatures do not check', async () => {
    const { accountId, key } = await newAccount('42')
    const stub = accountStub(bindings, config, accountId)
    await stub.checkpoint(++epoch)
    const proof = (await api.signed(key, 'GET', '/v1/account/proof')).body as AccountProof
    const nodeKey = proof.signatures[0]!.publicKey
    const trusted = { a: nodeKey }
    expect((await verifyAccountProof(proof, trusted)).ok).toBe(true)

    const refused = async (tampered: AccountProof, keys: Record<string, string> = trusted) => {
      const result = await verifyAccountProof(tampered, keys)
      expect(result.ok).toBe(false)
      return result.ok ? '' : result.message
    }
    expect(await refused({ ...proof, leaf: { accountId, balance: '1000000' } })).toMatch(/path/)
    expect(await refused({ ...proof, root: '0'.repeat(64) })).toMatch(/path/)
    if (proof.path.length > 0) {
      const forged = [{ ...proof.path[0]!, hash: 'f'.repeat(64) }, ...proof.path.slice(1)]
      expect(await refused({ ...proof, path: forged })).toMatch(/path/)
    }
    // Another epoch's signature, a signature by a key the client does not trust, no signature.
    expect(await refused({ ...proof, epoch: proof.epoch + 1 })).toMatch(/0 trusted/)
    expect(await refused(proof, { a: 'A'.repeat(43) })).toMatch(/0 trusted/)
    expect(await refused({ ...proof, signatures: [] })).toMatch(/0 trusted/)
    const flipped = proof.signatures[0]!.signature.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))
    const badSignature = [{ ...proof.signatures[0]!, signature: flipped }]
    expect(await refused({ ...proof, signatures: badSignature })).toMatch(/0 trusted/)
    // One signature of two trusted nodes is no majority, whatever quorum the caller asks for.
    expect(await refused(proof, { a: nodeKey, b: nodeKey })).toMatch(/1 trusted.*2 are needed/)
    const lowQuorum = await verifyAccountProof(proof, { a: nodeKey, b: nodeKey }, 1)
    expect(lowQuorum.ok).toBe(false)
  })
})
