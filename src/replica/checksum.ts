import { createHash } from 'node:crypto'

/** SHA-256 truncated to 128 bits, hex: detects corrupt or truncated stored bytes. */
export const checksum = (...parts: Uint8Array[]): string => {
  const hash = createHash('sha256')
  for (const part of parts) hash.update(part)
  return hash.digest('hex').slice(0, 32)
}
