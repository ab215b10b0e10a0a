// The operator's Ed25519 signature on entries that bring money or commands into the mesh from
// outside it: deposits and circuit breakers. A node holding the mesh secret can still send
// anything, but only the operator's key can sign, so a rogue or compromised peer cannot mint
// money or halt a market: every node verifies the signature of every such entry a peer sends.
//
// What is signed is the entry as stored, every field but the signature, in the canonical form of
// request digests (its [field, value] pairs sorted by field), after a prefix naming the map it is
// written to, so a signature made for one kind of entry is never valid for another.
//
// Signing and verifying happen inside the Yjs transaction that writes or applies the entry, which
// is synchronous, so they go through node:crypto's one-shot sign/verify (BoringSSL's Ed25519 in
// workerd, OpenSSL's in Node; WebCrypto's is only asynchronous). Keys travel as base64url: the
// signing key as PKCS#8 DER, the public key as its raw 32 bytes (a JWK's `x`).

import { Buffer } from 'node:buffer'
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto'
import { canonicalJson } from '../domain/canonical'

/** Maps whose entries carry the operator's signature, in every document that has them. */
export type SignedMap = 'transfers' | 'breakers'

const prefix = 'clearmesh/operator/v1'

export const signedContent = (map: SignedMap, entry: Record<string, unknown>): Buffer => {
  const { signature: _signature, ...fields } = entry
  return Buffer.from(`${prefix}/${map}\n${canonicalJson(fields)}`)
}

// A node uses one key of each kind: parse it once.
const signingKeys = new Map<string, KeyObject>()
const publicKeys = new Map<string, KeyObject>()

const signingKeyOf = (signingKey: string): KeyObject => {
  let key = signingKeys.get(signingKey)
  if (key === undefined) {
    key = createPrivateKey({
      key: Buffer.from(signingKey, 'base64url'),
      format: 'der',
      type: 'pkcs8',
    })
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error('the operator signing key is not Ed25519')
    signingKeys.set(signingKey, key)
  }
  return key
}

const publicKeyOf = (publicKey: string): KeyObject => {
  let key = publicKeys.get(publicKey)
  if (key === undefined) {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' })
    publicKeys.set(publicKey, key)
  }
  return key
}

/** The base64url Ed25519 signature of `content` by `signingKey` (base64url PKCS#8). */
export const signContent = (signingKey: string, content: string | Buffer): string =>
  sign(null, Buffer.from(content), signingKeyOf(signingKey)).toString('base64url')

/** Whether `signature` (base64url) is `publicKey`'s Ed25519 signature of `content`. */
export function verifiedContent(
  publicKey: string,
  content: string | Buffer,
  signature: unknown,
): boolean {
  if (typeof signature !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(signature)) return false
  if (!/^[A-Za-z0-9_-]{43}$/.test(publicKey)) return false
  return verify(
    null,
    Buffer.from(content),
    publicKeyOf(publicKey),
    Buffer.from(signature, 'base64url'),
  )
}

/** The base64url signature of `entry` (written to `map`) by the operator's signing key. */
export const seal = (signingKey: string, map: SignedMap, entry: Record<string, unknown>): string =>
  signContent(signingKey, signedContent(map, entry))

/** Whether `entry` carries a signature of its content by the operator's public key. */
export const verified = (
  publicKey: string,
  map: SignedMap,
  entry: Record<string, unknown>,
): boolean => verifiedContent(publicKey, signedContent(map, entry), entry.signature)

/** The public key (base64url, raw) of a signing key; throws if it is not an Ed25519 key. */
export const publicKeyOfSigningKey = (signingKey: string): string =>
  String(createPublicKey(signingKeyOf(signingKey)).export({ format: 'jwk' }).x)

/** PKCS#8 DER of an Ed25519 private key: this fixed prefix, then the 32-byte seed (RFC 8410). */
const pkcs8Ed25519Prefix = Buffer.from('302e020100300506032b657004220420', 'hex')

/** The signing key (base64url PKCS#8) whose seed is `seed` (32 bytes). */
export function signingKeyOfSeed(seed: Uint8Array): string {
  if (seed.byteLength !== 32) throw new Error('an Ed25519 seed has 32 bytes')
  return Buffer.concat([pkcs8Ed25519Prefix, seed]).toString('base64url')
}

/** A new operator key pair (the node runner generates one for a local mesh). */
export function generateOperatorKey(): { signingKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return {
    signingKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url'),
    publicKey: String(publicKey.export({ format: 'jwk' }).x),
  }
}
