// Development secrets of a local node: taken from the environment, else kept in a file of the
// data folder so that a restart keeps the admin token and, above all, the key secret (API key
// secrets are derived from it; a new one would invalidate every issued key) and the operator's
// signing key (every deposit and breaker is signed with it; peers verify them by its public key).

import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { derivedNodeSigningKey } from '../../src/config'
import { generateOperatorKey, publicKeyOfSigningKey } from '../../src/state/operator-signature'

/** A new operator signing key (base64url PKCS#8 Ed25519), for `resolveSecret`. */
export const newOperatorSigningKey = (): string => generateOperatorKey().signingKey

/**
 * NODE_PUBLIC_KEYS of a local mesh whose nodes `ids` derive their node keys from `keySecret` (no
 * NODE_SIGNING_KEY): every node pins every node's key (CLEARMESH_NODE_PUBLIC_KEYS of scripts/node.ts).
 */
export const pinnedNodeKeys = (keySecret: string, ids: readonly string[]): string =>
  ids.map((id) => `${id}=${publicKeyOfSigningKey(derivedNodeSigningKey(keySecret, id))}`).join(',')

export type Secret = { value: string; source: 'env' | 'file' | 'generated'; file: string }

/** Length the Worker's config check requires (src/config.ts). */
const secretLengthMin = 16

/** The secret from the environment, else from `file`, else a new one (`generate`) kept there. */
export async function resolveSecret(
  envValue: string | undefined,
  file: string,
  generate: () => string = () => randomBytes(24).toString('base64url'),
): Promise<Secret> {
  if (envValue !== undefined && envValue !== '') return { value: envValue, source: 'env', file }
  const stored = await readSecretFile(file)
  if (stored !== undefined) return { value: stored, source: 'file', file }
  const generated = generate()
  await mkdir(dirname(file), { recursive: true })
  try {
    // Exclusive create: when two processes race on a fresh folder, both end with the same secret.
    await writeFile(file, `${generated}\n`, { flag: 'wx', mode: 0o600 })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    const winner = await readSecretFile(file)
    if (winner === undefined) throw new Error(`${file} exists but holds no secret`)
    return { value: winner, source: 'file', file }
  }
  return { value: generated, source: 'generated', file }
}

async function readSecretFile(file: string): Promise<string | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
  const value = text.trim()
  if (value.length < secretLengthMin) {
    throw new Error(`${file} must hold a secret of at least ${secretLengthMin} characters`)
  }
  return value
}
