// Hand-made chaos runs for the checker tests: a history and final states built entry by entry, so
// each test can plant exactly one fault (a lost write, a double debit, an overdraft, a lone leg...)
// into an otherwise clean run. Digests are content hashes, so equal contents agree.

import { createHash } from 'node:crypto'
import { define } from '../../src/domain/instrument'
import { defaultCatalog } from '../../src/instruments'
import type { CheckInput } from '../../scripts/chaos/checkers'
import { canonical } from '../../scripts/chaos/checkers/convergence'
import { replayTrading } from '../../scripts/chaos/checkers/model'
import {
  balancesOf,
  decimal,
  nodeView,
  type Decision,
  type FinalState,
  type NodeFinal,
  type Step,
  type Transfer,
} from '../../scripts/chaos/final-state'
import type { HistoryEvent, Op, Outcome, ReplySummary } from '../../scripts/chaos/history'

type Maps = Record<string, Record<string, unknown>>

export type World = {
  history: HistoryEvent[]
  nodes: Map<string, Map<string, Maps>>
  /** Records one try of `op` at `node` with its outcome. */
  attempt(
    op: Op,
    node: string,
    outcome: Outcome,
    extra?: { status?: number; code?: string; retryable?: boolean; reply?: ReplySummary },
  ): void
  /** Writes `value` under `key` of map `map` of document `doc` on `on` (default: every node). */
  put(doc: string, map: string, key: string, value: unknown, on?: string[]): void
  account(accountId: string): void
  transfer(
    kind: 'deposit' | 'withdrawal',
    accountId: string,
    requestId: string,
    amount: string,
    on?: string[],
  ): Transfer
  step(instrument: string, step: Step, on?: string[]): void
  /** The shard's record of an order (its client order id taken). */
  orderRecord(op: Extract<Op, { f: 'order' }>, on?: string[]): void
  /**
   * The check input; API reads are derived from each node's entries unless `reads` is false.
   * `nodes` are the ones read at the end (default every node; one that left is not).
   */
  input(options?: { reads?: boolean; nodes?: string[] }): CheckInput
}

export const ids = ['a', 'b', 'c']
const docNames = ['shard/0', 'shard/1', 'market/BTC-PERP', 'market/ETH-PERP']
const shardOf = (accountId: string) => (accountId.length % 2 === 0 ? 'shard/0' : 'shard/1')

export function world(): World {
  let t = 0
  const history: HistoryEvent[] = []
  const nodes = new Map(ids.map((id) => [id, new Map(docNames.map((name) => [name, {} as Maps]))]))
  const self: World = {
    history,
    nodes,
    attempt(op, node, outcome, extra = {}) {
      const attempt =
        history.filter((e) => e.type === 'invoke' && e.op.requestId === op.requestId).length + 1
      history.push({ type: 'invoke', t: t++, process: 1, attempt, node, op })
      const status = extra.status ?? (outcome === 'ok' ? 201 : outcome === 'fail' ? 422 : undefined)
      history.push({
        type: outcome,
        t: t++,
        process: 1,
        attempt,
        node,
        op,
        ...(status !== undefined && { status }),
        ...extra,
      })
    },
    put(doc, map, key, value, on = ids) {
      for (const id of on) {
        const maps = nodes.get(id)!.get(doc)!
        ;(maps[map] ??= {})[key] = structuredClone(value)
      }
    },
    account(accountId) {
      self.put(shardOf(accountId), 'accounts', accountId, { accountId, createdAt: 1, node: 'a' })
    },
    transfer(kind, accountId, requestId, amount, on) {
      const id = `${kind}/${accountId}/${requestId}`
      const transfer: Transfer = {
        id,
        kind,
        from: kind === 'deposit' ? '@external' : accountId,
        to: kind === 'deposit' ? accountId : '@external',
        amount,
        ts: t++,
        node: 'a',
        requestDigest: 'x',
      }
      self.put(shardOf(accountId), 'transfers', id, transfer, on)
      return transfer
    },
    step(instrument, step, on) {
      self.put(`market/${instrument}`, 'steps', String(step.seq).padStart(12, '0'), step, on)
    },
    orderRecord(op, on) {
      const record = {
        orderId: op.orderId,
        clientOrderId: op.requestId,
        accountId: op.accountId,
        instrument: op.instrument,
      }
      self.put(shardOf(op.accountId), 'orders', op.orderId, record, on)
    },
    input({ reads = true, nodes: read = ids } = {}) {
      const final: FinalState = {
        nodes: read.map((id) => nodeFinal(id, nodes.get(id)!)),
        instruments: defaultCatalog,
        accounts: [],
        convergence: { converged: true, ms: 1234, timeoutMs: 60_000, detail: '' },
      }
      const input = { history: structuredClone(history), final }
      if (reads) for (const node of final.nodes) derivedReads(input, node)
      return input
    },
  }
  return self
}

function nodeFinal(id: string, docs: Map<string, Maps>): NodeFinal {
  const digest = (value: unknown) =>
    createHash('sha256').update(canonical(value)).digest('hex').slice(0, 32)
  return {
    node: id,
    docs: Object.fromEntries(
      [...docs].map(([name, content]) => [
        name,
        {
          stateVectorDigest: digest(content),
          contentDigest: digest(content),
          pending: false,
          damaged: false,
          content: structuredClone(content),
        },
      ]),
    ),
    accounts: {},
  }
}

/** What a correct node's API would read: its entries folded. */
function derivedReads(input: CheckInput, node: NodeFinal): void {
  const view = nodeView(node)
  const balances = balancesOf(view)
  const instruments = new Map(input.final.instruments.map((spec) => [spec.symbol, define(spec)]))
  const model = replayTrading(view, instruments)
  for (const accountId of view.accounts) {
    const positions: Record<string, string> = {}
    for (const [symbol, book] of model.positions) {
      const size = book.get(accountId)?.size ?? 0n
      if (size !== 0n) positions[symbol] = decimal(size, instruments.get(symbol)!.sizeDecimals)
    }
    node.accounts[accountId] = { collateral: decimal(balances.get(accountId) ?? 0n, 6), positions }
  }
}

export const order = (
  accountId: string,
  requestId: string,
  side: 'buy' | 'sell',
  price: string,
  size: string,
): Extract<Op, { f: 'order' }> => ({
  f: 'order',
  requestId,
  accountId,
  orderId: `o-${accountId}-${requestId}`,
  instrument: 'BTC-PERP',
  side,
  type: 'limit',
  price,
  size,
  timeInForce: 'GTC',
})

export const orderInput = (op: Extract<Op, { f: 'order' }>) => ({
  kind: 'order' as const,
  orderId: op.orderId,
  accountId: op.accountId,
  side: op.side,
  size: op.size,
  price: op.price,
})

export type { Decision, Step }
