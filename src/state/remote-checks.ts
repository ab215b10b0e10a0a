// What a peer may change in a document, checked inside the transaction that applies its update
// (before anything is persisted; a refusal reloads what is durable). A node holding the mesh secret
// can still send anything, so the schema's own rules are enforced on every remote update:
// - only the document's own root maps, holding plain JSON entries (no nested types, no bigints);
// - entries are written once: none changes except by the same write made on another node (the
//   same request, merged: equal once the recording node and time are left out), and none
//   disappears but by the compaction of an epoch checkpoint in force (src/state/checkpoint.ts,
//   src/state/market-checkpoint.ts);
// - every entry passes its map's check (amounts that parse, ids that match their keys, accounts
//   that belong to this shard; deposits and breakers signed by the operator's key, checkpoint
//   acknowledgements by their node's key (its pinned one, when NODE_PUBLIC_KEYS pins them), a
//   forged one handed to the replica as evidence: src/state/operator-signature.ts);
// - no update leaves structs pending on dependencies that did not come with it.

import * as merkle from '../domain/merkle'
import * as Y from 'yjs'
import { breakerModes } from '../domain/breakers'
import * as money from '../domain/money'
import { keyRateMax } from '../constants'
import { deletionAllowed, inForce } from './checkpoint'
import { hasPending } from './digest'
import * as marketCheckpoint from './market-checkpoint'
import { marketAckKey, stepKeyOf } from './market-doc'
import { ackKey } from './shard-doc'
import { verified, verifiedContent, type SignedMap } from './operator-signature'
import { shardOf } from './shard-of'

/** A map's check of one entry (sent by `origin`): why it is refused, or undefined. */
export type EntryCheck = (
  key: string,
  value: Record<string, unknown>,
  origin: unknown,
) => string | undefined

/**
 * A document's rules for remote updates: its root maps with each one's entry check, and which
 * deletions the document's checkpoint in force allows (`deletable` is made per update, so it
 * reads the checkpoint once, and only if the update deletes something).
 */
export type DocRules = {
  maps: ReadonlyMap<string, EntryCheck>
  deletable: (doc: Y.Doc) => (name: string, key: string) => boolean
}

/** An entry that should carry a valid signature and does not: what the replica records. */
export type ForgedEntry = {
  map: SignedMap | 'checkpointAcks'
  key: string
  entry: Record<string, unknown>
  origin: string
  /** Why it was refused. */
  refused: string
}

/**
 * Whose signatures entries must carry: the operator's public key, and every node's pinned public
 * key (null: unpinned, an acknowledgement is checked against the key it carries); and who hears
 * of forged entries (the replica records them).
 */
export type SignerCheck = {
  publicKey: string
  nodeKeys: ReadonlyMap<string, string> | null
  onForged: (forged: ForgedEntry) => void
}

/** Fields that legitimately differ between two nodes' copies of the same write (each node that
 * takes a deposit signs its own copy, with its own time and node id, and each attempt of the
 * request carries its own signedAt). */
const recordingFields = new Set([
  'ts',
  'createdAt',
  'node',
  'receivedAt',
  'evidence',
  'revokedAt',
  'signature',
  'signedAt',
])

const sameWrite = (x: Record<string, unknown>, y: Record<string, unknown>): boolean => {
  const essence = (entry: Record<string, unknown>) =>
    JSON.stringify(
      Object.keys(entry)
        .filter((field) => !recordingFields.has(field))
        .sort()
        .map((field) => [field, entry[field]]),
    )
  return essence(x) === essence(y)
}

const plainJson = (value: unknown): value is Record<string, unknown> => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  try {
    return JSON.stringify(JSON.parse(JSON.stringify(value))) === JSON.stringify(value)
  } catch {
    return false // a bigint, a cycle: not JSON
  }
}

/**
 * Checks the changes of `transaction` (a remote update just applied to `doc`) against `rules`.
 * `pendingBefore` is whether structs were pending before the update. Returns why the update is
 * refused, or undefined.
 */
export function refusal(
  doc: Y.Doc,
  transaction: Y.Transaction,
  rules: DocRules,
  pendingBefore: boolean,
): string | undefined {
  const { maps } = rules
  for (const name of doc.share.keys()) {
    if (!maps.has(name)) return `root type "${name}" is not in this document's schema`
  }
  const names = new Map([...doc.share].map(([name, type]) => [type, name]))
  const deletable = rules.deletable(doc)
  for (const [type, keys] of transaction.changed) {
    const name = names.get(type)
    if (type._item !== null || name === undefined) return 'nested types are not in the schema'
    const check = maps.get(name)!
    for (const key of keys) {
      if (key === null) return `${name} is a map, not a list`
      const item = type._map.get(key)
      if (item?.deleted === true && (!heldBefore(item, transaction) || deletable(name, key)))
        continue
      if (item === undefined || item.deleted) return `${name}/${key} would be deleted`
      if (!(item.content instanceof Y.ContentAny)) return 'nested types are not in the schema'
      const value = item.content.getContent().at(-1)
      if (!plainJson(value)) return `${name}/${key} is not a plain JSON object`
      const previous = visibleBefore(item, transaction)
      if (previous !== undefined && !(plainJson(previous) && sameWrite(previous, value))) {
        return `${name}/${key} would be overwritten with different content`
      }
      const refused = check(key, value, transaction.origin)
      if (refused !== undefined) return `${name}/${key}: ${refused}`
    }
  }
  if (!pendingBefore && hasPending(doc)) {
    return 'the update depends on structs that did not come with it'
  }
  return undefined
}

