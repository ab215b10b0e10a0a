// Three projects: pure code in Node, code inside the Workers runtime, and whole nodes driven from
// outside (real processes, sockets, kills).

import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'

export const testSecrets = {
  ADMIN_TOKEN: 'test-admin-token-0123456789',
  KEY_SECRET: 'test-key-secret-0123456789',
}

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/domain/**/*.test.ts', 'test/state/**/*.test.ts'] } },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: { bindings: { ...testSecrets, SHARD_COUNT: '4' } },
          }),
        ],
        test: { name: 'runtime', include: ['test/replica/**/*.test.ts', 'test/api/**/*.test.ts'] },
      },
      {
        test: {
          name: 'nodes',
          include: ['test/nodes/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
