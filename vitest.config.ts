// Three projects: pure code in Node, code inside the Workers runtime, and whole nodes driven from
// outside (real processes, sockets, kills).

import { readFileSync } from 'node:fs'
import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'

/** The default catalog plus SOL-PERP, matched on another node, to exercise order routing. */
const testInstruments = readFileSync(
  new URL('./test/support/instruments.json', import.meta.url),
  'utf8',
)

export const testSecrets = {
  ADMIN_TOKEN: 'test-admin-token-0123456789',
  KEY_SECRET: 'test-key-secret-0123456789',
  /** The operator's Ed25519 key (base64url PKCS#8): deposits and breakers are signed with it. */
  OPERATOR_SIGNING_KEY: 'MC4CAQAwBQYDK2VwBCIEIE0jQhVUcmaYU3lJb1GYFpKNdR6bywBi7aehJu8e66lt',
}

export default defineConfig({
  test: {
    // The Worker under test logs one JSON line per request: kept out of the test report.
    onConsoleLog: (log) => !log.startsWith('{"msg":"request"'),
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'test/domain/**/*.test.ts',
            'test/state/**/*.test.ts',
            'test/mesh/**/*.test.ts',
            'test/chaos/**/*.test.ts',
            'test/metrics/**/*.test.ts',
            'test/client/**/*.test.ts',
            'test/scripts/**/*.test.ts',
          ],
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              // No checkpoints unless a test asks: the runtime tests read whole histories.
              bindings: {
                ...testSecrets,
                SHARD_COUNT: '4',
                INSTRUMENTS: testInstruments,
                CHECKPOINT_INTERVAL_MS: '0',
              },
            },
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
