// The checkers of the partition harness on hand-made runs: a clean run passes every one, and each
// planted fault (a lost write, a double debit, an overdraft, a lone leg, a fill after a cancel...)
// fails the checker named for it, so none can pass by construction.

import { describe, expect, it } from 'vitest'
import { runCheckers, type CheckInput, type CheckResult } from '../../scripts/chaos/checkers'
import { plants } from '../../scripts/chaos/plant'
import type { Op } from '../../scripts/chaos/history'
import * as folding from '../../src/domain/checkpoint'
import { define } from '../../src/domain/instrument'
import type * as ledger from '../../src/domain/ledger'
import { defaultCatalog } from '../../src/instruments'
import type { MarketCheckpoint, StoredOrder, WireFill } from '../../src/state/market-doc'
import { ackKey, checkpointKey } from '../../src/state/shard-doc'
import { units } from '../../scripts/chaos/final-state'
import { ids, order, orderInput, world, type Decision, type Step, type World } from './world'

const deposit = (accountId: string, requestId: string, amount: string): Op => ({
  f: 'deposit',
  requestId,
  accountId,
  amount,
})
const withdraw = (accountId: string, requestId: string, amount: string): Op => ({
  f: 'withdraw',
  requestId,
  accountId,
  amount,
})

const sell = order('bob', 's1', 'sell', '60000', '0.01')
const buy = order('alice', 'b1', 'buy', '60000', '0.01')
const fill = {
  type: 'fill',
  fillId: 'BTC-PERP/000000000002/0000',
  takerOrderId: buy.orderId,
  makerOrderId: sell.orderId,
  taker: 'alice',
  maker: 'bob',
  takerSide: 'buy' as const,
  price: '60000',
  size: '0.01',
  takerFee: '0.3',
  makerFee: '0.12',
  takerRealized: '0',
  makerRealized: '0',
}

/**
 * Folds every shard document's transfers into a checkpoint every node acknowledged, and deletes
 * them, as compaction does; `keepIds` says whether it still recognises their request ids.
 */
function folded(w: World, { keepIds }: { keepIds: boolean }) {
  for (const [, docs] of w.nodes) {
    for (const [name, maps] of docs) {
      if (!name.startsWith('shard/')) continue
      const transfers = Object.values(maps.transfers ?? {}) as ledger.Transfer[]
      const openings = folding.foldInto(new Map(), transfers, [])
      const entry = {
        epoch: 1,
        members: ['a', 'b', 'c'],
        root: 'r',
        openings: Object.fromEntries([...openings].map(([id, o]) => [id, folding.store(o)])),
        recognized: keepIds ? Object.fromEntries(transfers.map((t) => [t.id, t])) : {},
      }
      maps.checkpoints = { [checkpointKey(1)]: entry }
      maps.checkpointAcks = Object.fromEntries(
        entry.members.map((node) => [ackKey(1, node), { node, epoch: 1, root: 'r' }]),
      )
      maps.transfers = {}
    }
  }
}

/** Step `seq` at `ts`: the matcher accepts `op`, a limit order, and rests all of it. */
const restingStep = (op: typeof sell, seq: number, ts: number): Step => ({
  seq,
  ts,
  node: 'a',
  input: orderInput(op),
  decisions: [
    { type: 'accepted', orderId: op.orderId },
    { type: 'rested', orderId: op.orderId, price: op.price!, remaining: op.size },
  ],
})

/** Step `seq` at `ts`: the matcher takes its account's cancel of `op`, resting whole. */
const userCancelStep = (op: typeof sell, seq: number, ts: number): Step => ({
  seq,
  ts,
  node: 'a',
  input: { kind: 'cancel', orderId: op.orderId, accountId: op.accountId },
  decisions: [{ type: 'cancelled', orderId: op.orderId, reason: 'user', remaining: op.size }],
})

/** Two accounts funded, bob's sell resting, alice's buy filling it, alice withdrawing 100. */
function clean(): World {
  const w = world()
  for (const accountId of ['alice', 'bob']) {
    w.account(accountId)
    w.attempt(deposit(accountId, `initial-${accountId}`, '1000'), 'a', 'ok', {
      reply: { amount: '1000' },
    })
    w.transfer('deposit', accountId, `initial-${accountId}`, '1000')
  }
  w.attempt(sell, 'a', 'ok', { reply: { orderId: sell.orderId, status: 'open', filledSize: '0' } })
  w.orderRecord(sell)
  w.step('BTC-PERP', restingStep(sell, 1, 10))
  w.attempt(buy, 'b', 'info')
  w.attempt(buy, 'a', 'ok', {
    reply: { orderId: buy.orderId, status: 'filled', filledSize: '0.01' },
  })
  w.orderRecord(buy)
  w.step('BTC-PERP', {
    seq: 2,
    ts: 11,
    node: 'a',
    input: orderInput(buy),
    decisions: [{ type: 'accepted', orderId: buy.orderId }, fill],
  })
  w.attempt(withdraw('alice', 'w1', '100'), 'c', 'ok', { reply: { amount: '100' } })
  w.transfer('withdrawal', 'alice', 'w1', '100')
  return w
}

