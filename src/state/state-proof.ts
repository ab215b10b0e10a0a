// A signed state proof of one account (GET /v1/account/proof) and its check, which a client runs
// without trusting the node that served it: the account's leaf, its Merkle path to the root of an
// epoch checkpoint, and the signatures of the nodes that acknowledged that root. The check needs
// only Web Crypto (Ed25519) and the pure Merkle code, so it runs in browsers, Node and Workers.
//
// A client learns the nodes' public keys from the operator (each node reports its own as
// `nodeKey` in GET /v1/mesh/status); it must not take them from the proof, which anyone could
// fill with keys of their own.

import * as merkle from '../domain/merkle'
import { ok, reject, type Result } from '../domain/result'

export type NodeSignature = { node: string; publicKey: string; signature: string }

export type AccountProof = {
  shard: number
  epoch: number
  /** The writer's clock when the checkpoint's cut was taken. */
  cutTime: number
  root: string
  leaf: merkle.Leaf
  path: merkle.ProofStep[]
  signatures: NodeSignature[]
}

export type VerifiedProof = {
  accountId: string
  balance: string
  epoch: number
  /** The trusted nodes whose signatures over the root verified. */
  signedBy: string[]
}

/** The smallest majority of `nodeCount` nodes. */
export const majorityOf = (nodeCount: number): number => Math.floor(nodeCount / 2) + 1

const base64urlBytes = (text: string): Uint8Array<ArrayBuffer> | undefined => {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  return Uint8Array.from(binary, (char) => char.charCodeAt(0))
}

async function signatureVerifies(publicKey: string, content: string, signature: string) {
  const key = base64urlBytes(publicKey)
  const bytes = base64urlBytes(signature)
  if (key?.byteLength !== 32 || bytes?.byteLength !== 64) return false
  const imported = await crypto.subtle.importKey('raw', key, { name: 'Ed25519' }, false, ['verify'])
  return crypto.subtle.verify(
    { name: 'Ed25519' },
    imported,
    bytes,
    new TextEncoder().encode(content),
  )
}

/**
 * Checks `proof` against the nodes the client trusts (node id → Ed25519 public key, base64url):
 * the leaf's path must lead to the root, and at least `quorum` trusted nodes (never fewer than a
 * majority of them) must have signed (shard, epoch, root) with their own keys.
 */
export async function verifyAccountProof(
  proof: AccountProof,
  trustedNodeKeys: Readonly<Record<string, string>>,
  quorum: number = majorityOf(Object.keys(trustedNodeKeys).length),
): Promise<Result<VerifiedProof, 'invalid_proof'>> {
  const needed = Math.max(quorum, majorityOf(Object.keys(trustedNodeKeys).length))
  if (!merkle.verify(proof.leaf, proof.path, proof.root)) {
    return reject('invalid_proof', "the leaf's path does not lead to the signed root")
  }
  const content = merkle.checkpointSignedContent(proof.shard, proof.epoch, proof.root)
  const signedBy = new Set<string>()
  for (const { node, publicKey, signature } of proof.signatures) {
    const trusted = trustedNodeKeys[node]
    if (trusted === undefined || trusted !== publicKey || signedBy.has(node)) continue
    if (await signatureVerifies(trusted, content, signature)) signedBy.add(node)
  }
  if (signedBy.size < needed) {
    return reject(
      'invalid_proof',
      `${signedBy.size} trusted node(s) signed the root; ${needed} are needed`,
    )
  }
  return ok({
    accountId: proof.leaf.accountId,
    balance: proof.leaf.balance,
    epoch: proof.epoch,
    signedBy: [...signedBy].sort(),
  })
}
