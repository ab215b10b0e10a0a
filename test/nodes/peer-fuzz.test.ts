// Hostile peers on the mesh's sync endpoint of a real two-node mesh (a, b). A rogue "peer" holding
// the mesh secret (an authenticated node, and a read-only follower) opens links to node a and sends
// malformed y-protocols frames generated with fast-check: truncated varints, lengths past the end
// of the frame, huge declared lengths, unknown message types and sync steps, trailing bytes, bad
// state vectors, garbage updates, abused fragments. Then hand-made valid updates with forged
// content: another document's content, an overwritten or deleted immutable entry, a malformed or
// unencodable entry, a root type outside the schema, dependencies that never arrive. And peers
// without credentials: generated and mutated tokens. Every case: the link closes with a protocol
// close code or the frame is refused, no document of either node changes (state vector and content
// digests, pending structs, damage), and the node keeps serving and replicating.

import fc from 'fast-check'
import * as encoding from 'lib0/encoding'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as protocol from '../../src/mesh/protocol'
import * as meshToken from '../../src/mesh/token'
import { shardOf } from '../../src/state/shard-of'
import type { ApiClient, ApiKey } from '../support/api-client'
import { testSeed } from './support/ledger-writes'
import { startMesh, waitFor, type Mesh } from './support/mesh'
import { upgrade } from './support/raw-websocket'
import { kindOf, roguePeer, type Link } from './support/rogue-peer'

const seed = testSeed()
const shards = 4
const frameRuns = 120
const followerRuns = 30
const tokenRuns = 60
const docs = [
  ...Array.from({ length: shards }, (_, i) => `shard/${i}`),
  'market/BTC-PERP',
  'market/ETH-PERP',
]
/** Close codes of a link refused for what its peer sent (src/mesh/replication.ts). */
const refusalCodes = [1002, 1003, 1007, 1008, 1009]

// --- frames -------------------------------------------------------------------------------------

const varUint = (n: number): number[] => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, n)
  return [...encoding.toUint8Array(encoder)]
}
/** A lib0 varUint of a value past 2^53 (what lib0 refuses to read). */
const oversizeVarUint = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
const typeHeaders: Record<string, number[]> = {
  step1: [protocol.messageSync, protocol.syncStep1],
  step2: [protocol.messageSync, protocol.syncStep2],
  update: [protocol.messageSync, protocol.syncUpdate],
  held: [protocol.messageHeld],
}
const bytesArb = (maxLength: number) => fc.uint8Array({ maxLength }).map((b) => [...b])

type FrameCase = { doc: string; frames: { what: string; bytes: number[] }[] }

const frame = (what: string, bytes: fc.Arbitrary<number[]>) =>
  bytes.map((b) => ({ what, bytes: b }))