/**
 * Epoch 7 settles the clean run at a mark of 57000 with a funding rate of 0.01%: alice (long 0.01
 * from 60000) is liquidated, her position to the insurance fund at the mark (she realizes -30 and
 * pays 1% of 570 into the fund); then the fund, now long, pays 570 × 0.0001 = 0.057 to bob, short.
 */
const liquidation = {
  type: 'fill',
  fillId: 'BTC-PERP/000000000003/0000',
  takerOrderId: 'liquidation/7/alice',
  makerOrderId: 'insurance/7/alice',
  taker: 'alice',
  maker: '@insurance',
  takerSide: 'sell' as const,
  price: '57000',
  size: '0.01',
  takerFee: '5.7',
  makerFee: '0',
  takerRealized: '-30',
  makerRealized: '0',
  feeTo: '@insurance',
}
const settleStep = (
  seq: number,
  epoch: number,
  decisions: Decision[],
  { fundingRate = '100', liquidate = ['alice'] } = {},
): Step => ({
  seq,
  ts: 20,
  node: 'a',
  input: { kind: 'settle', epoch, mark: '570000', fundingRate, liquidate },
  decisions,
})
const funding = (accountId: string, amount: string): Decision => ({
  type: 'funding',
  fundingId: `BTC-PERP/000000000003/funding/${accountId}`,
  accountId,
  amount,
})
const settlementDecisions = () => [
  liquidation,
  funding('@insurance', '-0.057'),
  funding('bob', '0.057'),
]

function settled(): World {
  const w = clean()
  w.step('BTC-PERP', settleStep(3, 7, settlementDecisions()))
  return w
}

const verdicts = (input: CheckInput) =>
  Object.fromEntries(runCheckers(input).map((r) => [r.id, r.status]))
const result = (input: CheckInput, id: CheckResult['id']) =>
  runCheckers(input).find((r) => r.id === id)!
/** The checkers that fail, and the error types each found. */
const failures = (input: CheckInput) =>
  Object.fromEntries(
    runCheckers(input)
      .filter((r) => r.status === 'fail')
      .map((r) => [r.id, Object.keys(r.errors).sort()]),
  )

describe('a clean run', () => {
  it('passes every checker; liquidations are not applicable without settlement', () => {
    expect(verdicts(clean().input())).toEqual({
      C1: 'pass',
      C2: 'pass',
      C3: 'pass',
      C4: 'pass',
      C5: 'pass',
      C6: 'pass',
      C7: 'pass',
      C8: 'pass',
      C9: 'n/a',
      C10: 'pass',
      C11: 'n/a',
    })
  })

  it('passes every checker with the shard history folded into a checkpoint in force', () => {
    const w = clean()
    const before = verdicts(w.input())
    folded(w, { keepIds: true })
    const input = w.input()
    expect(verdicts(input)).toEqual(before)
    expect(input.final.nodes[0]!.accounts.alice!.collateral).toBe(
      clean().input().final.nodes[0]!.accounts.alice!.collateral,
    )
  })

  it('adds up the openings of the external account across shards folded by checkpoints', () => {
    const w = world()
    // alice's and dave's shards differ: each shard's checkpoint has its own @external opening.
    for (const accountId of ['alice', 'dave']) {
      w.account(accountId)
      w.attempt(deposit(accountId, `initial-${accountId}`, '1000'), 'a', 'ok', {
        reply: { amount: '1000' },
      })
      w.transfer('deposit', accountId, `initial-${accountId}`, '1000')
    }
    folded(w, { keepIds: true })
    const input = w.input()
    expect(result(input, 'C3').valid).toBe(true)
    expect(result(input, 'C3').figures).toMatchObject({ deposits: '2000' })
  })

  it('fails C2 for a folded write whose id the checkpoint no longer recognises', () => {
    const w = clean()
    folded(w, { keepIds: false })
    const input = w.input()
    expect(result(input, 'C2').valid).toBe(false)
    // The balances are still those of the folded history.
    expect(result(input, 'C3').valid).toBe(true)
  })

  it('settled, with a liquidation and funding, passes every checker', () => {
    const input = settled().input()
    expect(failures(input)).toEqual({})
    expect(input.final.nodes[0]!.accounts).toEqual({
      alice: { collateral: '864', positions: {} },
      bob: { collateral: '999.937', positions: { 'BTC-PERP': '-0.01' } },
    })
    expect(result(input, 'C9').figures).toEqual({ settlements: 1, liquidations: 1 })
    expect(result(input, 'C3').figures.fees).toBe('0.42')
  })

  it('reads as worked by hand: fees, collateral, positions, convergence time', () => {
    const input = clean().input()
    expect(input.final.nodes[0]!.accounts).toEqual({
      alice: { collateral: '899.7', positions: { 'BTC-PERP': '0.01' } },
      bob: { collateral: '999.88', positions: { 'BTC-PERP': '-0.01' } },
    })
    expect(result(input, 'C1').figures.convergeMs).toBe(1234)
    expect(result(input, 'C3').figures).toMatchObject({
      deposits: '2000',
      withdrawals: '100',
      fees: '0.42',
    })
    expect(result(input, 'C6').figures).toMatchObject({
      retriedElsewhere: 1,
      retriedElsewhereOk: 1,
    })
  })
})

