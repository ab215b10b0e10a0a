// Planted bugs: doctored copies of a recorded run, each the trace a known bug leaves, so anyone can
// see the checkers catch it on real data (`npm run chaos -- --check <dir> --plant lost-write`).
// Nothing here reaches a node: a bug planted inside the node would need a flag in the node, which
// the harness never uses (design.md §5). Each plant names the checkers it must fail.

import type { CheckInput } from './checkers'
import { decimal, usd, type FinalState, type Step, type Transfer } from './final-state'
import type { CompletionEvent, HistoryEvent } from './history'

export type Plant = {
  /** What bug leaves this trace. */
  bug: string
  /** Checkers that must fail on it. */
  expect: string[]
  apply(input: CheckInput): CheckInput
}

const copy = (input: CheckInput): CheckInput => ({
  history: structuredClone(input.history) as HistoryEvent[],
  final: structuredClone(input.final) as FinalState,
})

const shardMaps = (final: FinalState, node: number) =>
  Object.entries(final.nodes[node]?.docs ?? {})
    .filter(([name, doc]) => name.startsWith('shard/') && doc.content !== undefined)
    .map(([, doc]) => doc.content!)

const ackedWithdrawal = (input: CheckInput) => {
  const ack = input.history.find(
    (e): e is CompletionEvent => e.type === 'ok' && e.op.f === 'withdraw',
  )
  if (ack === undefined) throw new Error('the run acknowledged no withdrawal to plant on')
  return ack
}

const transferKey = (ack: CompletionEvent) => `withdrawal/${ack.op.accountId}/${ack.op.requestId}`

export const plants: Record<string, Plant> = {
  'lost-write': {
    bug: 'a node acknowledged a withdrawal before storing it and lost it in a crash',
    expect: ['C1', 'C2', 'C3'],
    apply(input) {
      const doctored = copy(input)
      const key = transferKey(ackedWithdrawal(input))
      const last = doctored.final.nodes.length - 1
      for (const maps of shardMaps(doctored.final, last)) delete maps.transfers?.[key]
      return doctored
    },
  },
  'double-debit': {
    bug: 'a retried withdrawal was recorded under a second id (the request id was not the key)',
    expect: ['C3', 'C6'],
    apply(input) {
      const doctored = copy(input)
      const key = transferKey(ackedWithdrawal(input))
      for (let n = 0; n < doctored.final.nodes.length; n++) {
        for (const maps of shardMaps(doctored.final, n)) {
          const original = maps.transfers?.[key] as Transfer | undefined
          if (original !== undefined)
            maps.transfers![`${key}-again`] = { ...original, id: `${key}-again` }
        }
      }
      return doctored
    },
  },
  overdraft: {
    bug: 'two sides of a partition both approved a withdrawal of the whole balance',
    expect: ['C4'],
    apply(input) {
      const doctored = copy(input)
      const ack = ackedWithdrawal(input)
      const accountId = ack.op.accountId
      const amount = '1000000'
      const op = { f: 'withdraw' as const, requestId: 'planted-overdraft', accountId, amount }
      const t = ack.t
      doctored.history = [
        ...doctored.history,
        { type: 'invoke', t, process: 99, attempt: 1, node: ack.node, op },
        {
          type: 'ok',
          t,
          process: 99,
          attempt: 1,
          node: ack.node,
          op,
          status: 201,
          reply: { amount },
        },
      ]
      const id = `withdrawal/${accountId}/planted-overdraft`
      const transfer: Transfer = {
        id,
        kind: 'withdrawal',
        from: accountId,
        to: '@external',
        amount,
        ts: 0,
        node: ack.node,
      }
      for (let n = 0; n < doctored.final.nodes.length; n++) {
        const maps = shardMaps(doctored.final, n).find((m) => m.accounts?.[accountId] !== undefined)
        if (maps !== undefined) (maps.transfers ??= {})[id] = transfer
        const read = doctored.final.nodes[n]!.accounts[accountId]
        if (read?.collateral !== undefined)
          read.collateral = decimal(usd(read.collateral) - usd(amount), 6)
      }
      return doctored
    },
  },
  'lone-leg': {
    bug: 'a node folded only the taker leg of a fill into positions',
    expect: ['C5', 'C8'],
    apply(input) {
      const doctored = copy(input)
      const node = doctored.final.nodes[0]!
      const holder = Object.values(node.accounts).find(
        (read) => read.positions !== undefined && Object.keys(read.positions).length > 0,
      )
      if (holder === undefined) throw new Error('the run holds no open position to plant on')
      const [symbol] = Object.keys(holder.positions!)
      delete holder.positions![symbol!]
      return doctored
    },
  },
  'double-liquidation': {
    bug: 'a settlement retried after a restart took its epoch again and liquidated again',
    expect: ['C9'],
    apply(input) {
      const doctored = copy(input)
      const isLiquidation = (step: Step) =>
        step.input.kind === 'settle' && step.decisions.some((d) => d.type === 'fill')
      let planted = false
      // On every node, as the merged document would hold it.
      for (const node of doctored.final.nodes) {
        const doc = Object.values(node.docs).find((d) =>
          Object.values(d.content?.steps ?? {}).some((step) => isLiquidation(step as Step)),
        )
        const steps = doc?.content?.steps as Record<string, Step> | undefined
        if (steps === undefined) continue
        const settled = Object.values(steps).find(isLiquidation)!
        const seq = Math.max(...Object.values(steps).map((step) => step.seq)) + 1
        steps[String(seq).padStart(12, '0')] = { ...structuredClone(settled), seq }
        planted = true
      }
      if (!planted) throw new Error('the run liquidated no account to plant on')
      return doctored
    },
  },
  diverge: {
    bug: 'two replicas of one document kept different entries after the heal',
    expect: ['C1'],
    apply(input) {
      const doctored = copy(input)
      const doc = Object.values(doctored.final.nodes[0]?.docs ?? {})[0]
      if (doc === undefined) throw new Error('no document to plant on')
      doc.contentDigest = `planted-${doc.contentDigest}`
      return doctored
    },
  },
}

export function applyPlants(input: CheckInput, names: string[]): CheckInput {
  return names.reduce((doctored, name) => {
    const plant = plants[name]
    if (plant === undefined)
      throw new Error(`unknown plant "${name}"; use ${Object.keys(plants).join(', ')}`)
    return plant.apply(doctored)
  }, input)
}
