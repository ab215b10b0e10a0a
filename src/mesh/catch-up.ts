// A catch-up (what a peer lacks, from its state vector) as a sequence of bounded updates instead of
// one SyncStep2 of everything: a wiped node rebuilding a large shard would otherwise receive one
// frame over the link's limit, refused on every redial. Each piece is a valid update on its own,
// in causal order: every struct's dependencies (its left and right origins, a nested parent) are
// in the peer's state or in an earlier piece, so each applies without leaving structs pending
// (which remote-checks.ts refuses) and is persisted on its own. The delete set comes last, once
// every struct it may name has been sent. Applied in order, the pieces leave the peer holding
// everything this document has integrated, as Y.encodeStateAsUpdate would (structs still pending
// here are not sent: this replica does not hold them either).
//
//   piece = varUint(runs) run* deleteSet      (Yjs update format v1)
//   run   = varUint(structs) varUint(client) varUint(first clock) struct*
//
// A piece holds at most `bytesMax` bytes, unless one struct alone is larger (it travels alone), an
// overwritten map entry cannot be parted from the one that replaced it (see `supersededBy`), or the
// delete set alone is larger (it travels last, alone).

import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { assert } from '../domain/assert'

type Struct = Y.Item | Y.GC

/** A run's header (three varUints: counts and clocks below 2^53 take at most 8 bytes each). */
const runHeaderBytesMax = 24
/** The varUint count of runs that opens a piece. */
const pieceHeaderBytesMax = 8

type Piece = {
  runs: Map<number, { clock: number; structs: Uint8Array[] }>
  bytes: number
}

const emptyPiece = (): Piece => ({ runs: new Map(), bytes: pieceHeaderBytesMax })

/**
 * What `doc` holds beyond `remote` (a peer's state vector), as updates of at most `bytesMax`,
 * each made when asked for: a caller may send one and let other work run before the next. If the
 * document changes in between, later pieces carry what was added to writers not yet sent, and the
 * delete set is read at the end; what was added to writers already sent is the caller's to send.
 */
export function* catchUpPieces(
  doc: Y.Doc,
  remote: ReadonlyMap<number, number>,
  bytesMax: number,
): Generator<Uint8Array> {
  let piece = emptyPiece()
  for (const { client, clock, struct, offset, joined } of causalOrder(doc, remote)) {
    const encoder = new Y.UpdateEncoderV1()
    struct.write(encoder, offset)
    const bytes = encoder.toUint8Array()
    if (!joined && piece.runs.size > 0 && piece.bytes + costOf(piece, client, bytes) > bytesMax) {
      yield encodePiece(piece, emptyDeleteSet)
      piece = emptyPiece()
    }
    piece.bytes += costOf(piece, client, bytes)
    const run = piece.runs.get(client)
    if (run === undefined) piece.runs.set(client, { clock, structs: [bytes] })
    else run.structs.push(bytes)
  }
  const deleteSet = encodeDeleteSet(Y.createDeleteSetFromStructStore(doc.store))
  if (piece.runs.size > 0 && piece.bytes + deleteSet.byteLength > bytesMax) {
    yield encodePiece(piece, emptyDeleteSet)
    piece = emptyPiece()
  }
  yield encodePiece(piece, deleteSet)
}

const costOf = (piece: Piece, client: number, bytes: Uint8Array): number =>
  bytes.byteLength + (piece.runs.has(client) ? 0 : runHeaderBytesMax)

type Step = {
  client: number
  /** The clock the struct is sent from: its own, or past the part the peer holds. */
  clock: number
  struct: Struct
  offset: number
  /** Must travel in the same piece as the step before it (see `supersededBy`). */
  joined: boolean
}

/**
 * Every struct `doc` holds beyond `remote`, in an order where each comes after what it depends
 * on. Depth first: a client's next struct whose dependency is not sent yet sends that
 * dependency's client first (a stack, not recursion).
 */