describe('C1 convergence', () => {
  it('fails when one node holds an entry the others lack', () => {
    const w = clean()
    w.transfer('deposit', 'bob', 'late', '5', ['a', 'b'])
    w.attempt(deposit('bob', 'late', '5'), 'a', 'ok')
    expect(failures(w.input()).C1).toEqual(['content-differs', 'digests-differ'])
  })

  it('fails on a pending or damaged document, an unreachable node, a timeout', () => {
    const input = clean().input()
    input.final.nodes[1]!.docs['shard/0']!.pending = true
    input.final.nodes[2]!.docs['shard/1']!.damaged = true
    input.final.nodes.push({ node: 'd', error: 'ECONNREFUSED', docs: {}, accounts: {} })
    input.final.convergence = { converged: false, ms: null, timeoutMs: 60_000, detail: 'shard/0' }
    expect(failures(input).C1).toEqual(['damaged', 'not-converged', 'pending', 'unreachable'])
  })
})

describe('a damaged document', () => {
  it('fails C1 only: the node is skipped where its accounts would be folded', () => {
    const input = clean().input()
    const damaged = input.final.nodes[2]!.docs['shard/0']!
    damaged.damaged = true
    delete damaged.content
    damaged.contentError = 'closed 1011: this replica is damaged'
    expect(Object.keys(failures(input))).toEqual(['C1'])
    expect(result(input, 'C4').note).toContain('skipped c (shard/0 unreadable)')
  })
})

describe('C2 lost acknowledged writes', () => {
  it('fails when an acknowledged withdrawal is missing on one node (acked before stored)', () => {
    const w = clean()
    w.attempt(withdraw('bob', 'w2', '10'), 'b', 'ok')
    w.transfer('withdrawal', 'bob', 'w2', '10', ['a', 'b'])
    expect(failures(w.input()).C2).toEqual(['lost-withdraw'])
  })

  it('fails when an acknowledged order never reached the matcher', () => {
    const w = clean()
    const lost = order('bob', 's2', 'sell', '61000', '0.01')
    w.attempt(lost, 'a', 'ok', {
      reply: { orderId: lost.orderId, status: 'open', filledSize: '0' },
    })
    w.orderRecord(lost)
    expect(failures(w.input()).C2).toEqual(['lost-order'])
  })

  it('fails when a refused write took effect, or an unknown one on some nodes only', () => {
    const w = clean()
    w.attempt(withdraw('bob', 'w3', '10'), 'a', 'fail', { status: 422, code: 'insufficient_funds' })
    w.transfer('withdrawal', 'bob', 'w3', '10')
    w.attempt(deposit('bob', 'd9', '1'), 'c', 'info')
    w.transfer('deposit', 'bob', 'd9', '1', ['c'])
    expect(failures(w.input()).C2).toEqual(['refused-but-present', 'unknown-partial'])
  })

  it('fails when a write acknowledged by a node that then left is missing on the others', () => {
    const w = clean()
    w.attempt(withdraw('bob', 'w4', '10'), 'c', 'ok')
    w.transfer('withdrawal', 'bob', 'w4', '10', ['c'])
    expect(failures(w.input({ nodes: ['a', 'b'] })).C2).toEqual(['lost-withdraw'])
    w.transfer('withdrawal', 'bob', 'w4', '10', ['a', 'b'])
    expect(verdicts(w.input({ nodes: ['a', 'b'] })).C2).toBe('pass')
  })

  it('passes an unknown write present on every node or on none', () => {
    const w = clean()
    w.attempt(deposit('bob', 'd7', '1'), 'c', 'info')
    w.transfer('deposit', 'bob', 'd7', '1')
    w.attempt(deposit('bob', 'd8', '1'), 'c', 'info')
    expect(result(w.input(), 'C2')).toMatchObject({
      status: 'pass',
      figures: { infoPresent: 1, infoAbsent: 1 },
    })
  })
})

