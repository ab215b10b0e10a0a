// The backup follower's files (scripts/lib/backup-store.ts): every appended update survives a
// reload and a compaction; a log cut at any byte loads as the records before the cut, and the cut
// is repaired so later appends load too; a damaged record with good ones after it is refused.

import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  compactLogBytesMin,
  loadDocument,
  openDocumentStore,
  readRecords,
  storedDocuments,
} from '../../scripts/lib/backup-store'

const doc = 'shard/2'
const logPath = (folder: string) => join(folder, 'shard~2.log')

/** An update adding `count` entries `key-i` (of `bytes` characters each) to a fresh writer's map. */
function updateOf(key: string, count: number, bytes = 16): Uint8Array {
  const writer = new Y.Doc()
  const entries = writer.getMap('entries')
  writer.transact(() => {
    for (let i = 0; i < count; i++) entries.set(`${key}-${i}`, 'x'.repeat(bytes))
  })
  return Y.encodeStateAsUpdate(writer)
}

/** Opens the store of `folder`, appends one update per key in turn, and closes it. */
async function appendEach(folder: string, keys: string[]): Promise<void> {
  const store = await openDocumentStore(folder, await loadDocument(folder, doc, { repair: true }))
  for (const key of keys) await store.append(updateOf(key, 1))
  await store.close()
}

const keysOf = (ydoc: Y.Doc) => [...ydoc.getMap('entries').keys()].sort()

describe('backup store', () => {
  let folder: string
  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), 'clearmesh-backup-store-'))
  })
  afterEach(async () => {
    await rm(folder, { recursive: true, force: true })
  })

  it('keeps every appended update across a reload', async () => {
    const store = await openDocumentStore(folder, await loadDocument(folder, doc, { repair: true }))
    await Promise.all(['a', 'b', 'c'].map((key) => store.append(updateOf(key, 2))))
    await store.close()
    const loaded = await loadDocument(folder, doc, { repair: true })
    expect(keysOf(loaded.ydoc)).toEqual(['a-0', 'a-1', 'b-0', 'b-1', 'c-0', 'c-1'])
    expect(loaded.tornBytes).toBe(0)
    expect(await storedDocuments(folder)).toEqual([doc])
  })

  it('compacts a large log into the state file and loses nothing', async () => {
    const loaded = await loadDocument(folder, doc, { repair: true })
    const store = await openDocumentStore(folder, loaded)
    const batches = Math.ceil(compactLogBytesMin / 100_000) + 2
    for (let i = 0; i < batches; i++) {
      const update = updateOf(`k${i}`, 10, 10_000)
      Y.applyUpdate(loaded.ydoc, update) // as the provider applies it before it is appended
      await store.append(update)
    }
    await store.close()
    expect((await stat(logPath(folder))).size).toBeLessThan(compactLogBytesMin)
    expect((await stat(join(folder, 'shard~2.state'))).size).toBeGreaterThan(compactLogBytesMin)
    const reloaded = await loadDocument(folder, doc, { repair: true })
    expect(keysOf(reloaded.ydoc)).toHaveLength(batches * 10)
  })

  it('drops a torn tail cut at any byte, and appends after the repair load', async () => {
    await appendEach(folder, ['first', 'second'])
    const whole = await readFile(logPath(folder))
    for (let cut = 0; cut < whole.byteLength; cut++) {
      await writeFile(logPath(folder), whole.subarray(0, cut))
      const readOnly = await loadDocument(folder, doc, { repair: false })
      const records = readRecords(new Uint8Array(whole.subarray(0, cut)), 'log').payloads.length
      expect(keysOf(readOnly.ydoc), `cut at ${cut}`).toHaveLength(records)
      expect(readOnly.tornBytes).toBe(cut - readOnly.logBytes)
    }
    await writeFile(logPath(folder), whole.subarray(0, whole.byteLength - 3))
    const repaired = await loadDocument(folder, doc, { repair: true })
    expect(keysOf(repaired.ydoc)).toEqual(['first-0'])
    await appendEach(folder, ['third'])
    const reloaded = await loadDocument(folder, doc, { repair: true })
    expect(keysOf(reloaded.ydoc)).toEqual(['first-0', 'third-0'])
    expect(reloaded.tornBytes).toBe(0)
  })

  it('refuses a damaged record that good records follow', async () => {
    await appendEach(folder, ['first', 'second'])
    const bytes = await readFile(logPath(folder))
    bytes[30]! ^= 0xff // inside the first record's payload
    await writeFile(logPath(folder), bytes)
    await expect(loadDocument(folder, doc, { repair: true })).rejects.toThrow(
      /damaged record at byte 0 with records after it/,
    )
  })
})
