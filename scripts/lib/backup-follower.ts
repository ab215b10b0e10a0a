// The backup follower: an off-mesh standby holding every document of one node on disk. Each
// document is followed with the stock y-websocket `WebsocketProvider` (a `follower` mesh token in
// its URL, `ws` as its WebSocket) and kept in a backup store (backup-store.ts). The provider opens
// with SyncStep1 carrying the state vector of what was loaded from disk, so after a restart only
// what is missing flows; it redials on its own when the node goes away, with a fresh token.
//
// The node forwards an update only once it is durable there, so the follower's files never hold a
// write the node did not acknowledge; what they may lack is what the node made durable since the
// follower last heard from it (its lag, shown per document).

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import { messageSync, WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import * as meshToken from '../../src/mesh/token'
import { syncPath } from '../../src/mesh/transport'
import {
  loadDocument,
  openDocumentStore,
  storedDocuments,
  type DocumentStore,
} from './backup-store'
import { snapshotDocument, snapshotFile, type SnapshotFile } from './snapshot'

type ProviderOptions = NonNullable<ConstructorParameters<typeof WebsocketProvider>[3]>

const tokenLifetimeMs = 24 * 3_600_000
const reconnectDelayMsMax = 5_000
const manifestName = 'follower.json'

/** What the folder follows: written once, so an export knows whose replica it holds. */
type Manifest = { node: string; url: string }

export type FollowedDocument = {
  readonly doc: string
  readonly ydoc: Y.Doc
  readonly provider: WebsocketProvider
  readonly store: DocumentStore
  /** Clock units the node announced on this connection (its SyncStep1) not yet held here. */
  lag(): number
  /** When (ms since the epoch) the last update arrived; 0 before any. */
  lastUpdateAt(): number
}

export type BackupFollower = {
  readonly nodeId: string
  readonly documents: FollowedDocument[]
  /** Disconnects every provider and waits for every update received to be on disk. */
  stop(): Promise<void>
}

export type BackupFollowerOptions = {
  node: string
  folder: string
  meshSecret: string
  nodeId: string
  documents: string[]
  /** The follower's id in its mesh tokens (the node shows its link under it). */
  id: string
  /** A write to disk failed: the replica cannot be trusted past it, so the follower must stop. */
  onFailure: (error: unknown) => void
}

async function writeManifest(folder: string, manifest: Manifest): Promise<void> {
  const path = join(folder, manifestName)
  await writeFile(`${path}.tmp`, JSON.stringify(manifest))
  await rename(`${path}.tmp`, path)
}

export async function readManifest(folder: string): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await readFile(join(folder, manifestName), 'utf8')) as Manifest
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Clock units of `target` that `held` lacks. */
function missing(target: Map<number, number>, held: Map<number, number>): number {
  let units = 0
  for (const [client, clock] of target) units += Math.max(0, clock - (held.get(client) ?? 0))
  return units
}

async function followDocument(
  options: BackupFollowerOptions,
  doc: string,
): Promise<FollowedDocument> {
  const loaded = await loadDocument(options.folder, doc, { repair: true })
  const store = await openDocumentStore(options.folder, loaded)
  const { ydoc } = loaded
  let lastUpdateAt = 0
  // Everything applied from here on came from the node: the provider is the only writer.
  ydoc.on('update', (update: Uint8Array) => {
    lastUpdateAt = Date.now()
    store.append(update).catch(options.onFailure)
  })
  const issue = () =>
    meshToken.issue(
      options.meshSecret,
      { role: 'follower', id: options.id },
      doc,
      Date.now() + tokenLifetimeMs,
    )
  const [kind, name] = doc.split('/') as [string, string]
  const provider = new WebsocketProvider(
    `${options.node.replace(/^http/, 'ws')}${syncPath(kind)}`,
    name,
    ydoc,
    {
      // `ws` is the WebSocket y-websocket documents for Node; the DOM and ws typings differ.
      WebSocketPolyfill: WebSocket as unknown as ProviderOptions['WebSocketPolyfill'],
      params: { token: await issue() },
      disableBc: true,
      maxBackoffTime: reconnectDelayMsMax,
    },
  )
  // A redial goes out after at least 100 ms: time enough to hand it a fresh token.
  provider.on('connection-close', () => {
    issue().then((token) => (provider.params = { token }), options.onFailure)
  })
  // The node's SyncStep1 says what it holds as the connection opens: kept for the lag, then
  // handed on to the stock handler untouched.
  let announced = new Map<number, number>()
  const syncHandler = provider.messageHandlers[messageSync]!
  provider.messageHandlers[messageSync] = (encoder, decoder, ...rest) => {
    const peek = decoding.clone(decoder)
    if (decoding.readVarUint(peek) === 0) {
      announced = Y.decodeStateVector(decoding.readVarUint8Array(peek))
    }
    syncHandler(encoder, decoder, ...rest)
  }
  return {
    doc,
    ydoc,
    provider,
    store,
    lag: () => missing(announced, Y.decodeStateVector(Y.encodeStateVector(ydoc))),
    lastUpdateAt: () => lastUpdateAt,
  }
}

/** Follows every document of `options.documents` into `options.folder`. */
export async function startBackupFollower(options: BackupFollowerOptions): Promise<BackupFollower> {
  await mkdir(options.folder, { recursive: true })
  const manifest = await readManifest(options.folder)
  if (manifest !== undefined && manifest.node !== options.nodeId) {
    throw new Error(
      `${options.folder} holds node ${manifest.node}'s replica, not node ${options.nodeId}'s`,
    )
  }
  await writeManifest(options.folder, { node: options.nodeId, url: options.node })
  const documents: FollowedDocument[] = []
  for (const doc of options.documents) documents.push(await followDocument(options, doc))
  return {
    nodeId: options.nodeId,
    documents,
    async stop() {
      for (const followed of documents) followed.provider.destroy()
      await Promise.all(documents.map((followed) => followed.store.close()))
    },
  }
}

/** The folder's replica as a snapshot file, read without writing (a follower may be running). */
export async function snapshotOfFolder(folder: string): Promise<SnapshotFile> {
  const manifest = await readManifest(folder)
  if (manifest === undefined) throw new Error(`${folder} holds no follower's replica`)
  const documents = []
  for (const doc of await storedDocuments(folder)) {
    const { ydoc } = await loadDocument(folder, doc, { repair: false })
    const update = Y.encodeStateAsUpdate(ydoc)
    const stateVector = Y.encodeStateVectorFromUpdate(update)
    documents.push(snapshotDocument(doc, update, Buffer.from(stateVector).toString('base64')))
  }
  return snapshotFile(manifest.node, documents)
}
