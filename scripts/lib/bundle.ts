// Bundles the Worker entry the way wrangler does for workerd: one ES module, runtime modules
// (`cloudflare:*`, `node:*`) left for workerd to provide. A restart reuses the previous bundle when
// none of its input files changed (a second or more of a restart on a busy machine).

import { build, stop, type BuildOptions } from 'esbuild'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'

const options = (entry: string, outfile: string): BuildOptions => ({
  entryPoints: [entry],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  // Same resolution order as wrangler: packages with a workerd build (lib0, yjs) pick it.
  conditions: ['workerd', 'worker', 'browser'],
  mainFields: ['module', 'main'],
  external: ['cloudflare:*', 'node:*'],
  sourcemap: 'linked',
  logLevel: 'warning',
  metafile: true,
})

/** Size and mtime of every input file, keyed by absolute path: what the bundle was built from. */
type Inputs = Record<string, [size: number, mtimeMs: number]>

export async function bundleWorker(entry: string, outfile: string): Promise<'built' | 'reused'> {
  const inputsFile = `${outfile}.inputs.json`
  const settings = JSON.stringify({ ...options(entry, outfile), metafile: undefined })
  if (await unchanged(inputsFile, settings, outfile)) return 'reused'
  const result = await build(options(entry, outfile))
  // esbuild keeps a service child process alive; a node never bundles again, so end it.
  await stop()
  const inputs = await fingerprint(
    Object.keys(result.metafile?.inputs ?? {}).map((p) => resolve(p)),
  )
  await writeFile(inputsFile, JSON.stringify({ settings, inputs }))
  return 'built'
}

async function unchanged(inputsFile: string, settings: string, outfile: string): Promise<boolean> {
  let recorded: { settings: string; inputs: Inputs }
  try {
    recorded = JSON.parse(await readFile(inputsFile, 'utf8')) as typeof recorded
    await stat(outfile)
  } catch {
    return false // no previous build
  }
  if (recorded.settings !== settings) return false
  const now = await fingerprint(Object.keys(recorded.inputs))
  return Object.entries(recorded.inputs).every(
    ([path, [size, mtimeMs]]) => now[path]?.[0] === size && now[path]?.[1] === mtimeMs,
  )
}

async function fingerprint(paths: string[]): Promise<Inputs> {
  const entries = await Promise.all(
    paths.map(async (path) => {
      try {
        const info = await stat(path)
        return [path, [info.size, info.mtimeMs]] satisfies [string, Inputs[string]]
      } catch {
        return [path, [-1, -1]] satisfies [string, Inputs[string]] // deleted since: never matches
      }
    }),
  )
  return Object.fromEntries(entries)
}
