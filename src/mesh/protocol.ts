// The node-to-node wire protocol: y-websocket's framing, so a stock y-websocket client holding mesh
// credentials can follow a node, plus two mesh-only frames.
//
//   frame     = varUint(type) body
//   type 0    sync: varUint(step) varUint8Array(payload)          (y-protocols sync, PROTOCOL.md)
//               step 0 = SyncStep1 (state vector), 1 = SyncStep2 (missing updates), 2 = Update
//   type 1    awareness (y-websocket presence): ignored by nodes, never sent
//   type 100  heartbeat: varUint(sender time, ms)                   (mesh links only)
//   type 101  held: varUint8Array(state vector the sender has made durable)   (mesh links only)
//   type 102  fragment: varUint(count) varUint(index) varUint8Array(part)    (mesh links only)
//             a frame over the 1 MiB WebSocket message limit (a large catch-up) is sent as
//             `count` fragments in order and reassembled into one frame before it is read
//   type 103  lease request: varUint(term) varUint(duration, ms)    (market links only, lease.ts)
//   type 104  lease answer: varUint(term asked) varUint(1 granted | 0 refused)
//             varUint(promised term) varString(promised holder) varUint8Array(state vector)
//             the grantor's promise after deciding, and what it holds of the market then
//   type 105  lease release: varUint(term) varString(target)   the holder of `term` stopped
//             matching and released its grantors, handing the lease to `target` (failback)
//   type 106  held in term: varUint8Array(state vector) varUint(highest term promised)
//             a market replica's Held: it confirms the matcher steps of a term only while it has
//             promised no higher one (Raft's AppendEntries term check)
//   type 107  failback: varString(target)   an operator asks the holder to hand the lease to `target`
//
// A node answers SyncStep1 with SyncStep2; every update it makes durable it forwards as Update.
// After persisting what a peer sent it answers Held with its state vector, which is how a
// `quorum` write learns that a majority holds it. Unknown types and truncated frames throw.

import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

export const messageSync = 0
export const messageAwareness = 1
export const messageHeartbeat = 100
export const messageHeld = 101
export const messageFragment = 102
export const messageLeaseRequest = 103
export const messageLeaseAnswer = 104
export const messageLeaseRelease = 105
export const messageHeldInTerm = 106
export const messageFailback = 107

export const syncStep1 = 0
export const syncStep2 = 1
export const syncUpdate = 2

export type Frame =
  | { type: 'sync_step1'; stateVector: Uint8Array }
  | { type: 'sync_step2'; update: Uint8Array }
  | { type: 'update'; update: Uint8Array }
  | { type: 'awareness' }
  | { type: 'heartbeat'; sentAt: number }
  | { type: 'held'; stateVector: Uint8Array }
  | { type: 'held_in_term'; stateVector: Uint8Array; promisedTerm: number }
  | { type: 'fragment'; count: number; index: number; part: Uint8Array }
  | LeaseFrame

export type LeaseFrame =
  | { type: 'lease_request'; term: number; durationMs: number }
  | {
      type: 'lease_answer'
      term: number
      granted: boolean
      promisedTerm: number
      promisedHolder: string
      stateVector: Uint8Array
    }
  | { type: 'lease_release'; term: number; target: string }
  | { type: 'failback'; target: string }

const frame = (write: (encoder: encoding.Encoder) => void): Uint8Array => {
  const encoder = encoding.createEncoder()
  write(encoder)
  return encoding.toUint8Array(encoder)
}

const syncFrame = (step: number, payload: Uint8Array) =>
  frame((encoder) => {
    encoding.writeVarUint(encoder, messageSync)
    encoding.writeVarUint(encoder, step)
    encoding.writeVarUint8Array(encoder, payload)
  })

export const writeSyncStep1 = (stateVector: Uint8Array) => syncFrame(syncStep1, stateVector)
export const writeSyncStep2 = (update: Uint8Array) => syncFrame(syncStep2, update)
export const writeUpdate = (update: Uint8Array) => syncFrame(syncUpdate, update)

export const writeHeartbeat = (sentAt: number) =>
  frame((encoder) => {
    encoding.writeVarUint(encoder, messageHeartbeat)
    encoding.writeVarUint(encoder, sentAt)
  })

export const writeHeld = (stateVector: Uint8Array) =>
  frame((encoder) => {
    encoding.writeVarUint(encoder, messageHeld)
    encoding.writeVarUint8Array(encoder, stateVector)
  })

export const writeLeaseRequest = (term: number, durationMs: number) =>
  frame((encoder) => {
    encoding.writeVarUint(encoder, messageLeaseRequest)
    encoding.writeVarUint(encoder, term)
    encoding.writeVarUint(encoder, durationMs)
  })

