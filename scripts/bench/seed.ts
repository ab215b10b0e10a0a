// Grows a node's shard document to a given size quickly, for the recovery benchmarks: the entries
// are written by the node's own commands (src/state/commands.ts: accounts and deposits with
// 64-character ids, exactly what the API would store) into a local Y.Doc, and handed to the node
// the way a peer hands over a catch-up: over the mesh sync endpoint with a `node` mesh token,
// as Update frames of at most 16 MB (fragmented like any large frame), each applied and persisted
// by the node (folded into its chunked snapshot) before it answers Held. Through the API, 100 MB
// of deposits would take most of an hour on this machine; this takes seconds, and lands the same
// document.

import { createHash } from 'node:crypto'
import { seal, type SignedMap } from '../../src/state/operator-signature'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { fragmentBytesMax } from '../../src/constants'
import * as money from '../../src/domain/money'
import * as protocol from '../../src/mesh/protocol'
import * as meshToken from '../../src/mesh/token'
import * as commands from '../../src/state/commands'
import { covers } from '../lib/follower'

/** Largest update sent at once: well under the 64 MiB frame limit of a link. */
const stepBytes = 16 * 1024 * 1024
const accountsInSeed = 64
/** About what one deposit with 64-character ids encodes to (measured: ~300 B). */
const bytesPerEntry = 300

export type Seed = {
  steps: Uint8Array[]
  encodedBytes: number
  entries: number
  stateVector: Map<number, number>
}

/**
 * About `megabytes` MB of deposits to accounts `<prefix>-<i>`, as a list of updates each under
 * 16 MB (each the difference from the previous one).
 */
export function buildSeed(
  megabytes: number,
  node: string,
  prefix: string,
  operatorSigningKey: string,
): Seed {
  const doc = new Y.Doc()
  // Deposits are signed as the node signs them: peers refuse unsigned ones.
  const context = {
    node,
    now: Date.now(),
    seal: (map: SignedMap, entry: Record<string, unknown>) => seal(operatorSigningKey, map, entry),
  }
  doc.transact(() => {
    for (let i = 0; i < accountsInSeed; i++)
      commands.createAccount(doc, { accountId: `${prefix}-${i}` }, context)
  })
  const amount = money.parse('1.25', {
    decimals: 6,
    max: 10n ** 18n,
    allowZero: false,
    allowNegative: false,
  })
  if (!amount.ok) throw new Error(amount.message)
  const target = megabytes * 1024 * 1024
  const steps: Uint8Array[] = []
  let previous: Uint8Array = new Uint8Array([0])
  let encodedBytes = 0
  let entries = 0
  let stepStart = 0
  const batch = 500
  while (encodedBytes < target) {
    doc.transact(() => {
      for (let j = 0; j < batch; j++, entries++) {
        const accountId = `${prefix}-${entries % accountsInSeed}`
        const depositId = `${prefix}-${entries}-`.padEnd(64, 'p')
        const requestDigest = createHash('sha256').update(depositId).digest('hex').slice(0, 32)
        const written = commands.deposit(
          doc,
          { depositId, accountId, amount: amount.value, signedAt: context.now, requestDigest },
          context,
        )
        if (!written.ok) throw new Error(written.message)
      }
    })
    // Estimate the size from the entries added since the last step (encoding is the slow part).
    if ((entries - stepStart) * bytesPerEntry >= stepBytes || entries * bytesPerEntry >= target) {
      const update = Y.encodeStateAsUpdate(doc, previous)
      steps.push(update)
      encodedBytes += update.byteLength
      previous = Y.encodeStateVector(doc)
      stepStart = entries
    }
  }
  const rest = Y.encodeStateAsUpdate(doc, previous)
  if (rest.byteLength > 2) {
    steps.push(rest)
    encodedBytes += rest.byteLength
  }
  return {
    steps,
    encodedBytes: Y.encodeStateAsUpdate(doc).byteLength,
    entries,
    stateVector: Y.decodeStateVector(Y.encodeStateVector(doc)),
  }
}

/**
 * Sends the seed to `doc` on the node at `baseUrl` as peer `seed`; resolves once the node said
 * (Held) that it holds all of it durably.
 */
export async function pushSeed(
  baseUrl: string,
  meshSecret: string,
  doc: string,
  seed: Seed,
  timeoutMs: number,
): Promise<void> {
  const token = await meshToken.issue(
    meshSecret,
    { role: 'node', id: 'seed' },
    doc,
    Date.now() + 3_600_000,
  )
  const url = `${baseUrl.replace(/^http/, 'ws')}/v1/mesh/sync/${doc}?token=${encodeURIComponent(token)}`
  const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 })
  const beat = setInterval(() => {
    if (socket.readyState === WebSocket.OPEN) socket.send(protocol.writeHeartbeat(Date.now()))
  }, 1_000)
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`seed of ${doc}: not held within ${timeoutMs} ms`)),
        timeoutMs,
      )
      const done = (error?: Error) => {
        clearTimeout(timer)
        if (error === undefined) resolve()
        else reject(error)
      }
      socket.on('error', (error) => done(error))
      socket.on('close', (code, reason) =>
        done(new Error(`seed link closed: ${code} ${reason.toString()}`)),
      )
      socket.on('open', () => {
        socket.send(protocol.writeSyncStep1(new Uint8Array([0])))
        for (const step of seed.steps) {
          const frame = protocol.writeUpdate(step)
          const parts =
            frame.byteLength > fragmentBytesMax
              ? protocol.writeFragments(frame, fragmentBytesMax)
              : [frame]
          for (const part of parts) socket.send(part)
        }
      })
      socket.on('message', (data: Buffer) => {
        const frame = protocol.readFrame(new Uint8Array(data.buffer, data.byteOffset, data.length))
        if (
          frame.type === 'held' &&
          covers(Y.decodeStateVector(frame.stateVector), seed.stateVector)
        )
          done()
        // The node's own frames need no answer: SyncStep2 of an empty replica is nothing new.
      })
    })
  } finally {
    clearInterval(beat)
    socket.terminate()
  }
}
