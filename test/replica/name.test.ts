// A replica woken by an alarm is not told its name; it must find it in its own storage, or its
// status and its mesh links would name the wrong document.

import { runInDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { expect, it } from 'vitest'
import type { Env } from '../../src/config'
import * as storage from '../../src/replica/shard-storage'

it('remembers the name it was first addressed by', async () => {
  const bindings = env as unknown as Env
  const stub = bindings.SHARD.get(bindings.SHARD.idFromName('a/shard/2'))
  expect((await stub.status()).shard).toBe('a/shard/2')
  await runInDurableObject(stub, (_instance, state) => {
    expect(storage.rememberName(state.storage.sql, undefined)).toBe('a/shard/2')
    // A later, different name never replaces the first.
    expect(storage.rememberName(state.storage.sql, 'other')).toBe('other')
    expect(storage.rememberName(state.storage.sql, undefined)).toBe('a/shard/2')
  })
})
