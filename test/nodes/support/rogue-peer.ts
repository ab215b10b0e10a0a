// A rogue "peer" of a test mesh: it holds the mesh secret, so it can open authenticated links to
// node a's sync endpoint and speak the y-protocols framing there, raw (test/nodes/peer-fuzz.test.ts,
// test/nodes/forged-money.test.ts).

import * as Y from 'yjs'
import * as protocol from '../../../src/mesh/protocol'
import * as meshToken from '../../../src/mesh/token'
import { waitFor, type Mesh } from './mesh'
import { upgrade, type RawWebSocket } from './raw-websocket'

export type Link = { socket: RawWebSocket; doc: string }
export type Settled = { closed: { code: number; reason: string } } | { answered: true }

export const kindOf = (bytes: Uint8Array): string => {
  try {
    return protocol.readFrame(bytes).type
  } catch {
    return 'unreadable'
  }
}

/** Links to node a of the mesh `current()` returns (the mesh is started after this is made). */
export function roguePeer(current: () => Mesh) {
  const syncUrl = (doc: string, token: string | undefined) =>
    `${current().node('a').url()}/v1/mesh/sync/${doc}` +
    (token === undefined ? '' : `?token=${encodeURIComponent(token)}`)

  const tokenFor = (doc: string, role: meshToken.PeerRole = 'node', id = 'mallory') =>
    meshToken.issue(current().meshSecret, { role, id }, doc, Date.now() + 60_000)

  /** Opens a link to node a as `role`, and waits for the node's SyncStep1. */
  async function openLink(doc: string, role: meshToken.PeerRole = 'node'): Promise<Link> {
    const answer = await upgrade(syncUrl(doc, await tokenFor(doc, role)))
    if (answer.body !== undefined) {
      throw new Error(`the link to ${doc} was refused: ${answer.status} ${answer.body}`)
    }
    const socket = answer.socket
    await waitFor(`node a greets the link to ${doc}`, async () =>
      socket.messages.some((m) => kindOf(m) === 'sync_step1') ? true : undefined,
    )
    return { socket, doc }
  }

  /**
   * Waits until node a has handled everything sent so far: a SyncStep1 probe sent after it is
   * answered with SyncStep2 (frames are handled in order), or the link is closed.
   */
  async function settle(link: Link): Promise<Settled> {
    const answered = () => link.socket.messages.filter((m) => kindOf(m) === 'sync_step2').length
    const before = answered()
    link.socket.sendBinary(protocol.writeSyncStep1(Y.encodeStateVector(new Y.Doc())))
    return Promise.race([
      link.socket.closed.then((closed) => ({ closed })),
      waitFor(`node a answers the probe on ${link.doc}, or closes the link`, async () =>
        answered() > before ? ({ answered: true } as const) : undefined,
      ),
    ])
  }

  /** Node a's whole state of `link`'s document, as a local Y.Doc (from its SyncStep2). */
  async function stateOf(link: Link): Promise<Y.Doc> {
    const count = () => link.socket.messages.filter((m) => kindOf(m) === 'sync_step2').length
    const before = count()
    link.socket.sendBinary(protocol.writeSyncStep1(Y.encodeStateVector(new Y.Doc())))
    await waitFor(`the state of ${link.doc}`, async () => (count() > before ? true : undefined))
    const answer = link.socket.messages.filter((m) => kindOf(m) === 'sync_step2').at(-1)!
    const frame = protocol.readFrame(answer)
    if (frame.type !== 'sync_step2') throw new Error('not a SyncStep2')
    const local = new Y.Doc()
    Y.applyUpdate(local, frame.update)
    return local
  }

  return { syncUrl, tokenFor, openLink, settle, stateOf }
}
