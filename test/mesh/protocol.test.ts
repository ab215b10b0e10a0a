import * as encoding from 'lib0/encoding'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as protocol from '../../src/mesh/protocol'

describe('mesh protocol', () => {
  it('round-trips every frame type', () => {
    const doc = new Y.Doc()
    doc.getMap('m').set('k', 'v')
    const stateVector = Y.encodeStateVector(doc)
    const update = Y.encodeStateAsUpdate(doc)
    expect(protocol.readFrame(protocol.writeSyncStep1(stateVector))).toEqual({
      type: 'sync_step1',
      stateVector,
    })
    expect(protocol.readFrame(protocol.writeSyncStep2(update))).toEqual({
      type: 'sync_step2',
      update,
    })
    expect(protocol.readFrame(protocol.writeUpdate(update))).toEqual({ type: 'update', update })
    expect(protocol.readFrame(protocol.writeHeartbeat(1234))).toEqual({
      type: 'heartbeat',
      sentAt: 1234,
    })
    expect(protocol.readFrame(protocol.writeHeld(stateVector))).toEqual({
      type: 'held',
      stateVector,
    })
    expect(protocol.readFrame(protocol.writeLeaseRequest(7, 3_000))).toEqual({
      type: 'lease_request',
      term: 7,
      durationMs: 3_000,
    })
    const answer = {
      term: 7,
      granted: false,
      promisedTerm: 8,
      promisedHolder: 'b',
      stateVector,
    }
    expect(protocol.readFrame(protocol.writeLeaseAnswer(answer))).toEqual({
      type: 'lease_answer',
      ...answer,
    })
    expect(protocol.readFrame(protocol.writeLeaseRelease(7, 'a'))).toEqual({
      type: 'lease_release',
      term: 7,
      target: 'a',
    })
    expect(protocol.readFrame(protocol.writeFailback('a'))).toEqual({
      type: 'failback',
      target: 'a',
    })
    expect(protocol.readFrame(protocol.writeHeldInTerm(stateVector, 3))).toEqual({
      type: 'held_in_term',
      stateVector,
      promisedTerm: 3,
    })
  })

  it('refuses a lease answer whose granted flag is neither 0 nor 1', () => {
    const encoder = encoding.createEncoder()
    for (const n of [protocol.messageLeaseAnswer, 7, 2, 8]) encoding.writeVarUint(encoder, n)
    encoding.writeVarString(encoder, 'b')
    encoding.writeVarUint8Array(encoder, new Uint8Array([0]))
    expect(() => protocol.readFrame(encoding.toUint8Array(encoder))).toThrow(/granted flag 2/)
  })

  it('splits a large frame into fragments that rebuild it byte for byte', () => {
    const whole = protocol.writeUpdate(new Uint8Array(2_500_000).map((_, i) => i % 251))
    const fragments = protocol.writeFragments(whole, 512 * 1024)
    expect(fragments).toHaveLength(5)
    const parts = fragments.map((bytes) => protocol.readFrame(bytes))
    parts.forEach((part, index) =>
      expect(part).toMatchObject({ type: 'fragment', count: 5, index }),
    )
    const rebuilt = new Uint8Array(whole.byteLength)
    let offset = 0
    for (const part of parts) {
      if (part.type !== 'fragment') throw new Error('not a fragment')
      rebuilt.set(part.part, offset)
      offset += part.part.byteLength
    }
    expect(Buffer.compare(rebuilt, whole)).toBe(0)
  })

  it('throws on unknown types, unknown sync steps, truncation and trailing bytes', () => {
    const encoded = (write: (encoder: encoding.Encoder) => void) => {
      const encoder = encoding.createEncoder()
      write(encoder)
      return encoding.toUint8Array(encoder)
    }
    expect(() => protocol.readFrame(encoded((e) => encoding.writeVarUint(e, 7)))).toThrow(
      /unknown frame type/,
    )
    const badStep = encoded((e) => {
      encoding.writeVarUint(e, protocol.messageSync)
      encoding.writeVarUint(e, 9)
      encoding.writeVarUint8Array(e, new Uint8Array(1))
    })
    expect(() => protocol.readFrame(badStep)).toThrow(/unknown sync step/)
    const full = protocol.writeUpdate(new Uint8Array([1, 2, 3, 4]))
    expect(() => protocol.readFrame(full.subarray(0, full.byteLength - 2))).toThrow()
    const trailing = new Uint8Array([...protocol.writeHeartbeat(5), 0])
    expect(() => protocol.readFrame(trailing)).toThrow(/trailing bytes/)
    expect(() => protocol.readFrame(new Uint8Array(0))).toThrow()
  })
})