/**
 * Whether this document showed a value under the map key of `item` before `transaction`. A node
 * that never held an entry may receive it already deleted (a peer compacted it: a far-behind or
 * wiped node catching up piece by piece gets the deleted entries before the checkpoint's
 * acknowledgements): taking that removes nothing it held.
 */
function heldBefore(item: Y.Item, transaction: Y.Transaction): boolean {
  for (let struct: Y.Item | null = item; struct !== null; struct = struct.left) {
    const existed = struct.id.clock < (transaction.beforeState.get(struct.id.client) ?? 0)
    if (existed && (!struct.deleted || Y.isDeleted(transaction.deleteSet, struct.id))) return true
  }
  return false
}

/** The value a map key showed before `transaction`, if the transaction replaced one. */
function visibleBefore(item: Y.Item, transaction: Y.Transaction): unknown {
  for (let left = item.left; left !== null; left = left.left) {
    const existed = left.id.clock < (transaction.beforeState.get(left.id.client) ?? 0)
    if (existed && Y.isDeleted(transaction.deleteSet, left.id)) {
      return left.content.getContent().at(-1)
    }
    if (existed && !left.deleted) return undefined
  }
  return undefined
}

const text = (value: unknown): value is string => typeof value === 'string' && value.length <= 256

const keyed =
  (field: string, more: EntryCheck = () => undefined): EntryCheck =>
  (key, value, origin) =>
    value[field] !== key ? `its ${field} is not its key` : more(key, value, origin)

const usd = (value: unknown): string | undefined =>
  money.parse(value, money.usdTransfer).ok
    ? undefined
    : `amount ${String(value)} is not a USD amount`

const rateLimit = (value: unknown): string | undefined => {
  if (value === undefined || value === null) return undefined
  const rate = value as Record<string, unknown>
  const valid = [rate.perSecond, rate.burst].every(
    (n) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= keyRateMax,
  )
  return valid && Object.keys(rate).length === 2 ? undefined : 'its rate limit is not a rate'
}

const mode = (value: Record<string, unknown>) =>
  breakerModes.includes(value.mode as never) ? undefined : 'unknown breaker mode'

/** Refuses an entry of `map` the operator did not sign, and hands it over as evidence. */
const operatorSigned =
  (signers: SignerCheck, map: SignedMap) =>
  (key: string, value: Record<string, unknown>, origin: unknown): string | undefined => {
    if (verified(signers.publicKey, map, value)) return undefined
    const refused = "it does not carry the operator's signature"
    signers.onForged({ map, key, entry: value, origin: String(origin), refused })
    return refused
  }

/** The root maps of account shard `shard` (of `shardCount`) and what each entry must be. */
export function shardChecks(shard: number, shardCount: number, signers: SignerCheck): DocRules {
  const ours = (accountId: unknown): string | undefined =>
    text(accountId) && shardOf(accountId, shardCount) === shard
      ? undefined
      : `account ${String(accountId)} is not in shard ${shard}`
  const ownerOfKey = (keyId: string) => keyId.slice(0, Math.max(0, keyId.lastIndexOf('.')))
  const deposits = operatorSigned(signers, 'transfers')
  const maps = new Map<string, EntryCheck>([
    ['accounts', keyed('accountId', (key) => ours(key))],
    ['keys', keyed('keyId', (_key, value) => ours(value.accountId) ?? rateLimit(value.rateLimit))],
    ['revocations', keyed('keyId', (key) => ours(ownerOfKey(key)))],
    [
      'transfers',
      keyed('id', (key, value, origin) => {
        if (value.kind === 'deposit') {
          return (
            usd(value.amount) ?? ours(value.to) ?? signedAt(value) ?? deposits(key, value, origin)
          )
        }
        if (value.kind === 'withdrawal') return usd(value.amount) ?? ours(value.from)
        return `a ${String(value.kind)} is not a shard transfer`
      }),
    ],
    ['orders', keyed('orderId', (_key, value) => ours(value.accountId))],
    ['grants', keyed('id', (_key, value) => usd(value.amount) ?? ours(value.accountId))],
    ['rightsRequests', keyed('id', (_key, value) => usd(value.amount) ?? ours(value.accountId))],
    ['findings', keyed('id')],
    ['breakers', breakerCheck(signers)],
    ['checkpoints', keyed('id', (_key, value) => (value.shard === shard ? undefined : 'not ours'))],
    ['checkpointAcks', keyed('id', ackCheck(shard, signers))],
  ])
  return {
    maps,
    deletable: (doc) =>
      deletions(
        () => inForce(doc),
        (name, key, now) => deletionAllowed(doc, name, key, now),
      ),
  }
}

