// The backup follower's on-disk replica of one document: a full state file plus an append-only log
// of the updates received since, so a crash at any instant leaves a loadable replica.
//
//   <doc>.state  one record: the whole document as one Yjs update (written to a temp file, fsynced,
//                renamed over the old one, and the folder fsynced: it is either the old or the new)
//   <doc>.log    records appended and fsynced, one per batch of updates received
//   record       u32 LE payload length · 16-byte checksum of the payload · payload
//
// Loading applies the state, then every log record in order. A record cut short or failing its
// checksum at the end of the log is a torn tail (a crash mid-append; that batch was never
// acknowledged to anyone) and is dropped; one followed by good records is damage, and loading
// refuses it. Compaction writes the document's whole state as the new state file, then empties the
// log; a crash between the two replays updates the state already holds, which Yjs ignores.

import { open, readFile, readdir, rename, rm, truncate, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import * as Y from 'yjs'
import { checksum } from '../../src/replica/checksum'

const headerBytes = 4 + 16
/** One record's payload past which the log is surely damaged (no document here is that big). */
const recordBytesMax = 512 * 1024 * 1024
/** The log is compacted into the state file once it is this large and larger than the state. */
export const compactLogBytesMin = 4 * 1024 * 1024

/** `shard/3` ⇄ `shard~3`: a document's name as a file name. */
const fileStem = (doc: string) => doc.replace('/', '~')
const docOfStem = (stem: string) => stem.replace('~', '/')

function encodeRecord(payload: Uint8Array): Uint8Array {
  const record = new Uint8Array(headerBytes + payload.byteLength)
  new DataView(record.buffer).setUint32(0, payload.byteLength, true)
  record.set(Buffer.from(checksum(payload), 'hex'), 4)
  record.set(payload, headerBytes)
  return record
}

export type ReadRecords = {
  payloads: Uint8Array[]
  /** Bytes of whole, checked records from the start: where a torn tail begins. */
  goodBytes: number
  tornBytes: number
}

/** The records of `bytes`; throws on a bad record that good ones follow. */
export function readRecords(bytes: Uint8Array, what: string): ReadRecords {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const payloads: Uint8Array[] = []
  let offset = 0
  while (offset < bytes.byteLength) {
    const length = offset + 4 <= bytes.byteLength ? view.getUint32(offset, true) : -1
    const end = offset + headerBytes + length
    const whole = length >= 0 && length <= recordBytesMax && end <= bytes.byteLength
    const payload = whole ? bytes.subarray(offset + headerBytes, end) : undefined
    const sum = bytes.subarray(offset + 4, offset + headerBytes)
    if (payload === undefined || checksum(payload) !== Buffer.from(sum).toString('hex')) {
      // Only the last record may be torn: anything after a bad one means damage, not a crash.
      const rest = bytes.subarray(whole ? end : bytes.byteLength)
      if (rest.byteLength > 0) {
        throw new Error(`${what}: damaged record at byte ${offset} with records after it`)
      }
      return { payloads, goodBytes: offset, tornBytes: bytes.byteLength - offset }
    }
    payloads.push(payload)
    offset = end
  }
  return { payloads, goodBytes: offset, tornBytes: 0 }
}

async function readIfThere(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Uint8Array()
    throw error
  }
}

async function fsyncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export type LoadedDocument = {
  doc: string
  ydoc: Y.Doc
  stateBytes: number
  logBytes: number
  /** Bytes of a torn log tail found (and, when repairing, cut off). */
  tornBytes: number
}

/**
 * Loads document `doc` from `folder`. With `repair`, a torn log tail is cut off so appends follow
 * good records; without it nothing is written (an export beside a running follower).
 */
