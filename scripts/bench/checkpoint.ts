// What an epoch checkpoint's compaction does to one shard document: the encoded size and the heap
// of the document loaded from it, before and after, for a shard of N ledger transfers written by
// two nodes (state layer only: the same commands, cut, fold and compaction the replica runs).
//
//   node --expose-gc --import tsx scripts/bench/checkpoint.ts -- [--transfers 20000]
//     [--accounts 200] [--seed 1] [--age old|recent] [--untimed-deposits]
//
// `--age old` puts the history (and the cut) far past the window within which a retry of a
// request id can still come, so the checkpoint keeps no id; `recent` cuts right after the writes,
// so it keeps every id. `--untimed-deposits` writes deposits without a signedAt, as they were
// before deposits carried one: the checkpoint keeps their ids for good.

import * as Y from 'yjs'
import { signatureWindowMsDefault } from '../../src/constants'
import { recognizeMs } from '../../src/domain/checkpoint'
import * as accountIndex from '../../src/state/account-index'
import * as checkpoint from '../../src/state/checkpoint'
import * as commands from '../../src/state/commands'
import { generateOperatorKey, seal, type SignedMap } from '../../src/state/operator-signature'
import * as shard from '../../src/state/shard-doc'
import { integerOption, parseOptions, runMain, UsageError } from '../lib/cli'
import { integerBetween, seededRandom } from '../lib/random'

const usage =
  'usage: node --expose-gc --import tsx scripts/bench/checkpoint.ts -- [--transfers N] ' +
  '[--accounts N] [--seed N] [--age old|recent] [--untimed-deposits]'

const t0 = 1_700_000_000_000

/** Heap taken by a document loaded from `update`, after a full collection. */
function loadedHeapBytes(update: Uint8Array): number {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect === undefined) throw new UsageError('run node with --expose-gc')
  const gc = () => {
    for (let i = 0; i < 3; i++) collect()
  }
  gc()
  const before = process.memoryUsage().heapUsed
  const doc = new Y.Doc()
  Y.applyUpdate(doc, update)
  const index = accountIndex.observe(doc)
  gc()
  const heap = process.memoryUsage().heapUsed - before
  if (index.byAccount.size < 0) throw new Error('unreachable: keeps the index alive')
  return heap
}