describe('C3 conservation', () => {
  it("fails when a node's collateral read disagrees with its entries", () => {
    const input = clean().input()
    input.final.nodes[1]!.accounts.alice!.collateral = '900'
    expect(failures(input).C3).toEqual(['api-collateral'])
  })

  it('fails when realized PnL is paid that no open position accounts for', () => {
    const w = clean()
    const close = order('alice', 'b2', 'sell', '60000', '0.01')
    const bid = order('bob', 's3', 'buy', '60000', '0.01')
    for (const op of [bid, close]) w.orderRecord(op)
    w.step('BTC-PERP', restingStep(bid, 3, 12))
    // Both close flat at the entry price: no PnL is due, yet alice is paid 50.
    w.step('BTC-PERP', {
      seq: 4,
      ts: 13,
      node: 'a',
      input: orderInput(close),
      decisions: [
        { type: 'accepted', orderId: close.orderId },
        {
          ...fill,
          fillId: 'BTC-PERP/000000000004/0000',
          takerOrderId: close.orderId,
          makerOrderId: bid.orderId,
          takerSide: 'sell',
          takerRealized: '50',
        },
      ],
    })
    w.attempt(close, 'a', 'ok', {
      reply: { orderId: close.orderId, status: 'filled', filledSize: '0.01' },
    })
    w.attempt(bid, 'a', 'ok', { reply: { orderId: bid.orderId, status: 'open', filledSize: '0' } })
    const input = w.input()
    expect(failures(input).C3).toEqual(['clearing'])
    expect(failures(input).C8).toEqual(['collateral', 'fill-figures'])
  })
})

describe('C4 overdraft', () => {
  it('fails when two nodes both approved withdrawals of the whole balance', () => {
    const w = clean()
    w.attempt(withdraw('bob', 'left', '999'), 'a', 'ok')
    w.transfer('withdrawal', 'bob', 'left', '999')
    w.attempt(withdraw('bob', 'right', '999'), 'c', 'ok')
    w.transfer('withdrawal', 'bob', 'right', '999')
    expect(failures(w.input()).C4).toEqual(['negative-rights-sum', 'overdraft', 'overdraft-read'])
  })

  it("checks every account's rights at every node that holds any", () => {
    const input = clean().input()
    expect(result(input, 'C4').figures).toEqual({ rightsChecked: 6, gainsPaidBelowRights: 0 })
  })

  it('fails when a node granted rights it did not hold (negative at one node)', () => {
    const w = clean()
    const grant = { id: 'g1', accountId: 'bob', from: 'b', to: 'c', amount: '50', ts: 30 }
    w.put('shard/1', 'grants', 'g1', grant)
    expect(failures(w.input()).C4).toEqual(['negative-rights'])
  })

  it('fails when the rights sum below zero with no gains to pay it', () => {
    const w = clean()
    w.attempt(withdraw('bob', 'big', '1500'), 'a', 'ok')
    w.transfer('withdrawal', 'bob', 'big', '1500')
    expect(failures(w.input()).C4).toEqual(['negative-rights-sum', 'overdraft', 'overdraft-read'])
  })
})

describe('C5 net-zero positions', () => {
  it('fails when a node reads a position without its counterparty (a lone leg)', () => {
    const input = clean().input()
    input.final.nodes[2]!.accounts.bob!.positions = {}
    expect(failures(input).C5).toEqual(['api'])
  })
})