export async function loadDocument(
  folder: string,
  doc: string,
  { repair }: { repair: boolean },
): Promise<LoadedDocument> {
  const stem = join(folder, fileStem(doc))
  const ydoc = new Y.Doc()
  const state = readRecords(await readIfThere(`${stem}.state`), `${stem}.state`)
  // The state file is renamed into place whole: a torn one is damage, never a crash.
  if (state.tornBytes > 0 || state.payloads.length > 1) {
    throw new Error(`${stem}.state: not one whole record`)
  }
  const log = readRecords(await readIfThere(`${stem}.log`), `${stem}.log`)
  for (const payload of [...state.payloads, ...log.payloads]) Y.applyUpdate(ydoc, payload)
  if (repair && log.tornBytes > 0) await truncate(`${stem}.log`, log.goodBytes)
  return {
    doc,
    ydoc,
    stateBytes: state.payloads[0]?.byteLength ?? 0,
    logBytes: log.goodBytes,
    tornBytes: log.tornBytes,
  }
}

/** The documents held in `folder`, by name. */
export async function storedDocuments(folder: string): Promise<string[]> {
  const names = await readdir(folder).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[]
    throw error
  })
  const stems = names
    .filter((name) => name.endsWith('.state') || name.endsWith('.log'))
    .map((name) => docOfStem(name.slice(0, name.lastIndexOf('.'))))
  return [...new Set(stems)].sort()
}

export type DocumentStore = {
  readonly doc: string
  /** Queues an update; it is on disk once the promise resolves. */
  append(update: Uint8Array): Promise<void>
  /** Bytes on disk (state + log). */
  bytes(): number
  /** Waits for every queued update to be on disk, then closes the log. */
  close(): Promise<void>
}

/**
 * The writer of a loaded document: updates queued while an append is in flight go together in the
 * next record (one fsync for the batch), and the log is compacted into the state file once it
 * outgrows both the state and `compactLogBytesMin`.
 */
export async function openDocumentStore(
  folder: string,
  loaded: LoadedDocument,
): Promise<DocumentStore> {
  const stem = join(folder, fileStem(loaded.doc))
  let log: FileHandle = await open(`${stem}.log`, 'a')
  let stateBytes = loaded.stateBytes
  let logBytes = loaded.logBytes
  let queued: { update: Uint8Array; done: () => void; failed: (error: unknown) => void }[] = []
  let draining: Promise<void> | undefined

  async function compact(): Promise<void> {
    const state = Y.encodeStateAsUpdate(loaded.ydoc)
    const temp = await open(`${stem}.state.tmp`, 'w')
    try {
      await temp.writeFile(encodeRecord(state))
      await temp.sync()
    } finally {
      await temp.close()
    }
    await rename(`${stem}.state.tmp`, `${stem}.state`)
    await fsyncFolder(folder)
    // The new state holds everything the log did: start the log again.
    await log.close()
    await rm(`${stem}.log`)
    log = await open(`${stem}.log`, 'a')
    await fsyncFolder(folder)
    stateBytes = state.byteLength + headerBytes
    logBytes = 0
  }

  async function drain(): Promise<void> {
    while (queued.length > 0) {
      const batch = queued
      queued = []
      try {
        const updates = batch.map((queuedUpdate) => queuedUpdate.update)
        const record = encodeRecord(updates.length === 1 ? updates[0]! : Y.mergeUpdates(updates))
        await log.write(record)
        await log.datasync()
        logBytes += record.byteLength
        if (logBytes >= compactLogBytesMin && logBytes > stateBytes) await compact()
        for (const queuedUpdate of batch) queuedUpdate.done()
      } catch (error) {
        for (const queuedUpdate of batch) queuedUpdate.failed(error)
      }
    }
    // Set in the same turn as the loop's last check: an append after it starts a new drain.
    draining = undefined
  }

  const store: DocumentStore = {
    doc: loaded.doc,
    append: (update) =>
      new Promise((done, failed) => {
        queued.push({ update, done, failed })
        draining ??= drain()
      }),
    bytes: () => stateBytes + logBytes,
    async close() {
      while (draining !== undefined) await draining
      await log.close()
    },
  }
  return store
}