function build(transfers: number, accounts: number, seed: number, untimedDeposits: boolean) {
  const random = seededRandom(seed)
  const nodes = ['a', 'b'].map((name, i) => {
    const doc = new Y.Doc()
    doc.clientID = i + 1
    return { name, doc, index: accountIndex.observe(doc) }
  })
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
  const ids = Array.from({ length: accounts }, (_, i) => `acct-${i.toString().padStart(5, '0')}`)
  for (const accountId of ids) commands.createAccount(a.doc, { accountId }, { node: 'a', now: t0 })
  // Deposits carry the operator's signature, as on a node.
  const { signingKey } = generateOperatorKey()
  const sealed = (map: SignedMap, entry: Record<string, unknown>) => seal(signingKey, map, entry)
  Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc))
  for (let i = 0; i < transfers; i++) {
    const writer = i % 2 === 0 ? a : b
    const accountId = ids[integerBetween(random, 0, accounts - 1)]!
    const at = { node: writer.name, now: t0 + i, seal: sealed }
    const amount = BigInt(integerBetween(random, 1, 1_000)) * 1_000_000n
    const depositAmount = 20n * amount
    // Mostly withdrawals, as on a venue: a deposit only when the balance would not cover one.
    const deposits = accountIndex.balanceOf(writer.index, accountId) < amount
    writer.doc.transact(() => {
      if (deposits) {
        commands.deposit(
          writer.doc,
          {
            depositId: `d${i}`,
            accountId,
            amount: depositAmount,
            requestDigest: 'r',
            ...(!untimedDeposits && { signedAt: at.now }),
          },
          at,
        )
      } else {
        const figures = { collateral: amount } as Parameters<typeof commands.withdraw>[2]
        const whole = { rights: amount, commitment: 0n, usable: amount }
        commands.withdraw(
          writer.doc,
          { withdrawalId: `w${i}`, accountId, amount, requestDigest: 'r' },
          { ...figures, initialMargin: 0n, maintenanceMargin: 0n, unrealizedPnl: 0n },
          whole,
          at,
        )
      }
    })
    // The two nodes replicate as they go, one update at a time.
    if (i % 100 === 99) {
      Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc, Y.encodeStateVector(b.doc)))
      Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc, Y.encodeStateVector(a.doc)))
    }
  }
  Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc, Y.encodeStateVector(b.doc)))
  Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc, Y.encodeStateVector(a.doc)))
  return { a, b, ids }
}

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv, {
    transfers: { type: 'string', default: '20000' },
    accounts: { type: 'string', default: '200' },
    seed: { type: 'string', default: '1' },
    age: { type: 'string', default: 'old' },
    'untimed-deposits': { type: 'boolean', default: false },
  })
  const transfers = integerOption('--transfers', options.transfers, 1, 1_000_000)
  const accounts = integerOption('--accounts', options.accounts, 1, 100_000)
  const seed = integerOption('--seed', options.seed, 0, 2 ** 31)
  if (options.age !== 'old' && options.age !== 'recent') throw new UsageError('--age old|recent')
  const untimedDeposits = options['untimed-deposits'] === true
  const { a, b, ids } = build(transfers, accounts, seed, untimedDeposits)
  const balances = (index: accountIndex.AccountIndex) =>
    ids.map((id) => accountIndex.balanceOf(index, id)).join(',')
  const before = Y.encodeStateAsUpdate(a.doc)
  const balancesBefore = balances(a.index)

  const window = signatureWindowMsDefault
  const cutTime = t0 + transfers + (options.age === 'old' ? 2 * recognizeMs(window) : 1_000)
  const cut = checkpoint.currentCut(a.doc)
  const fold = checkpoint.foldAt(a.doc, undefined, cut, cutTime, window)
  const entry: shard.Checkpoint = {
    ...fold,
    id: shard.checkpointKey(1),
    epoch: 1,
    shard: 0,
    base: null,
    cut,
    cutTime,
    writer: 'a',
    members: ['a', 'b'],
  }
  a.doc.transact(() => shard.checkpoints(a.doc).set(entry.id, entry))
  for (const node of [a, b]) {
    Y.applyUpdate(node.doc, Y.encodeStateAsUpdate(node === a ? b.doc : a.doc))
    const id = shard.ackKey(1, node.name)
    const ack = { id, epoch: 1, node: node.name, root: fold.root, publicKey: '', signature: '' }
    node.doc.transact(() => shard.checkpointAcks(node.doc).set(id, ack))
  }
  Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc, Y.encodeStateVector(a.doc)))
  const deleted = a.doc.transact(() => checkpoint.compact(a.doc, a.index.inForce!))
  const after = Y.encodeStateAsUpdate(a.doc)
  if (balances(a.index) !== balancesBefore) throw new Error('compaction changed a balance')
  const reloaded = new Y.Doc()
  Y.applyUpdate(reloaded, after)
  if (balances(accountIndex.observe(reloaded)) !== balancesBefore) {
    throw new Error('a reload of the compacted document changed a balance')
  }
  const figures = {
    transfers,
    accounts,
    seed,
    age: options.age,
    untimedDeposits,
    deleted,
    recognizedIds: Object.keys(fold.recognized).length,
    checkpointBytes: JSON.stringify(entry).length,
    encodedBytes: { before: before.byteLength, after: after.byteLength },
    loadedHeapBytes: { after: loadedHeapBytes(after), before: loadedHeapBytes(before) },
  }
  console.log(JSON.stringify(figures, null, 2))
  return 0
}

runMain('checkpoint', usage, main)