export const writeLeaseAnswer = (
  answer: Omit<Extract<LeaseFrame, { type: 'lease_answer' }>, 'type'>,
) =>
  frame((encoder) => {
    encoding.writeVarUint(encoder, messageLeaseAnswer)
    encoding.writeVarUint(encoder, answer.term)
    encoding.writeVarUint(encoder, answer.granted ? 1 : 0)
    encoding.writeVarUint(encoder, answer.promisedTerm)
    encoding.writeVarString(encoder, answer.promisedHolder)
    encoding.writeVarUint8Array(encoder, answer.stateVector)
  })

export const writeLeaseRelease = (term: number, target: string) =>
  frame((encoder) => {
    encoding.writeVarUint(encoder, messageLeaseRelease)
    encoding.writeVarUint(encoder, term)
    encoding.writeVarString(encoder, target)
  })

export const writeFailback = (target: string) =>
  frame((encoder) => {
    encoding.writeVarUint(encoder, messageFailback)
    encoding.writeVarString(encoder, target)
  })

export const writeHeldInTerm = (stateVector: Uint8Array, promisedTerm: number) =>
  frame((encoder) => {
    encoding.writeVarUint(encoder, messageHeldInTerm)
    encoding.writeVarUint8Array(encoder, stateVector)
    encoding.writeVarUint(encoder, promisedTerm)
  })

/** Splits a frame into fragment frames whose parts hold at most `partBytes` each. */
export function writeFragments(whole: Uint8Array, partBytes: number): Uint8Array[] {
  const count = Math.ceil(whole.byteLength / partBytes)
  return Array.from({ length: count }, (_, index) =>
    frame((encoder) => {
      encoding.writeVarUint(encoder, messageFragment)
      encoding.writeVarUint(encoder, count)
      encoding.writeVarUint(encoder, index)
      encoding.writeVarUint8Array(
        encoder,
        whole.subarray(index * partBytes, (index + 1) * partBytes),
      )
    }),
  )
}

/** Decodes one frame; throws on an unknown type, a truncated body or trailing bytes. */
export function readFrame(bytes: Uint8Array): Frame {
  const decoder = decoding.createDecoder(bytes)
  const type = decoding.readVarUint(decoder)
  const read = (): Frame => {
    switch (type) {
      case messageSync:
        return readSync(decoder)
      case messageAwareness:
        return { type: 'awareness' }
      case messageHeartbeat:
        return { type: 'heartbeat', sentAt: decoding.readVarUint(decoder) }
      case messageHeld:
        return { type: 'held', stateVector: decoding.readVarUint8Array(decoder) }
      case messageFragment:
        return {
          type: 'fragment',
          count: decoding.readVarUint(decoder),
          index: decoding.readVarUint(decoder),
          part: decoding.readVarUint8Array(decoder),
        }
      case messageLeaseRequest:
        return {
          type: 'lease_request',
          term: decoding.readVarUint(decoder),
          durationMs: decoding.readVarUint(decoder),
        }
      case messageLeaseAnswer:
        return readLeaseAnswer(decoder)
      case messageHeldInTerm:
        return {
          type: 'held_in_term',
          stateVector: decoding.readVarUint8Array(decoder),
          promisedTerm: decoding.readVarUint(decoder),
        }
      case messageLeaseRelease:
        return {
          type: 'lease_release',
          term: decoding.readVarUint(decoder),
          target: decoding.readVarString(decoder),
        }
      case messageFailback:
        return { type: 'failback', target: decoding.readVarString(decoder) }
      default:
        throw new Error(`unknown frame type ${type}`)
    }
  }
  const result = read()
  if (result.type !== 'awareness' && decoding.hasContent(decoder)) {
    throw new Error(`frame type ${type} has trailing bytes`)
  }
  return result
}

function readLeaseAnswer(decoder: decoding.Decoder): Frame {
  const term = decoding.readVarUint(decoder)
  const granted = decoding.readVarUint(decoder)
  if (granted > 1) throw new Error(`lease answer granted flag ${granted}`)
  return {
    type: 'lease_answer',
    term,
    granted: granted === 1,
    promisedTerm: decoding.readVarUint(decoder),
    promisedHolder: decoding.readVarString(decoder),
    stateVector: decoding.readVarUint8Array(decoder),
  }
}

function readSync(decoder: decoding.Decoder): Frame {
  const step = decoding.readVarUint(decoder)
  const payload = decoding.readVarUint8Array(decoder)
  switch (step) {
    case syncStep1:
      return { type: 'sync_step1', stateVector: payload }
    case syncStep2:
      return { type: 'sync_step2', update: payload }
    case syncUpdate:
      return { type: 'update', update: payload }
    default:
      throw new Error(`unknown sync step ${step}`)
  }
}