const malformedFrame = fc.oneof(
  frame(
    'truncated varint',
    fc.constantFrom(
      [0x80],
      [0xff, 0xff, 0xff],
      [0x00, 0x80],
      [0x00, 0x02, 0x80],
      [0x00, 0x01, 0xff, 0xff],
      [0x64, 0x80],
      [0x65, 0xff],
      [0x66, 0x02, 0x80],
      [0x66, 0x02, 0x00, 0x80],
    ),
  ),
  frame(
    'length past the end',
    fc
      .record({
        header: fc.constantFrom(...Object.values(typeHeaders)),
        payload: bytesArb(32),
        missing: fc.integer({ min: 1, max: 100_000 }),
      })
      .map(({ header, payload, missing }) => [
        ...header,
        ...varUint(payload.length + missing),
        ...payload,
      ]),
  ),
  frame(
    'huge declared length',
    fc
      .record({
        header: fc.constantFrom(...Object.values(typeHeaders), [protocol.messageFragment, 2, 0]),
        length: fc.constantFrom(2 ** 31 - 1, 2 ** 32, 2 ** 40, 2 ** 53 - 1),
        payload: bytesArb(16),
      })
      .map(({ header, length, payload }) => [...header, ...varUint(length), ...payload]),
  ),
  frame(
    'varint past 2^53',
    fc
      .constantFrom(
        [],
        [protocol.messageSync],
        [protocol.messageHeartbeat],
        [protocol.messageFragment],
        [protocol.messageFragment, 2],
      )
      .map((header) => [...header, ...oversizeVarUint]),
  ),
  frame(
    'unknown message type',
    fc
      .record({
        type: fc.oneof(fc.integer({ min: 2, max: 99 }), fc.integer({ min: 103, max: 2 ** 31 })),
        payload: bytesArb(32),
      })
      .map(({ type, payload }) => [...varUint(type), ...payload]),
  ),
  frame(
    'unknown sync step',
    fc
      .record({ step: fc.integer({ min: 3, max: 2 ** 31 }), payload: bytesArb(32) })
      .map(({ step, payload }) => [
        protocol.messageSync,
        ...varUint(step),
        ...varUint(payload.length),
        ...payload,
      ]),
  ),
  frame(
    'trailing bytes',
    fc
      .record({
        valid: fc.constantFrom(
          [...protocol.writeHeartbeat(Date.now())],
          [...protocol.writeHeld(Y.encodeStateVector(new Y.Doc()))],
          [...protocol.writeSyncStep1(Y.encodeStateVector(new Y.Doc()))],
          [...protocol.writeUpdate(Y.encodeStateAsUpdate(new Y.Doc()))],
        ),
        extra: fc.uint8Array({ minLength: 1, maxLength: 16 }),
      })
      .map(({ valid, extra }) => [...valid, ...extra]),
  ),
  frame('empty frame', fc.constant([])),
  frame(
    'bad state vector',
    fc
      .record({
        header: fc.constantFrom(typeHeaders.step1!, typeHeaders.held!),
        vector: fc.oneof(
          fc.constantFrom(
            [5],
            [1],
            [1, 7],
            [2, 1, 1],
            [0xff],
            [1, 0xff],
            [1, 1, ...oversizeVarUint],
          ),
          bytesArb(24),
        ),
      })
      .map(({ header, vector }) => [...header, ...varUint(vector.length), ...vector]),
  ),
  frame(
    'garbage update',
    fc
      .record({
        header: fc.constantFrom(typeHeaders.step2!, typeHeaders.update!),
        update: fc.oneof(
          bytesArb(64),
          fc.constantFrom(
            [1],
            [1, 1],
            [1, 1, 5, 0],
            [0xff, 0xff],
            [1, 1, 0xff, 0xff, 0xff, 0x0f, 0],
          ),
        ),
      })
      .map(({ header, update }) => [...header, ...varUint(update.length), ...update]),
  ),
  frame(
    'fragment out of bounds',
    fc
      .record({
        count: fc.constantFrom(0, 1, 129, 2 ** 20, 2 ** 31),
        index: fc.constantFrom(0, 1, 5),
        part: bytesArb(16),
      })
      .map(({ count, index, part }) => [
        protocol.messageFragment,
        ...varUint(count),
        ...varUint(index),
        ...varUint(part.length),
        ...part,
      ]),
  ),
  frame(
    'fragments out of order',
    fc
      .record({ first: fc.integer({ min: 1, max: 3 }), part: bytesArb(16) })
      .map(({ first, part }) => [
        protocol.messageFragment,
        4,
        ...varUint(first),
        ...varUint(part.length),
        ...part,
      ]),
  ),
  frame(
    'awareness (ignored)',
    bytesArb(32).map((b) => [protocol.messageAwareness, ...b]),
  ),
)

/** Two fragments whose whole is `inner`: a fragment of a fragment, or reassembled garbage. */
const fragmentPair = fc
  .oneof(
    fc.constant([
      ...protocol.writeFragments(new Uint8Array([protocol.messageFragment, 2, 0, 0]), 2),
    ]),
    bytesArb(40).map((garbage) => protocol.writeFragments(new Uint8Array([9, ...garbage]), 8)),
  )
  .map((parts) => parts.map((p) => ({ what: 'fragments of a bad frame', bytes: [...p] })))

const frameCase: fc.Arbitrary<FrameCase> = fc.record({
  doc: fc.constantFrom(...docs),
  frames: fc.oneof(
    { weight: 4, arbitrary: fc.array(malformedFrame, { minLength: 1, maxLength: 3 }) },
    { weight: 1, arbitrary: fragmentPair },
  ),
})

// --- links --------------------------------------------------------------------------------------