/** A document's deletion rule, reading its checkpoint in force once, on the first deletion. */
function deletions<T>(
  read: () => T | undefined,
  allowed: (name: string, key: string, inForceNow: () => T | undefined) => boolean,
): (name: string, key: string) => boolean {
  let checkpoint: { inForce: T | undefined } | undefined
  const inForceNow = () => (checkpoint ??= { inForce: read() }).inForce
  return (name, key) => allowed(name, key, inForceNow)
}

/** A deposit's signed time (absent on deposits stored before there was one). */
const signedAt = (deposit: Record<string, unknown>): string | undefined =>
  deposit.signedAt === undefined || wholeNumber(deposit.signedAt)
    ? undefined
    : 'its signedAt is not a time'

/**
 * Why acknowledgement `ack` of `shard` is forged, or undefined: it must sit under its own epoch
 * and node, and carry that node's signature over (shard, epoch, root) by its pinned key, if keys
 * are pinned (else by the key it carries).
 */
export function ackForgery(
  shard: number,
  ack: Record<string, unknown>,
  nodeKeys: ReadonlyMap<string, string> | null,
): string | undefined {
  const { epoch, node, root, publicKey, signature } = ack
  if (!wholeNumber(epoch) || typeof node !== 'string' || ack.id !== ackKey(epoch, node)) {
    return 'its id is not its epoch and node'
  }
  if (typeof root !== 'string' || typeof publicKey !== 'string') {
    return "it does not carry its node's signature"
  }
  if (nodeKeys !== null && nodeKeys.get(node) !== publicKey) {
    return `its key is not node ${node.slice(0, 32)}'s pinned key`
  }
  return verifiedContent(publicKey, merkle.checkpointSignedContent(shard, epoch, root), signature)
    ? undefined
    : "it does not carry its node's signature"
}

/** Refuses a forged acknowledgement, and hands it over as evidence. */
const ackCheck =
  (shard: number, signers: SignerCheck): EntryCheck =>
  (key, value, origin) => {
    const refused = ackForgery(shard, value, signers.nodeKeys)
    if (refused === undefined) return undefined
    signers.onForged({ map: 'checkpointAcks', key, entry: value, origin: String(origin), refused })
    return refused
  }

const breakerCheck = (signers: SignerCheck): EntryCheck => {
  const signed = operatorSigned(signers, 'breakers')
  return keyed('id', (key, value, origin) => mode(value) ?? signed(key, value, origin))
}

const wholeNumber = (value: unknown): value is number =>
  Number.isSafeInteger(value) && (value as number) >= 0

/** A step sits under its (term, seq) key; a term's first step names the step it continues. */
const stepCheck: EntryCheck = (key, value) => {
  const term = value.term ?? 0
  if (!wholeNumber(term)) return 'term is not a whole number'
  if (!wholeNumber(value.seq) || stepKeyOf(term, value.seq) !== key)
    return 'seq and term are not its key'
  const continues = value.continues as Record<string, unknown> | null | undefined
  if (continues === undefined) return undefined
  return continues !== null && wholeNumber(continues.term) && wholeNumber(continues.seq)
    ? undefined
    : 'continues is not a step (term, seq)'
}

/** A market checkpoint sits under its settle step's key and names the mesh as its members. */
const marketCheckpointCheck: EntryCheck = (key, value) => {
  const at = value.at as Record<string, unknown> | null | undefined
  if (at === null || typeof at !== 'object' || !wholeNumber(at.term) || !wholeNumber(at.seq))
    return 'at is not a step (term, seq)'
  if (stepKeyOf(at.term, at.seq) !== key) return 'at is not its key'
  const members = value.members
  return Array.isArray(members) && members.every(text) ? undefined : 'members are not node ids'
}

/** The root maps of a market document (checkpoints acknowledged by `members`), and their checks. */
export function marketChecks(signers: SignerCheck, members: readonly string[]): DocRules {
  const maps = new Map<string, EntryCheck>([
    ['steps', stepCheck],
    ['cancelRequests', keyed('orderId')],
    ['findings', keyed('id')],
    ['breakers', breakerCheck(signers)],
    ['marketCheckpoints', keyed('id', marketCheckpointCheck)],
    [
      'marketCheckpointAcks',
      keyed('id', (key, value) =>
        text(value.checkpoint) &&
        text(value.node) &&
        marketAckKey(value.checkpoint, value.node) === key
          ? undefined
          : 'it is not keyed by its checkpoint and node',
      ),
    ],
  ])
  return {
    maps,
    deletable: (doc) =>
      deletions(() => marketCheckpoint.inForce(doc, members), marketCheckpoint.deletionAllowed),
  }
}
