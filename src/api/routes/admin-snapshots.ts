// Snapshot export and restore of one document (scripts/snapshot.ts drives them for every one).
// Export answers the document's whole state as one Yjs update, with its state vector and checksum
// taken at the same instant. Restore takes such an update and loads it as a peer's update is
// taken: remote checks, then the durable apply-and-append; a node restored this way catches the
// rest up from its peers. Bodies are bytes, so these routes are registered ahead of the API's JSON
// body checks (app.ts) and bound their own bodies.

import { z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { snapshotBytesMax } from '../../constants'
import { checksum } from '../../replica/checksum'
import { ApiError, fromRejection } from '../api-error'
import type { AppEnv } from '../app-env'
import { adminAuth } from '../middleware/admin-auth'
import { createRouter, errorsOf, json } from '../router'
import { replicaOf } from './mesh'

export const snapshotPath = '/v1/admin/snapshots/:kind/:name'
export const checksumHeader = 'X-Snapshot-Checksum'
/** What `checksum` gives: 32 lower-case hex digits. */
const checksumPattern = /^[0-9a-f]{32}$/
export const stateVectorHeader = 'X-Snapshot-State-Vector'

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes))

function replica(c: Context<AppEnv>) {
  const { kind, name } = c.req.param() as { kind: string; name: string }
  const found = replicaOf(c.var.config, c.env, kind, name)
  if (found === undefined) throw new ApiError(404, 'not_found', `no document ${kind}/${name}`)
  return found
}

/** The request body, refused with 413 past `snapshotBytesMax` before more of it is read. */
async function boundedBody(c: Context<AppEnv>): Promise<Uint8Array> {
  const tooLarge = () =>
    new ApiError(
      413,
      'body_too_large',
      `a snapshot document is limited to ${snapshotBytesMax} bytes`,
    )
  if (Number(c.req.header('content-length') ?? 0) > snapshotBytesMax) throw tooLarge()
  const parts: Uint8Array[] = []
  let length = 0
  const reader = c.req.raw.body?.getReader()
  for (;;) {
    const read = await reader?.read()
    if (read === undefined || read.done) break
    length += read.value.byteLength
    if (length > snapshotBytesMax) {
      await reader!.cancel()
      throw tooLarge()
    }
    parts.push(read.value)
  }
  const body = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    body.set(part, offset)
    offset += part.byteLength
  }
  return body
}

export const snapshotRoutes = createRouter()

// Documented by hand: the bodies are bytes, which the routes check themselves.
const documented = {
  path: '/v1/admin/snapshots/{kind}/{name}',
  tags: ['admin'],
  security: [{ adminToken: [] }],
  request: {
    params: z.object({
      kind: z.enum(['shard', 'market']),
      name: z.string().openapi({ description: 'shard number or instrument symbol' }),
    }),
  },
}
const headers = {
  [checksumHeader]: { schema: { type: 'string' as const }, description: 'checksum of the bytes' },
  [stateVectorHeader]: { schema: { type: 'string' as const }, description: 'base64 state vector' },
}
snapshotRoutes.openAPIRegistry.registerPath({
  ...documented,
  method: 'get',
  summary: "One document's whole state as a Yjs update, with its state vector and checksum",
  responses: {
    200: {
      description: 'the update',
      headers,
      content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
    },
    ...errorsOf(401, 404, 503),
  },
})
snapshotRoutes.openAPIRegistry.registerPath({
  ...documented,
  method: 'post',
  summary: "Restore a document from a snapshot's update, taken as a peer's update is",
  request: {
    ...documented.request,
    headers: z.object({ [checksumHeader]: z.string().regex(checksumPattern) }),
    body: {
      required: true,
      content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
    },
  },
  responses: {
    200: json(z.object({ restored: z.literal(true), stateVector: z.string() }), 'restored'),
    ...errorsOf(400, 401, 404, 413, 415, 422, 503),
  },
})
snapshotRoutes.get(snapshotPath, adminAuth(), async (c) => {
  const taken = await replica(c).snapshot()
  if (!taken.ok) throw fromRejection(taken)
  const { update, stateVector } = taken.value
  return c.body(update as Uint8Array<ArrayBuffer>, 200, {
    'Content-Type': 'application/octet-stream',
    [checksumHeader]: taken.value.checksum,
    [stateVectorHeader]: base64(stateVector as Uint8Array),
  })
})
snapshotRoutes.post(snapshotPath, adminAuth(), async (c) => {
  const target = replica(c)
  if (!/^application\/octet-stream\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
    throw new ApiError(415, 'unsupported_media_type', 'a snapshot is application/octet-stream')
  }
  const expected = c.req.header(checksumHeader)
  if (expected === undefined || !checksumPattern.test(expected)) {
    throw new ApiError(
      400,
      'validation_failed',
      `send the snapshot's checksum (32 hex digits) as ${checksumHeader}`,
    )
  }
  const update = await boundedBody(c)
  if (checksum(update) !== expected) {
    throw new ApiError(422, 'snapshot_corrupt', "the snapshot's bytes do not match its checksum")
  }
  const restored = await target.restore(update)
  if (!restored.ok) throw fromRejection(restored)
  return c.json(
    { restored: true, stateVector: base64(restored.value.stateVector as Uint8Array) },
    200,
  )
})
