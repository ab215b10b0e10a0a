// Snapshot files: every document of one node, each as the Yjs update that rebuilds it with its
// state vector and checksum, read through the node's admin snapshot route; and their restore into
// a new or wiped node through the same route, which loads each one as a peer's update is taken.
//
// The file is JSON: {format, node, takenAt, documents: [{doc, bytes, checksum, stateVector,
// update}], checksum}, binary fields in base64. Each document's checksum covers its update; the
// file's covers every document's name, checksum and state vector, so a file cut short, edited or
// reordered is refused before anything is sent.

import { readFile, rename, writeFile } from 'node:fs/promises'
import * as Y from 'yjs'
import { catchUpPieceBytesMax } from '../../src/constants'
import { catchUpPieces } from '../../src/mesh/catch-up'
import { checksum } from '../../src/replica/checksum'
import { parseMeshStatus } from './mesh-status'

export const snapshotFormat = 'clearmesh-snapshot/1' as const
const checksumHeader = 'X-Snapshot-Checksum'
const stateVectorHeader = 'X-Snapshot-State-Vector'
/**
 * Bytes of one restore request: a peer's catch-up piece, which the node appends as one log row.
 * A piece over one stored value is folded with the whole document into a new stored snapshot;
 * pieces of 1 MiB made that once per MiB, and broke the node's connection partway through a 50 MB
 * document.
 */
const restorePieceBytes = catchUpPieceBytesMax

export type SnapshotDocument = {
  doc: string
  bytes: number
  checksum: string
  stateVector: string
  update: string
}

export type SnapshotFile = {
  format: typeof snapshotFormat
  node: string
  takenAt: number
  documents: SnapshotDocument[]
  checksum: string
}

export type Progress = (done: number, total: number, doc: string) => void

const encoder = new TextEncoder()
const fileChecksum = (documents: SnapshotDocument[]) =>
  checksum(
    encoder.encode(
      documents.map((d) => `${d.doc} ${d.bytes} ${d.checksum} ${d.stateVector}`).join('\n'),
    ),
  )

async function admin(node: string, token: string, path: string, init: RequestInit = {}) {
  const response = await fetch(`${node}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...init.headers },
  })
  if (!response.ok) {
    throw new Error(`${init.method ?? 'GET'} ${path}: ${response.status} ${await response.text()}`)
  }
  return response
}

/** The id of the node at `node` and the names of its documents (`shard/0`, `market/BTC-PERP`). */
export async function nodeDocuments(
  node: string,
  token: string,
): Promise<{ nodeId: string; names: string[] }> {
  const status = (await (await admin(node, token, '/v1/mesh/status')).json()) as { node: string }
  return { nodeId: status.node, names: [...parseMeshStatus(status).keys()] }
}

/** Reads every document of `node` into a snapshot (each checked against its checksum). */
export async function exportSnapshot(
  node: string,
  token: string,
  progress: Progress = () => undefined,
): Promise<SnapshotFile> {
  const { nodeId, names } = await nodeDocuments(node, token)
  const documents: SnapshotDocument[] = []
  for (const doc of names) {
    const response = await admin(node, token, `/v1/admin/snapshots/${doc}`)
    const update = new Uint8Array(await response.arrayBuffer())
    if (checksum(update) !== response.headers.get(checksumHeader)) {
      throw new Error(`${doc}: the bytes read do not match the node's checksum`)
    }
    documents.push(snapshotDocument(doc, update, response.headers.get(stateVectorHeader) ?? ''))
    progress(documents.length, names.length, doc)
  }
  return snapshotFile(nodeId, documents)
}

/** One document of a snapshot: `update` rebuilds it; `stateVector` is base64. */
export const snapshotDocument = (
  doc: string,
  update: Uint8Array,
  stateVector: string,
): SnapshotDocument => ({
  doc,
  bytes: update.byteLength,
  checksum: checksum(update),
  stateVector,
  update: Buffer.from(update).toString('base64'),
})

/** A snapshot file of `node`'s documents, taken now. */
export function snapshotFile(node: string, documents: SnapshotDocument[]): SnapshotFile {
  const taken = { format: snapshotFormat, node, takenAt: Date.now(), documents }
  return { ...taken, checksum: fileChecksum(documents) }
}

/** The file's documents with their updates decoded, or why the file cannot be trusted. */
export function verifySnapshot(file: SnapshotFile): { doc: string; update: Uint8Array }[] {
  if (file.format !== snapshotFormat) throw new Error(`not a ${snapshotFormat} file`)
  if (!Array.isArray(file.documents) || fileChecksum(file.documents) !== file.checksum) {
    throw new Error("the file's checksum does not match its documents")
  }
  return file.documents.map((document) => {
    const update = new Uint8Array(Buffer.from(document.update, 'base64'))
    if (update.byteLength !== document.bytes || checksum(update) !== document.checksum) {
      throw new Error(`${document.doc}: the update does not match its checksum`)
    }
    const implied = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(update))
    const stated = Y.decodeStateVector(new Uint8Array(Buffer.from(document.stateVector, 'base64')))
    const same =
      implied.size === stated.size &&
      [...implied].every(([client, clock]) => stated.get(client) === clock)
    if (!same) {
      throw new Error(`${document.doc}: the update does not match its state vector`)
    }
    return { doc: document.doc, update }
  })
}

/**
 * Loads every document of a verified file into `node`; returns the documents restored. Each goes
 * as a sequence of causally ordered pieces (the mesh's catch-up pieces) of at most
 * `restorePieceBytes`, so a document over the route's body limit restores too, piece by piece,
 * each made durable before the next is sent.
 */
export async function restoreSnapshot(
  node: string,
  token: string,
  file: SnapshotFile,
  progress: Progress = () => undefined,
): Promise<number> {
  const documents = verifySnapshot(file)
  for (const [i, { doc, update }] of documents.entries()) {
    const ydoc = new Y.Doc()
    Y.applyUpdate(ydoc, update)
    for (const piece of catchUpPieces(ydoc, new Map(), restorePieceBytes)) {
      await admin(node, token, `/v1/admin/snapshots/${doc}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', [checksumHeader]: checksum(piece) },
        body: piece,
      })
    }
    ydoc.destroy()
    progress(i + 1, documents.length, doc)
  }
  return documents.length
}

/** Writes `file` to `path` whole, then renames it: a crash never leaves a half file under the name. */
export async function writeSnapshotFile(path: string, file: SnapshotFile): Promise<void> {
  await writeFile(`${path}.partial`, JSON.stringify(file))
  await rename(`${path}.partial`, path)
}

export const readSnapshotFile = async (path: string): Promise<SnapshotFile> =>
  JSON.parse(await readFile(path, 'utf8')) as SnapshotFile
