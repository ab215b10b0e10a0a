// Mesh credentials: a peer proves it holds the mesh secret with a token bound to who it is, the
// document it opens and an expiry. A `node` may write; a `follower` (a backup y-websocket client)
// may only read. Tokens travel as a query parameter because y-websocket can send nothing else.
//
//   token = role "." id "." expiresAt "." hex(HMAC-SHA256(meshSecret, role.id.doc.expiresAt))

import { constantTimeEqual, hmacHex } from '../hmac'
import { ok, reject, type Result } from '../domain/result'

export type PeerRole = 'node' | 'follower'
export type Peer = { role: PeerRole; id: string }

const message = (peer: Peer, doc: string, expiresAt: number) =>
  `${peer.role}.${peer.id}.${doc}.${expiresAt}`

export async function issue(
  secret: string,
  peer: Peer,
  doc: string,
  expiresAt: number,
): Promise<string> {
  const signature = await hmacHex(secret, message(peer, doc, expiresAt))
  return `${peer.role}.${peer.id}.${expiresAt}.${signature}`
}

export async function verify(
  secret: string,
  token: string,
  doc: string,
  now: number,
): Promise<Result<Peer, 'invalid_mesh_token' | 'expired_mesh_token'>> {
  const parts = token.split('.')
  const [role, id, expiry, signature] = parts
  if (
    parts.length !== 4 ||
    (role !== 'node' && role !== 'follower') ||
    !/^[a-z0-9-]{1,32}$/.test(id!)
  ) {
    return reject('invalid_mesh_token', 'mesh token is malformed')
  }
  if (!/^[0-9]{1,15}$/.test(expiry!)) return reject('invalid_mesh_token', 'mesh token is malformed')
  const peer = { role, id: id! } as Peer
  const expected = await hmacHex(secret, message(peer, doc, Number(expiry)))
  if (!constantTimeEqual(signature!, expected)) {
    return reject('invalid_mesh_token', 'mesh token signature does not match')
  }
  if (Number(expiry) < now) return reject('expired_mesh_token', 'mesh token has expired')
  return ok(peer)
}