describe('C6 exactly once', () => {
  it('fails on a withdrawal recorded twice under two ids (a double debit)', () => {
    const w = clean()
    w.transfer('withdrawal', 'alice', 'w1-retry', '100')
    expect(failures(w.input()).C6).toEqual(['unrequested'])
  })

  it('fails when the stored payload differs from what was sent, or replies disagree', () => {
    const w = clean()
    w.attempt(withdraw('bob', 'w4', '10'), 'a', 'ok', { reply: { amount: '10' } })
    w.attempt(withdraw('bob', 'w4', '10'), 'b', 'ok', { reply: { amount: '12' } })
    w.transfer('withdrawal', 'bob', 'w4', '12')
    expect(failures(w.input()).C6).toEqual(['payload-diverges', 'reply-diverges'])
  })

  it('fails when the matcher accepted one order twice', () => {
    const w = clean()
    w.step('BTC-PERP', {
      seq: 3,
      ts: 12,
      node: 'a',
      input: orderInput(sell),
      decisions: [{ type: 'accepted', orderId: sell.orderId }],
    })
    expect(failures(w.input()).C6).toEqual(['order-twice'])
  })
})

describe('C7 all legs or none', () => {
  it('fails on a fill whose maker leg names no account, and an order the shard never took', () => {
    const w = clean()
    const ghost = order('carol', 'g1', 'sell', '60000', '0.01')
    w.step('BTC-PERP', restingStep(ghost, 3, 12))
    const taker = order('alice', 'b3', 'buy', '60000', '0.01')
    w.orderRecord(taker)
    w.step('BTC-PERP', {
      seq: 4,
      ts: 13,
      node: 'a',
      input: orderInput(taker),
      decisions: [
        { type: 'accepted', orderId: taker.orderId },
        {
          ...fill,
          fillId: 'BTC-PERP/000000000004/0000',
          takerOrderId: taker.orderId,
          makerOrderId: ghost.orderId,
          maker: 'carol',
        },
      ],
    })
    expect(failures(w.input({ reads: false })).C7).toEqual([
      'fill-account-missing',
      'order-record-missing',
    ])
  })

  it('fails on a fill with both legs on one side', () => {
    const w = clean()
    const steps = w.nodes.get('b')!.get('market/BTC-PERP')!.steps!
    ;(steps['000000000002'] as any).decisions[1].takerSide = 'sell'
    expect(failures(w.input({ reads: false })).C7).toEqual(['fill-sides'])
  })
})

describe('C8 reference model', () => {
  it('fails on a fill after the order was cancelled, and on an overfill', () => {
    const w = clean()
    const rest = order('bob', 's4', 'sell', '60000', '0.01')
    w.orderRecord(rest)
    w.step('BTC-PERP', restingStep(rest, 3, 12))
    w.step('BTC-PERP', userCancelStep(rest, 4, 13))
    const late = order('alice', 'b4', 'buy', '60000', '0.02')
    w.orderRecord(late)
    w.step('BTC-PERP', {
      seq: 5,
      ts: 14,
      node: 'a',
      input: orderInput(late),
      decisions: [
        { type: 'accepted', orderId: late.orderId },
        {
          ...fill,
          fillId: 'BTC-PERP/000000000005/0000',
          takerOrderId: late.orderId,
          makerOrderId: rest.orderId,
        },
        {
          ...fill,
          fillId: 'BTC-PERP/000000000005/0001',
          takerOrderId: late.orderId,
          makerOrderId: rest.orderId,
        },
      ],
    })
    expect(failures(w.input()).C8).toEqual(['fill-after-cancel', 'overfill'])
  })

  it("fails when a node's balance or position differs from the acknowledged history", () => {
    const input = clean().input()
    // A node that lost alice's acknowledged withdrawal from both its entries and its read.
    const shard = Object.values(input.final.nodes[0]!.docs).find(
      (d) => d.content?.transfers?.['withdrawal/alice/w1'],
    )!
    delete shard.content!.transfers!['withdrawal/alice/w1']
    input.final.nodes[0]!.accounts.alice!.collateral = '999.7'
    input.final.nodes[1]!.accounts.bob!.positions = { 'BTC-PERP': '-0.02' }
    expect(failures(input).C8).toEqual(['collateral', 'position'])
  })

  it('fails when answers about an order go backwards', () => {
    const w = clean()
    w.attempt(sell, 'a', 'ok', {
      reply: { orderId: sell.orderId, status: 'filled', filledSize: '0.01' },
    })
    w.attempt(sell, 'b', 'ok', {
      reply: { orderId: sell.orderId, status: 'open', filledSize: '0' },
    })
    expect(failures(w.input()).C8).toEqual(['answer-regressed'])
  })
})

describe('C8 on settle steps', () => {
  it('fails when a funding payment is not notional × rate', () => {
    const w = clean()
    const decisions = [liquidation, funding('@insurance', '-0.06'), funding('bob', '0.06')]
    w.step('BTC-PERP', settleStep(3, 7, decisions))
    expect(failures(w.input()).C8).toEqual(['collateral', 'funding-figures'])
  })

  it('fails when a liquidation is not at the mark or its fee not to the fund', () => {
    const w = clean()
    const decisions = [
      { ...liquidation, price: '57500', feeTo: '@fees' },
      ...settlementDecisions().slice(1),
    ]
    w.step('BTC-PERP', settleStep(3, 7, decisions))
    expect(failures(w.input()).C8).toEqual(['liquidation-fee-to', 'liquidation-price'])
  })
})

