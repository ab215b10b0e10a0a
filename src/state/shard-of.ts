// Stable placement of accounts into shard documents: FNV-1a over the account id's UTF-8 bytes,
// then murmur3's finaliser.
// Every node and every version must agree on it, so it never changes for a given shard count.

import { assert } from '../domain/assert'
import { shardCountMax } from '../constants'

const fnvOffset = 0x811c9dc5
const fnvPrime = 0x01000193
const encoder = new TextEncoder()

export function shardOf(accountId: string, shardCount: number): number {
  assert(Number.isInteger(shardCount), 'shard count is an integer')
  assert(shardCount >= 1 && shardCount <= shardCountMax, 'shard count within bounds')
  let hash = fnvOffset
  for (const byte of encoder.encode(accountId)) {
    hash = Math.imul(hash ^ byte, fnvPrime) >>> 0
  }
  // FNV-1a's low bits depend only on the bytes' low bits ("user-a" and "user-q" would share a
  // shard); murmur3's finaliser mixes every bit into every other before the modulo.
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b) >>> 0
  hash ^= hash >>> 13
  hash = Math.imul(hash, 0xc2b2ae35) >>> 0
  hash ^= hash >>> 16
  return (hash >>> 0) % shardCount
}
