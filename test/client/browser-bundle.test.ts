// The SDK runs in browsers: it bundles for the browser platform with nothing left to import (no
// Node built-in, no server module: only signing, and the pure proof check with its Merkle code and
// lib0's SHA-256), and the staleness of a read is what its `reflects` says.

import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'
import { staleness } from '../../src/client'

describe('the client SDK in a browser', () => {
  it('bundles for the browser with no import left over', async () => {
    const result = await build({
      entryPoints: ['src/client/index.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    })
    const inputs = Object.keys(result.metafile.inputs)
    expect(
      inputs.filter(
        (input) =>
          !/^src\/(client|api\/signing|hmac|clock|state\/state-proof|domain\/(merkle|canonical|result))\b/.test(
            input,
          ) && !/^node_modules\/lib0\/(binary|hash\/sha256)\.js$/.test(input),
      ),
    ).toEqual([])
    const output = Object.values(result.metafile.outputs)[0]!
    expect(output.imports).toEqual([])
  })
})

describe('staleness', () => {
  it('says which node answered, whether anything was pending, the digests, and the age', () => {
    const reflects = {
      node: 'b',
      at: 1_000,
      shards: [
        { shard: 'b/shard/1', stateVectorDigest: 'aa', pending: false },
        { shard: 'b/market/BTC-PERP', stateVectorDigest: 'bb', pending: true },
      ],
    }
    expect(staleness(reflects, 1_250)).toEqual({
      node: 'b',
      pending: true,
      digests: { 'b/shard/1': 'aa', 'b/market/BTC-PERP': 'bb' },
      ageMs: 250,
    })
  })
})