describe('C9 liquidation at most once', () => {
  it('is not applicable without settle steps', () => {
    expect(result(clean().input(), 'C9').status).toBe('n/a')
  })

  it('fails when one account is liquidated twice in one epoch', () => {
    const w = clean()
    const decisions = [liquidation, { ...liquidation, fillId: 'BTC-PERP/000000000003/0001' }]
    w.step('BTC-PERP', settleStep(3, 7, decisions))
    expect(failures(w.input()).C9).toEqual(['liquidated-again', 'twice-in-epoch'])
  })

  it('fails when an epoch is settled twice, liquidating again with no trade between', () => {
    const w = settled()
    w.step('BTC-PERP', settleStep(4, 7, [{ ...liquidation, takerSide: 'buy' }]))
    expect(failures(w.input()).C9).toEqual(['epoch-twice', 'liquidated-again'])
  })

  it('fails when two nodes hold different settle steps for one epoch', () => {
    const w = clean()
    w.step('BTC-PERP', settleStep(3, 7, settlementDecisions()), ['a', 'b'])
    w.step('BTC-PERP', settleStep(3, 7, [], { fundingRate: '0', liquidate: [] }), ['c'])
    expect(failures(w.input()).C9).toEqual(['differs'])
  })

  it('fails when a node lacks an epoch the others settled', () => {
    const w = clean()
    w.step('BTC-PERP', settleStep(3, 7, settlementDecisions()), ['a', 'b'])
    expect(failures(w.input()).C9).toEqual(['differs'])
  })
})

const cancelOf = (op: typeof sell, requestId: string): Op => ({
  f: 'cancel',
  requestId,
  accountId: op.accountId,
  orderId: op.orderId,
  instrument: op.instrument,
})

/**
 * The clean run, then alice rests a buy she cancels (steps 3, 4) and epoch 7 settles at step 5
 * (as `settled`: she is liquidated, the fund pays bob funding); bob's 0.01 sell was asked to be
 * cancelled (202) before it filled.
 */
function settledAtFive(): World {
  const w = clean()
  const rest = order('alice', 'b5', 'buy', '50000', '0.01')
  w.orderRecord(rest)
  w.attempt(rest, 'a', 'ok', { reply: { orderId: rest.orderId, status: 'open', filledSize: '0' } })
  w.step('BTC-PERP', restingStep(rest, 3, 12))
  const cancel = cancelOf(rest, 'c5')
  w.attempt(cancel, 'b', 'ok', { reply: { orderId: rest.orderId, status: 'cancelled' } })
  w.step('BTC-PERP', userCancelStep(rest, 4, 13))
  const late = cancelOf(sell, 'c1')
  w.attempt(late, 'c', 'ok', { status: 202, reply: { status: 'cancel_requested' } })
  w.put('market/BTC-PERP', 'cancelRequests', sell.orderId, { ...late, node: 'c' })
  w.step('BTC-PERP', settleStep(5, 7, atFive(settlementDecisions())))
  return w
}

/** The settle decisions of step 3 with the ids step 5 gives them. */
const atFive = (decisions: Decision[]): Decision[] =>
  decisions.map((d) => ({
    ...d,
    ...(d.fillId !== undefined && { fillId: d.fillId.replace('000000000003', '000000000005') }),
    ...(d.fundingId !== undefined && {
      fundingId: d.fundingId.replace('000000000003', '000000000005'),
    }),
  }))

const btc = define(defaultCatalog[0]!)
const lots = (size: string) => units(size, btc.sizeDecimals)
const valueOf = (price: string, size: string) =>
  units(price, btc.priceDecimals) * lots(size) * btc.notionalScale
const usdUnits = (text: string) => units(text, 6)