describe(`hostile peers on a two-node mesh (seed ${seed})`, () => {
  let mesh: Mesh
  let a: ApiClient
  const figures: Record<string, number | string> = {}

  const { syncUrl, tokenFor, openLink, settle, stateOf } = roguePeer(() => mesh)

  /** Every document of both nodes, without link state. */
  async function fingerprint(): Promise<string> {
    const views = await Promise.all(mesh.ids.map((id) => mesh.digests(id)))
    return JSON.stringify(
      views.map((view, i) => [
        mesh.ids[i],
        [...view.values()].map((d) => [
          d.doc,
          d.stateVectorDigest,
          d.contentDigest,
          d.pending,
          d.damaged,
        ]),
      ]),
    )
  }

  /** Node a answers its health check and a signed read of `accountId`. */
  async function serving(key: ApiKey, accountId: string): Promise<void> {
    expect((await a.plain('GET', '/health')).status).toBe(200)
    const read = await a.signed(key, 'GET', '/v1/account')
    expect(read.status, JSON.stringify(read.body)).toBe(200)
    expect(read.body.accountId).toBe(accountId)
  }

  /** Documents a forgery left unable to take writes (pending structs): later victims avoid them. */
  const wedged = new Set<string>()

  /** A fresh account on node a with a deposit, a withdrawal and a revoked key, known to b. */
  async function victim(tag: string) {
    let accountId: string
    do accountId = `${tag}-${Math.floor(Math.random() * 1e9).toString(36)}`
    while (wedged.has(`shard/${shardOf(accountId, shards)}`))
    const key = await a.fundedAccount(accountId, '1000')
    const withdrawn = await a.signed(key, 'POST', '/v1/withdrawals', {
      withdrawalId: `${tag}-wd`,
      asset: 'USD',
      amount: '100',
    })
    expect(withdrawn.status, JSON.stringify(withdrawn.body)).toBe(201)
    const revocable = await a.admin('POST', `/v1/admin/accounts/${accountId}/keys`, {
      scopes: ['read'],
    })
    expect(revocable.status).toBe(201)
    expect((await a.admin('DELETE', `/v1/admin/keys/${revocable.body.keyId}`)).status).toBe(200)
    // Both nodes hold the victim's document alike (other documents may hold a forgery's leftovers).
    const doc = `shard/${shardOf(accountId, shards)}`
    await waitFor(`victim ${tag} on both nodes`, async () => {
      const [onA, onB] = await Promise.all(mesh.ids.map((id) => mesh.digests(id)))
      const [x, y] = [onA!.get(doc)!, onB!.get(doc)!]
      return x.contentDigest === y.contentDigest && x.stateVectorDigest === y.stateVectorDigest
        ? true
        : undefined
    })
    return {
      accountId,
      key,
      revokedKey: { keyId: revocable.body.keyId, secret: revocable.body.secret } as ApiKey,
      doc,
    }
  }

  beforeAll(async () => {
    const startedAt = performance.now()
    mesh = await startMesh({ ids: ['a', 'b'], shards })
    a = mesh.client('a')
    // Content in every kind of document: accounts, keys, transfers, and a market with steps.
    const mark = await a.admin('POST', '/v1/admin/marks', {
      instrument: 'BTC-PERP',
      price: '60000',
      ts: Date.now(),
    })
    expect(mark.status).toBe(200)
    const trader = await a.fundedAccount('peer-fuzz-trader', '100000')
    const rest = await a.signed(trader, 'POST', '/v1/orders', {
      clientOrderId: 'rest-1',
      instrument: 'BTC-PERP',
      side: 'buy',
      type: 'limit',
      price: '59000',
      size: '0.01',
    })
    expect(rest.status, JSON.stringify(rest.body)).toBe(201)
    for (let i = 0; i < 8; i++) await a.fundedAccount(`peer-fuzz-${i}`, '10')
    figures.meshStartMs = Math.round(performance.now() - startedAt)
    await mesh.converge('start')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    console.log(`peer-fuzz figures (seed ${seed}): ${JSON.stringify(figures)}`)
    await mesh?.stop()
  })

  it(`${frameRuns} generated malformed frames from an authenticated peer: refused, nothing applied`, async () => {
    const { key, accountId } = await victim('frames')
    let baseline = await fingerprint()
    const outcomes: Record<string, number> = {}
    await fc.assert(
      fc.asyncProperty(frameCase, async ({ doc, frames }) => {
        const link = await openLink(doc)
        try {
          for (const f of frames) link.socket.sendBinary(new Uint8Array(f.bytes))
          const settled = await settle(link)
          const outcome = 'closed' in settled ? `closed ${settled.closed.code}` : 'refused'
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
          if ('closed' in settled) {
            expect(refusalCodes, `close reason: ${settled.closed.reason}`).toContain(
              settled.closed.code,
            )
          }
          const after = await fingerprint()
          expect(after, 'a malformed frame changed a document').toBe(baseline)
          baseline = after
          await serving(key, accountId)
        } finally {
          link.socket.destroy()
        }
      }),
      { seed, numRuns: frameRuns },
    )
    figures.frameOutcomes = JSON.stringify(outcomes)
    // The real link still replicates: a write on a reaches b.
    const written = await a.signed(key, 'POST', '/v1/withdrawals', {
      withdrawalId: 'after-frames',
      asset: 'USD',
      amount: '1',
    })
    expect(written.status, JSON.stringify(written.body)).toBe(201)
    await mesh.converge('after malformed frames')
    const onB = await mesh.client('b').signed(key, 'GET', '/v1/withdrawals/after-frames')
    expect(onB.status, JSON.stringify(onB.body)).toBe(200)
  })

  it(`${followerRuns} generated frames and a valid write from a follower: the link closes, nothing applied`, async () => {
    const { key, accountId } = await victim('follower')
    const baseline = await fingerprint()
    const evil = new Y.Doc()
    evil.getMap('accounts').set('mallory', { accountId: 'mallory', createdAt: 1, node: 'z' })
    const write = {
      what: 'a valid update',
      bytes: [...protocol.writeUpdate(Y.encodeStateAsUpdate(evil))],
    }
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...docs),
        fc.oneof(fc.array(malformedFrame, { minLength: 1, maxLength: 2 }), fc.constant([write])),
        async (doc, frames) => {
          const link = await openLink(doc, 'follower')
          try {
            for (const f of frames) link.socket.sendBinary(new Uint8Array(f.bytes))
            const settled = await settle(link)
            if ('closed' in settled) {
              expect(refusalCodes, settled.closed.reason).toContain(settled.closed.code)
            }
            if (frames[0] === write) expect('closed' in settled && settled.closed.code).toBe(1008)
            expect(await fingerprint()).toBe(baseline)
            await serving(key, accountId)
          } finally {
            link.socket.destroy()
          }
        },
      ),
      { seed, numRuns: followerRuns },
    )
  })

  it(`${tokenRuns} generated and mutated tokens: no link opens, nothing changes`, async () => {
    const baseline = await fingerprint()
    const valid = await tokenFor('shard/0')
    const [role, id, expiry, signature] = valid.split('.') as [string, string, string, string]
    const flip = (text: string, at: number) =>
      text.slice(0, at) + (text[at] === '0' ? '1' : '0') + text.slice(at + 1)
    const tokens = fc.oneof(
      fc.string({ maxLength: 120 }),
      fc.string({ unit: 'grapheme', maxLength: 60 }),
      fc
        .nat({ max: signature.length - 1 })
        .map((at) => [role, id, expiry, flip(signature, at)].join('.')),
      fc.constantFrom(
        '',
        '....',
        [role, id, expiry].join('.'),
        [role, id, expiry, signature, ''].join('.'),
        ['admin', id, expiry, signature].join('.'),
        ['NODE', id, expiry, signature].join('.'),
        [role, 'b', expiry, signature].join('.'),
        [role, id, String(Number(expiry) + 1), signature].join('.'),
        [role, id, expiry, signature.toUpperCase()].join('.'),
        [role, id, expiry, signature.slice(0, 32)].join('.'),
        [role, id, '9'.repeat(16), signature].join('.'),
        [role, `${id}.x`, expiry, signature].join('.'),
        ['follower', id, expiry, signature].join('.'),
      ),
      // Properly signed, but for another document, expired, or with another secret.
      fc
        .constantFrom(
          { doc: 'shard/1', expiresAt: Date.now() + 60_000, secret: 'mesh' },
          { doc: 'shard/0', expiresAt: Date.now() - 1, secret: 'mesh' },
          { doc: 'shard/0', expiresAt: Date.now() + 60_000, secret: 'not-the-mesh-secret-0123' },
          { doc: 'market/BTC-PERP', expiresAt: Date.now() + 60_000, secret: 'mesh' },
        )
        .map(({ doc, expiresAt, secret }) => ({ doc, expiresAt, secret })),
    )
    await fc.assert(
      fc.asyncProperty(tokens, async (token) => {
        const text =
          typeof token === 'string'
            ? token
            : await meshToken.issue(
                token.secret === 'mesh' ? mesh.meshSecret : token.secret,
                { role: 'node', id: 'mallory' },
                token.doc,
                token.expiresAt,
              )
        const answer = await upgrade(syncUrl('shard/0', text))
        if (answer.body === undefined) {
          answer.socket.destroy()
          throw new Error(`a link opened with token ${JSON.stringify(text)}`)
        }
        expect(answer.status, answer.body).toBe(401)
        const body = JSON.parse(answer.body)
        expect(body.error.code).toMatch(/^(invalid|expired)_mesh_token$/)
      }),
      { seed, numRuns: tokenRuns },
    )
    // No token at all, and documents that do not exist.
    for (const [doc, status] of [
      ['shard/0', 401],
      [`shard/${shards}`, 404],
      ['shard/-1', 404],
      ['market/DOGE-PERP', 404],
      ['accounts/0', 404],
    ] as const) {
      const answer = await upgrade(
        syncUrl(doc, doc === 'shard/0' ? undefined : await tokenFor(doc)),
      )
      expect(answer.status, `${doc}: ${answer.body}`).toBe(status)
    }
    expect(await fingerprint()).toBe(baseline)
  })

  // --- valid updates with forged content -------------------------------------------------------

  /**
   * Sends, on an authenticated link to `doc`, the update that `forge` makes to a copy of node a's
   * state of `source` (default: `doc`), and expects it refused with nothing applied. Every effect
   * it had is reported together: how the link ended, which documents changed, what the victim's
   * reads show, and what `effects` finds.
   */
  async function expectForgeryRefused(
    target: { doc: string; key: ApiKey; accountId: string },
    forge: (copy: Y.Doc) => Uint8Array | void,
    options: { source?: string; effects?: () => Promise<string[]> } = {},
  ) {
    const baseline = await fingerprint()
    const collateral = (await a.signed(target.key, 'GET', '/v1/account')).body.collateral
    const problems: string[] = []
    const sourceLink = await openLink(options.source ?? target.doc)
    let link = sourceLink
    try {
      const copy = await stateOf(sourceLink)
      const vector = Y.encodeStateVector(copy)
      const made = forge(copy)
      const update = made ?? Y.encodeStateAsUpdate(copy, vector)
      expect(update.byteLength, 'the forged update holds something').toBeGreaterThan(2)
      if (options.source !== undefined && options.source !== target.doc) {
        link = await openLink(target.doc)
      }
      link.socket.sendBinary(protocol.writeUpdate(update))
      const settled = await settle(link)
      if (!('closed' in settled)) problems.push('the link stayed open')
      else if (!refusalCodes.includes(settled.closed.code)) {
        problems.push(`the link closed with ${settled.closed.code} ${settled.closed.reason}`)
      }
    } finally {
      sourceLink.socket.destroy()
      link.socket.destroy()
    }
    // Whatever node a did with it, nothing of it may stay, here or on b.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const after = await fingerprint().catch((error: Error) => `unreadable: ${error.message}`)
    if (after !== baseline) {
      const changed = (text: string) =>
        text.startsWith('unreadable')
          ? [text]
          : (JSON.parse(text) as [string, string[][]][]).flatMap(([node, documents]) =>
              documents.map((d) => `${node}:${d.join(' ')}`),
            )
      const before = new Set(changed(baseline))
      problems.push(
        `documents changed: ${changed(after)
          .filter((d) => !before.has(d))
          .join('; ')}`,
      )
    }
    const read = await a.signed(target.key, 'GET', '/v1/account')
    if (read.status !== 200) {
      problems.push(`the victim's account reads ${read.status} ${JSON.stringify(read.body)}`)
    } else if (read.body.collateral !== collateral) {
      problems.push(`the victim's collateral went from ${collateral} to ${read.body.collateral}`)
    }
    problems.push(...((await options.effects?.()) ?? []))
    expect(problems).toEqual([])
  }

  /** A shard document of node a, other than `than`, that holds entries. */
  async function nonEmptyShard(than: string): Promise<string> {
    const digests = await mesh.digests('a')
    const empty = digests.get('shard/0')!.contentDigest
    for (const [doc, digest] of [...digests]) {
      if (doc.startsWith('shard/') && doc !== than && digest.contentDigest !== empty) return doc
    }
    throw new Error('no other shard holds entries')
  }

  it("refuses an update of another shard's document on a shard link", async () => {
    const target = await victim('cross-shard')
    const other = await nonEmptyShard(target.doc)
    // Node a's whole state of another shard, sent as an update of the victim's shard.
    await expectForgeryRefused(target, (copy) => Y.encodeStateAsUpdate(copy), { source: other })
  })

  it("refuses a market document's content on a shard link", async () => {
    const target = await victim('cross-kind')
    await expectForgeryRefused(target, (copy) => Y.encodeStateAsUpdate(copy), {
      source: 'market/BTC-PERP',
    })
  })

  it('refuses an update that overwrites an existing ledger entry (a deposit made larger)', async () => {
    const target = await victim('overwrite')
    await expectForgeryRefused(target, (copy) => {
      const transfers = copy.getMap<any>('transfers')
      const id = `deposit/${target.accountId}/initial-${target.accountId}`
      const deposit = transfers.get(id)
      expect(deposit, id).toBeDefined()
      transfers.set(id, { ...deposit, amount: '1000000' })
    })
  })

  it('refuses an update that deletes an immutable entry (a withdrawal)', async () => {
    const target = await victim('delete')
    await expectForgeryRefused(target, (copy) => {
      const id = `withdrawal/${target.accountId}/delete-wd`
      expect(copy.getMap('transfers').has(id), id).toBe(true)
      copy.getMap('transfers').delete(id)
    })
  })

  it('refuses an update that deletes a revocation (a revoked key would sign again)', async () => {
    const target = await victim('unrevoke')
    await expectForgeryRefused(
      target,
      (copy) => {
        expect(copy.getMap('revocations').has(target.revokedKey.keyId)).toBe(true)
        copy.getMap('revocations').delete(target.revokedKey.keyId)
      },
      {
        effects: async () => {
          const read = await a.signed(target.revokedKey, 'GET', '/v1/account')
          return read.status === 401 && read.body.error.code === 'api_key_revoked'
            ? []
            : [`the revoked key reads ${read.status} ${JSON.stringify(read.body).slice(0, 200)}`]
        },
      },
    )
  })

  it("refuses a malformed ledger entry (it would make the account's reads fail)", async () => {
    const target = await victim('malformed')
    await expectForgeryRefused(target, (copy) => {
      copy.getMap('transfers').set(`deposit/${target.accountId}/forged`, {
        id: `deposit/${target.accountId}/forged`,
        kind: 'deposit',
        from: 'external',
        to: target.accountId,
        amount: 'a lot',
        ts: Date.now(),
        node: 'a',
      })
    })
  })

  it('refuses an entry in a root type outside the schema', async () => {
    const target = await victim('junk-root')
    await expectForgeryRefused(target, (copy) => {
      copy.getMap('junk').set('k', 'v')
      copy.getArray('log').push(['x'])
    })
  })

  it('refuses an update whose dependencies never arrive (no pending structs stay behind)', async () => {
    const target = await victim('pending')
    wedged.add(target.doc)
    const effects = async () => {
      // Money decisions must not wait on dependencies a closed link will never send.
      await new Promise((resolve) => setTimeout(resolve, 2_000))
      const write = await a.signed(target.key, 'POST', '/v1/withdrawals', {
        withdrawalId: 'after-pending',
        asset: 'USD',
        amount: '1',
      })
      return write.status === 201
        ? []
        : [`a withdrawal 2 s later answers ${write.status} ${JSON.stringify(write.body)}`]
    }
    await expectForgeryRefused(
      target,
      () => {
        const rogue = new Y.Doc()
        const updates: Uint8Array[] = []
        rogue.on('update', (update: Uint8Array) => updates.push(update))
        rogue.getMap('accounts').set('ghost-1', { accountId: 'ghost-1', createdAt: 1, node: 'z' })
        rogue.getMap('accounts').set('ghost-2', { accountId: 'ghost-2', createdAt: 1, node: 'z' })
        // The second alone: it depends on the first, which is never sent.
        return updates[1]!
      },
      { effects },
    )
  })

  // Last: if it is applied, node a can no longer compute this document's content digest.
  it('refuses an entry the node cannot encode as JSON (a bigint)', async () => {
    const target = await victim('bigint')
    await expectForgeryRefused(
      target,
      (copy) => {
        copy.getMap('transfers').set(`deposit/${target.accountId}/big`, 10n ** 30n)
      },
      {
        effects: async () => {
          const status = await a.admin('GET', '/v1/mesh/status')
          return status.status === 200 ? [] : [`GET /v1/mesh/status answers ${status.status}`]
        },
      },
    )
  })
})
