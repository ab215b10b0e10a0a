// Shared by the state tests: a replica is a Y.Doc with its account index and the log of the
// updates it wrote itself, and every command runs in its own transaction, as ShardReplica does.

import * as Y from 'yjs'
import * as ledger from '../../src/domain/ledger'
import type * as money from '../../src/domain/money'
import * as accountIndex from '../../src/state/account-index'
import type { AccountFigures } from '../../src/domain/account'
import * as accountFigures from '../../src/state/account-figures'
import * as commands from '../../src/state/commands'
import * as shard from '../../src/state/shard-doc'

/** Origin of updates applied from another replica; they are not re-logged as own writes. */
export const remote = Symbol('remote')

export type Replica = {
  name: string
  doc: Y.Doc
  index: accountIndex.AccountIndex
  /** Updates this replica wrote itself, in order. */
  own: Uint8Array[]
}

export function replica(name: string, clientID: number): Replica {
  const doc = new Y.Doc({ gc: true })
  doc.clientID = clientID
  const own: Uint8Array[] = []
  doc.on('update', (update: Uint8Array, origin: unknown) => {
    if (origin !== remote) own.push(update)
  })
  return { name, doc, index: accountIndex.observe(doc), own }
}

export const context = (node: string, now = 1_700_000_000_000): commands.RecordContext => ({
  node,
  now,
})

/** An account's figures with no markets, as ShardReplica computes them before a withdrawal. */
export const figuresOf = (index: accountIndex.AccountIndex, accountId: string): AccountFigures =>
  accountFigures.accountFigures(index, accountId, [], new Map())

/** commands.withdraw, deciding on the figures folded from `index` (the replica's path). */
export const withdraw = (
  doc: Y.Doc,
  index: accountIndex.AccountIndex,
  input: commands.WithdrawalInput,
  at: commands.RecordContext,
) => {
  const figures = figuresOf(index, input.accountId)
  // The state layer alone: every replica may spend the whole balance. Escrow (domain/escrow.ts)
  // is the replica's part, tested on its own and with real nodes.
  const whole = { rights: figures.collateral, commitment: 0n, usable: figures.collateral }
  return commands.withdraw(doc, input, figures, whole, at)
}

/** Runs one command in one transaction and returns its result with the update it made, if any. */
export function run<T>(
  doc: Y.Doc,
  command: () => commands.CommandResult<T>,
): { result: commands.CommandResult<T>; updates: Uint8Array[] } {
  const updates: Uint8Array[] = []
  const capture = (update: Uint8Array) => updates.push(update)
  doc.on('update', capture)
  try {
    return { result: doc.transact(command, 'test'), updates }
  } finally {
    doc.off('update', capture)
  }
}

/** Everything that identifies a document's state, byte for byte. */
export const snapshot = (doc: Y.Doc) => ({
  state: Buffer.from(Y.encodeStateAsUpdate(doc)).toString('hex'),
  stateVector: Buffer.from(Y.encodeStateVector(doc)).toString('hex'),
})

export const apply = (doc: Y.Doc, update: Uint8Array) => Y.applyUpdate(doc, update, remote)

/** Balances folded from every transfer in the document, sorted by account for comparison. */
export const balances = (doc: Y.Doc): [string, money.Units][] =>
  [...ledger.balances(shard.transfers(doc).values())].sort(([a], [b]) => (a < b ? -1 : 1))

export const balanceOf = (doc: Y.Doc, account: string): money.Units =>
  ledger.balanceOf(shard.transfers(doc).values(), account)

/** A deterministic PRNG (mulberry32) for delivery schedules driven by a fast-check seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