/** The checkpoint the matcher writes with step 5 of `settledAtFive`, worked by hand. */
function checkpointAtFive(): MarketCheckpoint {
  const [liquidationFill, insuranceFunding, bobFunding] = atFive(settlementDecisions()) as [
    WireFill,
    Decision,
    Decision,
  ]
  const filled = (op: typeof sell, clientTs: number, updatedAt: number): StoredOrder => ({
    input: {
      ...orderInput(op),
      clientOrderId: op.requestId,
      type: 'limit',
      price: op.price,
      timeInForce: 'GTC',
      reduceOnly: false,
      receivedAt: clientTs,
    } as StoredOrder['input'],
    status: 'filled',
    filled: String(lots('0.01')),
    filledValue: String(valueOf('60000', '0.01')),
    remaining: '0',
    reason: null,
    updatedAt,
  })
  const rest = order('alice', 'b5', 'buy', '50000', '0.01')
  const entry = <T>(value: T, ts: number) => ({ ...value, ts, node: 'a' })
  const trade = fill as WireFill
  const input = settleStep(5, 7, []).input as MarketCheckpoint['settlements'][string]['input']
  return {
    id: '000000000005',
    epoch: 7,
    at: { term: 0, seq: 5 },
    retainFrom: -1_000,
    members: ['a', 'b', 'c'],
    node: 'a',
    resting: [],
    positions: {
      alice: { size: '0', cost: '0' },
      bob: { size: String(-lots('0.01')), cost: String(-valueOf('60000', '0.01')) },
      '@insurance': { size: String(lots('0.01')), cost: String(valueOf('57000', '0.01')) },
    },
    orders: {
      [sell.orderId]: filled(sell, 10, 11),
      [buy.orderId]: filled(buy, 11, 11),
      [rest.orderId]: {
        ...filled(rest, 12, 13),
        status: 'cancelled',
        filled: '0',
        filledValue: '0',
        reason: 'user',
      },
    },
    accounts: {
      alice: {
        fills: [entry({ fill: trade }, 11), entry({ fill: liquidationFill }, 20)],
        fundings: [],
        realized: String(usdUnits('-30')),
        fees: String(usdUnits('6')),
        funding: '0',
      },
      bob: {
        fills: [entry({ fill: trade }, 11)],
        fundings: [entry({ funding: bobFunding as any }, 20)],
        realized: '0',
        fees: String(usdUnits('0.12')),
        funding: String(usdUnits('0.057')),
      },
      '@insurance': {
        fills: [entry({ fill: liquidationFill }, 20)],
        fundings: [entry({ funding: insuranceFunding as any }, 20)],
        realized: '0',
        fees: '0',
        funding: String(usdUnits('-0.057')),
      },
    },
    settlements: {
      '7': { at: { term: 0, seq: 5 }, input: { ...input, receivedAt: 20 }, fundingPayments: 2 },
    },
  }
}

/**
 * Puts `checkpoint` in force on `on` (every member acknowledged it) and compacts as the nodes do:
 * the steps it folds and the cancel requests of orders it closed are deleted.
 */
function foldMarket(w: World, checkpoint: MarketCheckpoint, on = ids) {
  for (const node of on) {
    const maps = w.nodes.get(node)!.get('market/BTC-PERP')!
    maps.steps = Object.fromEntries(
      Object.entries(maps.steps ?? {}).filter(([, step]) => (step as Step).seq > checkpoint.at.seq),
    )
    maps.cancelRequests = Object.fromEntries(
      Object.entries(maps.cancelRequests ?? {}).filter(
        ([orderId]) => !['filled', 'cancelled'].includes(checkpoint.orders[orderId]?.status ?? ''),
      ),
    )
    maps.marketCheckpoints = { [checkpoint.id]: structuredClone(checkpoint) }
    maps.marketCheckpointAcks = Object.fromEntries(
      checkpoint.members.map((member) => [
        `${checkpoint.id}/${member}`,
        { id: `${checkpoint.id}/${member}`, checkpoint: checkpoint.id, node: member },
      ]),
    )
  }
}

/** After the base: alice rests a sell at 58000, bob buys it, closing his short (realizes 20). */
function tradeAfterBase(w: World) {
  const ask = order('alice', 's6', 'sell', '58000', '0.01')
  const bid = order('bob', 'b7', 'buy', '58000', '0.01')
  for (const op of [ask, bid]) w.orderRecord(op)
  w.attempt(ask, 'a', 'ok', { reply: { orderId: ask.orderId, status: 'open', filledSize: '0' } })
  w.step('BTC-PERP', restingStep(ask, 6, 30))
  w.attempt(bid, 'a', 'ok', {
    reply: { orderId: bid.orderId, status: 'filled', filledSize: '0.01' },
  })
  w.step('BTC-PERP', {
    seq: 7,
    ts: 31,
    node: 'a',
    input: orderInput(bid),
    decisions: [
      { type: 'accepted', orderId: bid.orderId },
      {
        ...fill,
        fillId: 'BTC-PERP/000000000007/0000',
        takerOrderId: bid.orderId,
        makerOrderId: ask.orderId,
        taker: 'bob',
        maker: 'alice',
        price: '58000',
        takerFee: '0.29',
        makerFee: '0.116',
        takerRealized: '20',
      },
    ],
  })
}

