// API key ids name their account (`<accountId>.<random>`), so a request's key is looked up in the
// account's own shard: one shard serves the whole request and no directory is needed.

import { idLengthMax, idPattern } from '../constants'

const randomHex = (bytes: number): string =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('')

export const newKeyId = (accountId: string): string => `${accountId}.${randomHex(10)}`

/** The account a key id belongs to, or undefined when the id is not of the key id form. */
export function accountOfKeyId(keyId: string): string | undefined {
  const dot = keyId.lastIndexOf('.')
  if (dot < 1 || keyId.length > idLengthMax + 21) return undefined
  const accountId = keyId.slice(0, dot)
  const random = keyId.slice(dot + 1)
  if (!idPattern.test(accountId) || accountId.length > idLengthMax) return undefined
  return /^[0-9a-f]{20}$/.test(random) ? accountId : undefined
}

export { randomHex }
