// Admits another node (or a follower) by its mesh token: an HMAC of the mesh secret bound to who
// it is, the document or matcher it is for, and an expiry (src/mesh/token.ts).

import type { Context } from 'hono'
import * as token from '../../mesh/token'
import { ApiError } from '../api-error'
import type { AppEnv } from '../app-env'
import * as clock from '../../clock'

export async function verifiedPeer(
  c: Context<AppEnv>,
  presented: string,
  doc: string,
): Promise<token.Peer> {
  if (c.var.config.meshSecret === '')
    throw new ApiError(403, 'mesh_disabled', 'this node has no mesh secret')
  const verified = await token.verify(c.var.config.meshSecret, presented, doc, clock.now())
  if (!verified.ok) {
    console.error(JSON.stringify({ msg: 'refused mesh peer', doc, code: verified.code }))
    throw new ApiError(401, verified.code, verified.message)
  }
  return verified.value
}
