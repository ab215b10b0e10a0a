// Deposits and breakers taken through the admin API carry the operator's signature, made where
// the entry is written and verifiable with the operator's public key alone: what every peer checks.

import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { readConfig, type Env } from '../../src/config'
import { accountStub } from '../../src/replica/addressing'
import { verified } from '../../src/state/operator-signature'
import { api, deposit, newAccount, setUpApiTests, uid } from './helpers'

setUpApiTests()

const config = readConfig(env as unknown as Env)

describe('operator signatures through the admin API', () => {
  it('a deposit is stored signed with its signedAt, and verifies with the public key', async () => {
    const { accountId } = await newAccount('0')
    const depositId = uid('dep')
    const before = Date.now()
    await deposit(accountId, '12.5', depositId)
    const stored = await accountStub(env as unknown as Env, config, accountId).transfer(
      `deposit/${accountId}/${depositId}`,
    )
    expect(stored.ok).toBe(true)
    if (!stored.ok) return
    const transfer = stored.value.value
    expect(transfer).toMatchObject({ kind: 'deposit', to: accountId, amount: '12.5' })
    expect(transfer.signedAt).toBeGreaterThanOrEqual(before)
    expect(transfer.signedAt).toBeLessThanOrEqual(Date.now())
    expect(verified(config.operatorPublicKey, 'transfers', transfer)).toBe(true)
    expect(verified(config.operatorPublicKey, 'transfers', { ...transfer, amount: '13' })).toBe(
      false,
    )
    // The signed time is signed: a peer cannot make a deposit look newer (kept longer) or older.
    const { signedAt: _signedAt, ...untimed } = transfer
    for (const forged of [{ ...transfer, signedAt: transfer.signedAt! + 1 }, untimed]) {
      expect(verified(config.operatorPublicKey, 'transfers', forged)).toBe(false)
    }
  })

  it('a breaker is answered and stored signed', async () => {
    const set = await api.admin('POST', '/v1/admin/breakers', {
      scope: 'instrument',
      instrument: 'ETH-PERP',
      mode: 'normal',
      reason: 'signature check',
    })
    expect(set.status, JSON.stringify(set.body)).toBe(201)
    expect(verified(config.operatorPublicKey, 'breakers', set.body)).toBe(true)
  })
})
