// What a local node needs from wrangler.toml, read through wrangler itself so the runner never
// disagrees with `wrangler deploy` about the compatibility date, flags, vars or Durable Objects.
// Importing wrangler costs ~2.5 s here (half a node's start), so the extracted keys are cached,
// keyed by the file's path and content: only the first start after an edit pays for it.

import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'

export type WorkerConfig = {
  name: string
  /** Absolute path of the Worker's entry module. */
  main: string
  compatibilityDate: string
  compatibilityFlags: string[]
  /** Plain-text vars only: every binding of a node is a string. */
  vars: Record<string, string>
  durableObjects: Record<string, { className: string; useSQLite: boolean }>
}

export async function loadWorkerConfig(
  configPath: string,
  cacheDir: string,
): Promise<WorkerConfig> {
  const source = await readFile(configPath)
  const key = createHash('sha256')
    .update(resolve(configPath))
    .update('\0')
    .update(source)
    .digest('hex')
  const cacheFile = join(cacheDir, 'worker-config.json')
  const cached = await readCache(cacheFile, key)
  if (cached !== undefined) return cached
  const config = await readWorkerConfig(configPath)
  await writeCache(cacheFile, { key, config })
  return config
}

type CacheEntry = { key: string; config: WorkerConfig }

async function readCache(file: string, key: string): Promise<WorkerConfig | undefined> {
  try {
    const entry = JSON.parse(await readFile(file, 'utf8')) as CacheEntry
    return entry.key === key ? entry.config : undefined
  } catch {
    return undefined // missing or unreadable: read wrangler.toml again
  }
}

async function writeCache(file: string, entry: CacheEntry): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true })
  // Write then rename, so a node starting concurrently never reads half a file.
  const temporary = `${file}.${randomBytes(6).toString('hex')}`
  await writeFile(temporary, JSON.stringify(entry))
  await rename(temporary, file)
}

export async function readWorkerConfig(configPath: string): Promise<WorkerConfig> {
  const wrangler = await import('wrangler')
  const config = wrangler.unstable_readConfig({ config: configPath })
  if (config.main === undefined) throw new Error(`${configPath} has no "main" entry`)
  if (config.compatibility_date === undefined) {
    throw new Error(`${configPath} has no "compatibility_date"`)
  }
  // Migrations decide which classes are SQLite-backed, exactly as on Cloudflare.
  const sqliteClasses = wrangler.unstable_getDurableObjectClassNameToUseSQLiteMap(config.migrations)
  return {
    name: config.name ?? 'clearmesh',
    main: config.main,
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    vars: Object.fromEntries(
      Object.entries(config.vars).filter((entry): entry is [string, string] => {
        return typeof entry[1] === 'string'
      }),
    ),
    durableObjects: Object.fromEntries(
      config.durable_objects.bindings.map((binding: { name: string; class_name: string }) => [
        binding.name,
        {
          className: binding.class_name,
          useSQLite: sqliteClasses.get(binding.class_name) ?? false,
        },
      ]),
    ),
  }
}