describe('a market history folded into a checkpoint in force', () => {
  it('passes every checker as the whole history did, with the chain after it judged from it', () => {
    const w = settledAtFive()
    tradeAfterBase(w)
    const whole = w.input()
    expect(failures(whole)).toEqual({})
    foldMarket(w, checkpointAtFive())
    const input = w.input()
    expect(failures(input)).toEqual({})
    // The same reads, settlements and fills as from the whole history.
    expect(input.final.nodes[0]!.accounts).toEqual(whole.final.nodes[0]!.accounts)
    expect(result(input, 'C9').figures).toEqual(result(whole, 'C9').figures)
    expect(result(input, 'C5').figures).toEqual({ fills: 3 })
    expect(result(input, 'C11')).toMatchObject({
      status: 'pass',
      figures: { checkpoints: 1, 'BTC-PERP folded to': 5, 'BTC-PERP steps held': 2 },
    })
  })

  it('still fails C2 for an acknowledged order that neither the base nor the chain took', () => {
    const w = settledAtFive()
    foldMarket(w, checkpointAtFive())
    const lost = order('bob', 's8', 'sell', '61000', '0.01')
    w.orderRecord(lost)
    w.attempt(lost, 'a', 'ok', {
      reply: { orderId: lost.orderId, status: 'open', filledSize: '0' },
    })
    expect(failures(w.input())).toEqual({ C2: ['lost-order'] })
  })

  it('fails C8 when the chain after the base does not follow from its positions', () => {
    const w = settledAtFive()
    tradeAfterBase(w)
    foldMarket(w, checkpointAtFive())
    // As if bob's short had been forgotten: closing it would realize nothing.
    for (const node of ids) {
      const steps = w.nodes.get(node)!.get('market/BTC-PERP')!.steps!
      ;(steps['000000000007'] as Step).decisions[1]!.takerRealized = '0'
    }
    expect(failures(w.input({ reads: false })).C8).toEqual(['fill-figures'])
  })

  it('fails C6 for a fill of the base taken again after it', () => {
    const w = settledAtFive()
    foldMarket(w, checkpointAtFive())
    const again = order('alice', 'b9', 'buy', '60000', '0.01')
    w.orderRecord(again)
    w.step('BTC-PERP', {
      seq: 6,
      ts: 30,
      node: 'a',
      input: orderInput(again),
      decisions: [{ type: 'accepted', orderId: again.orderId }, fill],
    })
    expect(failures(w.input({ reads: false })).C6).toEqual(['fill-twice'])
  })

  it('fails C11 when nodes hold different checkpoints of one id, or one does not add up', () => {
    const w = settledAtFive()
    foldMarket(w, checkpointAtFive(), ['a', 'b'])
    const doctored = checkpointAtFive()
    doctored.accounts.bob!.fees = String(usdUnits('0.2'))
    doctored.positions.bob!.cost = '0'
    foldMarket(w, doctored, ['c'])
    expect(failures(w.input({ reads: false })).C11).toEqual(['differs', 'positions', 'totals'])
  })
})

describe('C10 refusals for lack of local rights', () => {
  it('is not applicable without withdrawals', () => {
    expect(result(world().input(), 'C10').status).toBe('n/a')
  })

  it('fails on a refusal that is not marked retryable, and reports the share', () => {
    const w = clean()
    w.attempt(withdraw('bob', 'w5', '10'), 'b', 'fail', {
      status: 422,
      code: 'insufficient_rights',
      retryable: false,
    })
    w.attempt(withdraw('bob', 'w6', '10'), 'b', 'fail', {
      status: 503,
      code: 'insufficient_rights',
      retryable: true,
    })
    const input = w.input()
    expect(failures(input).C10).toEqual(['not-retryable'])
    expect(result(input, 'C10').figures).toMatchObject({ withdrawAttempts: 3, rightsRefusals: 2 })
  })
})

describe('planted bugs on a recorded run', () => {
  it('each plant fails the checkers it names', () => {
    const base = settled().input()
    for (const [name, plant] of Object.entries(plants)) {
      const failed = runCheckers(plant.apply(base))
        .filter((r) => r.status === 'fail')
        .map((r) => r.id)
      expect(failed, name).toEqual(expect.arrayContaining(plant.expect))
    }
    expect(verdicts(base).C2).toBe('pass')
  })
})