function* causalOrder(doc: Y.Doc, remote: ReadonlyMap<number, number>): Generator<Step> {
  const clients = doc.store.clients
  // The next clock the peer lacks, per client: what it holds, then what was sent. A writer that
  // appears while the pieces are being sent (the document changed in between) starts where the
  // peer stands.
  const sent = new Map<number, number>()
  const sentOf = (client: number) => sent.get(client) ?? remote.get(client) ?? 0
  const held = (id: Y.ID) => id.clock < sentOf(id.client)
  const end = (client: number) => {
    const last = clients.get(client)!.at(-1)!
    return last.id.clock + last.length
  }
  const next = (client: number): Struct => {
    const structs = clients.get(client)!
    return structs[Y.findIndexSS(structs, sentOf(client))]!
  }
  // Entries sent deleted whose superseding entry must follow in the same piece.
  const awaited = new Set<Y.Item>()
  // Superseded entries sent without waiting for their successor's writer: waiting closed a cycle.
  const unordered = new Set<Struct>()
  // Causal dependencies form no cycle, so between two structs sent the stack pushes each writer
  // at most once; waiting for a successor's writer can close a cycle (see `supersededBy`), which
  // pushing past that reveals.
  const pushesMax = () => clients.size + 1
  // Between two structs sent: at most every writer popped, and every cycle broken.
  const stepsMax = () => (clients.size + 1) * (pushesMax() + 2)
  let steps = 0
  for (const root of clients.keys()) {
    const stack: { client: number; waitsForSuccessor: boolean }[] = [
      { client: root, waitsForSuccessor: false },
    ]
    let pushes = 0
    while (stack.length > 0) {
      assert(++steps <= stepsMax(), 'a catch-up sends a struct within a bounded number of steps')
      const frame = stack.at(-1)!
      const clock = sentOf(frame.client)
      if (clock >= end(frame.client)) {
        stack.pop()
        continue
      }
      const struct = next(frame.client)
      const offset = clock - struct.id.clock
      const successor = supersededBy(struct)
      // A successor by the same writer comes later in its own run: nothing to wait for.
      const waits =
        successor !== undefined &&
        successor.id.client !== struct.id.client &&
        !unordered.has(struct)
      const causal = dependenciesOf(struct, offset).find((id) => !held(id))
      const missing = causal ?? (waits ? successorWriterBefore(successor) : undefined)
      if (missing !== undefined && !held(missing)) {
        if (++pushes > pushesMax()) {
          // Send the topmost entry that waits for its successor's writer without waiting.
          const waiting = stack.findLastIndex((f) => f.waitsForSuccessor)
          assert(waiting >= 0, 'a cycle of waits goes through a superseded entry')
          unordered.add(next(stack[waiting]!.client))
          stack.length = waiting + 1
          stack[waiting]!.waitsForSuccessor = false
          pushes = 0
          continue
        }
        frame.waitsForSuccessor = causal === undefined
        stack.push({ client: missing.client, waitsForSuccessor: false })
        continue
      }
      pushes = 0
      steps = 0
      const joined = awaited.size > 0
      if (struct instanceof Y.Item) awaited.delete(struct)
      yield { client: frame.client, clock, struct, offset, joined }
      sent.set(frame.client, struct.id.clock + struct.length)
      if (successor !== undefined && !held(successor.id)) {
        awaited.add(successor)
        stack.push({ client: successor.id.client, waitsForSuccessor: false })
      }
    }
  }
  assert(awaited.size === 0, 'every superseding entry was sent')
}

/**
 * The last struct of the successor's writer before the successor (so the successor can follow
 * at once), if the successor has another writer; undefined if there is nothing to wait for.
 */
function successorWriterBefore(successor: Y.Item | undefined): Y.ID | undefined {
  if (successor === undefined || successor.id.clock === 0) return undefined
  return Y.createID(successor.id.client, successor.id.clock - 1)
}

/**
 * The entry that replaced `struct` under its map key, if `struct` is a map entry this replica
 * holds deleted under a newer one (the same write made on two nodes, merged). Such an entry is
 * sent right before its successor, in the same piece: alone, it would leave its key deleted on
 * the receiver, which remote-checks refuse.
 */
function supersededBy(struct: Struct): Y.Item | undefined {
  if (!(struct instanceof Y.Item) || !struct.deleted || struct.parentSub === null) return undefined
  if (!(struct.parent instanceof Y.AbstractType)) return undefined
  const visible = struct.parent._map.get(struct.parentSub)
  return visible !== undefined && visible !== struct && !visible.deleted ? visible : undefined
}

/** The structs a receiver needs before it can integrate `struct` from `offset` on. */
function dependenciesOf(struct: Struct, offset: number): Y.ID[] {
  if (!(struct instanceof Y.Item)) return []
  const ids: Y.ID[] = []
  // From an offset on, the left origin is the struct's own previous clock: already sent.
  if (offset === 0 && struct.origin !== null) ids.push(struct.origin)
  if (struct.rightOrigin !== null) ids.push(struct.rightOrigin)
  const parent = struct.parent
  if (parent instanceof Y.ID) ids.push(parent)
  else if (parent instanceof Y.AbstractType && parent._item !== null) ids.push(parent._item.id)
  return ids
}

const emptyDeleteSet = new Uint8Array([0])

function encodePiece(piece: Piece, deleteSet: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, piece.runs.size)
  // Higher client ids first, as Yjs writes them.
  for (const [client, run] of [...piece.runs].sort(([x], [y]) => y - x)) {
    encoding.writeVarUint(encoder, run.structs.length)
    encoding.writeVarUint(encoder, client)
    encoding.writeVarUint(encoder, run.clock)
    for (const struct of run.structs) encoding.writeUint8Array(encoder, struct)
  }
  encoding.writeUint8Array(encoder, deleteSet)
  return encoding.toUint8Array(encoder)
}

/** A delete set in the v1 update format (the encoding Yjs' own writeDeleteSet gives). */
function encodeDeleteSet(
  deleteSet: ReturnType<typeof Y.createDeleteSetFromStructStore>,
): Uint8Array {
  const encoder = new Y.UpdateEncoderV1()
  encoding.writeVarUint(encoder.restEncoder, deleteSet.clients.size)
  for (const [client, ranges] of [...deleteSet.clients].sort(([x], [y]) => y - x)) {
    encoder.resetDsCurVal()
    encoding.writeVarUint(encoder.restEncoder, client)
    encoding.writeVarUint(encoder.restEncoder, ranges.length)
    for (const range of ranges) {
      encoder.writeDsClock(range.clock)
      encoder.writeDsLen(range.len)
    }
  }
  return encoder.toUint8Array()
}
