// The SDK's proven balance against a fake node: a proof signed by a majority of the trusted nodes
// is accepted with its balance; a proof whose balance was changed, or signed by keys the client
// does not trust, is refused with `invalid_proof` and never read as the balance.

import { describe, expect, it } from 'vitest'
import { ClearmeshError, createClient, type AccountProof } from '../../src/client'
import * as merkle from '../../src/domain/merkle'

const base64url = (bytes: ArrayBuffer | JsonWebKey) =>
  Buffer.from(bytes as ArrayBuffer)
    .toString('base64')
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')

async function nodeKey() {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair
  const publicKey = base64url(await crypto.subtle.exportKey('raw', pair.publicKey))
  const sign = async (content: string) =>
    base64url(
      await crypto.subtle.sign(
        { name: 'Ed25519' },
        pair.privateKey,
        new TextEncoder().encode(content),
      ),
    )
  return { publicKey, sign }
}

const leaves = [
  { accountId: 'acc-1', balance: '93' },
  { accountId: 'acc-2', balance: '10' },
  { accountId: 'acc-3', balance: '0.5' },
]

async function signedProof(signers: { node: string; key: Awaited<ReturnType<typeof nodeKey>> }[]) {
  const included = merkle.proof(leaves, 'acc-1')!
  const content = merkle.checkpointSignedContent(2, 7, included.root)
  return {
    shard: 2,
    epoch: 7,
    cutTime: 1_700_000_000_000,
    ...included,
    reflects: { node: 'a', shards: [], at: 1_700_000_000_000 },
    signatures: await Promise.all(
      signers.map(async ({ node, key }) => ({
        node,
        publicKey: key.publicKey,
        signature: await key.sign(content),
      })),
    ),
  } satisfies AccountProof
}

const clientServing = (proof: AccountProof) =>
  createClient({
    nodes: ['http://a.test'],
    fetch: async () => Response.json(proof, { status: 200 }),
    apiKey: { keyId: 'acc-1.0123456789abcdef0123', secret: 'key-secret' },
  })

describe('the proven balance', async () => {
  const keys = { a: await nodeKey(), b: await nodeKey(), c: await nodeKey() }
  const trusted = { a: keys.a.publicKey, b: keys.b.publicKey, c: keys.c.publicKey }

  it('accepts a proof two of three trusted nodes signed, with its balance', async () => {
    const proof = await signedProof([
      { node: 'a', key: keys.a },
      { node: 'b', key: keys.b },
    ])
    const { value } = await clientServing(proof).trading.provenBalance(trusted)
    expect(value).toEqual({ accountId: 'acc-1', balance: '93', epoch: 7, signedBy: ['a', 'b'] })
  })

  it('refuses a proof whose balance was changed', async () => {
    const proof = await signedProof([
      { node: 'a', key: keys.a },
      { node: 'b', key: keys.b },
    ])
    const forged = { ...proof, leaf: { ...proof.leaf, balance: '9300' } }
    const refused = await clientServing(forged)
      .trading.provenBalance(trusted)
      .catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(ClearmeshError)
    expect(refused).toMatchObject({ code: 'invalid_proof', retryable: false })
  })

  it('refuses a proof signed by one trusted node and a key it does not trust', async () => {
    const stranger = await nodeKey()
    const proof = await signedProof([
      { node: 'a', key: keys.a },
      { node: 'b', key: stranger },
    ])
    const refused = await clientServing(proof)
      .trading.provenBalance(trusted)
      .catch((error: unknown) => error)
    expect(refused).toMatchObject({
      code: 'invalid_proof',
      message: '1 trusted node(s) signed the root; 2 are needed',
    })
  })
})
