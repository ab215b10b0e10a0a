// The reconciler's audits alone: no violation on histories the real commands, escrow and matcher
// make (fast-check), and each planted defect found with its evidence: a shard's cash moved
// outside deposits and withdrawals (I6), a transfer not under its request id (I3), a node
// spending rights it never received (I4); a market's lone leg (I5, C7), an order id taken twice
// (I3), a fill after a cancel (I7), realized PnL the positions do not hold (I6). Folds resume
// from the figures of an earlier fold as from the start.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as audits from '../../src/domain/audits'
import * as escrow from '../../src/domain/escrow'
import type { Transfer } from '../../src/domain/ledger'
import * as matcher from '../../src/domain/matcher'
import * as money from '../../src/domain/money'
import { btc, price, size } from '../support/instruments'

const usd = (whole: number) => BigInt(whole) * 1_000_000n
const nodes = ['a', 'b', 'c']

const cash = (
  kind: 'deposit' | 'withdrawal',
  node: string,
  amount: bigint,
  n: number,
): Transfer => ({
  id: `${kind}/alice/r${n}`,
  kind,
  from: kind === 'deposit' ? '@external' : 'alice',
  to: kind === 'deposit' ? 'alice' : '@external',
  amount: money.formatUsd(amount),
  ts: n,
  node,
  requestDigest: 'd',
})

type ShardOp = { op: 'deposit' | 'withdraw' | 'grant'; node: number; to: number; amount: number }

/** A shard history of one account as nodes that spend only within their rights would make it. */
function validShard(ops: ShardOp[]) {
  const transfers: Transfer[] = []
  const grants: escrow.Grant[] = []
  ops.forEach(({ op, node, to, amount }, n) => {
    const at = nodes[node]!
    const units = usd(amount)
    const rights = escrow.rightsByNode(transfers, grants, 'alice').get(at) ?? 0n
    if (op === 'deposit') transfers.push(cash('deposit', at, units, n))
    else if (units > rights) return
    else if (op === 'withdraw') transfers.push(cash('withdrawal', at, units, n))
    else if (nodes[to] !== at) {
      grants.push({
        id: `g${n}`,
        accountId: 'alice',
        from: at,
        to: nodes[to]!,
        amount: money.formatUsd(units),
        ts: n,
      })
    }
  })
  return { transfers, grants }
}

const shardOps = fc.array(
  fc.record({
    op: fc.constantFrom('deposit' as const, 'withdraw' as const, 'grant' as const),
    node: fc.integer({ min: 0, max: 2 }),
    to: fc.integer({ min: 0, max: 2 }),
    amount: fc.integer({ min: 1, max: 100 }),
  }),
  { maxLength: 40 },
)

describe('shard audits', () => {
  it('find nothing on histories of nodes spending within their rights', () => {
    fc.assert(
      fc.property(shardOps, (ops) => {
        const { transfers, grants } = validShard(ops)
        expect(audits.auditShard(transfers, grants, { gainsNode: 'a' }).violations).toEqual([])
      }),
    )
  })

  it('resume from the figures of an earlier fold as from the start', () => {
    fc.assert(
      fc.property(shardOps, fc.nat(), (ops, cut) => {
        const { transfers, grants } = validShard(ops)
        const split = cut % (transfers.length + 1)
        const first = audits.auditShard(transfers.slice(0, split), grants, { gainsNode: 'a' })
        const rest = audits.auditShard(
          transfers.slice(split),
          [],
          { gainsNode: 'a' },
          first.figures,
        )
        expect(rest.figures).toEqual(
          audits.auditShard(transfers, grants, { gainsNode: 'a' }).figures,
        )
      }),
    )
  })

  it("start from a checkpoint's openings: rights granted before the cut may be spent after it", () => {
    // b received 60 of alice's rights before the checkpoint; the grant was compacted away.
    const openings = new Map([
      [
        'alice',
        {
          balance: usd(100),
          rights: new Map([
            ['a', usd(40)],
            ['b', usd(60)],
          ]),
        },
      ],
    ])
    const after = [cash('withdrawal', 'b', usd(50), 3)]
    const start = audits.shardFiguresFromOpenings(openings)
    const resumed = audits.auditShard(after, [], { gainsNode: 'a' }, start)
    expect(resumed.violations).toEqual([])
    expect(resumed.figures.rights.get('alice')).toEqual(
      new Map([
        ['a', usd(40)],
        ['b', usd(10)],
      ]),
    )
    expect(resumed.figures.accountBalances).toBe(usd(50))
    // Without the openings the same entries read as b spending rights it never had.
    expect(audits.auditShard(after, [], { gainsNode: 'a' }).violations).toMatchObject([
      { invariant: 'I4' },
    ])
  })

  it('find cash that moved outside deposits and withdrawals (I6), with the totals', () => {
    const moved = { ...cash('withdrawal', 'a', usd(40), 2), to: 'bob' }
    const { violations } = audits.auditShard([cash('deposit', 'a', usd(100), 1), moved], [], {
      gainsNode: 'a',
    })
    expect(violations).toEqual([
      expect.objectContaining({
        invariant: 'I6',
        subject: 'withdrawal/alice/r2',
        accountIds: ['alice', 'bob'],
        evidence: {
          transfer: moved,
          totals: { accountBalances: '100', deposits: '100', withdrawals: '0' },
        },
      }),
    ])
  })

  it('find a transfer that is not under its request id (I3)', () => {
    const stray = { ...cash('deposit', 'a', usd(5), 1), id: 'deposit/bob/r1' }
    const { violations } = audits.auditShard([stray], [], { gainsNode: 'a' })
    expect(violations).toMatchObject([
      { invariant: 'I3', subject: 'deposit/bob/r1', accountIds: ['alice'] },
    ])
  })

  it('find a node that spent rights it never received (I4), but let the gains node pay gains', () => {
    const deposit = cash('deposit', 'a', usd(100), 1)
    const overspent = cash('withdrawal', 'c', usd(30), 2)
    const given: escrow.Grant = {
      id: 'g',
      accountId: 'alice',
      from: 'b',
      to: 'c',
      amount: '10',
      ts: 3,
    }
    const { violations } = audits.auditShard([deposit, overspent], [given], { gainsNode: 'a' })
    expect(violations).toEqual([
      expect.objectContaining({ invariant: 'I4', subject: 'alice/b', accountIds: ['alice'] }),
      expect.objectContaining({
        invariant: 'I4',
        subject: 'alice/c',
        evidence: {
          rights: '-20',
          byNode: { a: '100', b: '-10', c: '-20' },
          withdrawals: [{ id: overspent.id, amount: '30' }],
          grants: [],
        },
      }),
    ])
    const gains = audits.auditShard([deposit, cash('withdrawal', 'a', usd(130), 2)], [], {
      gainsNode: 'a',
    })
    expect(gains.violations).toEqual([])
    // Not judged while a grant may be missing here, folded all the same.
    const unjudged = audits.auditShard([deposit, overspent], [given], null)
    expect(unjudged.violations).toEqual([])
    expect(unjudged.figures.rights.get('alice')).toEqual(
      new Map([
        ['a', usd(100)],
        ['b', -usd(10)],
        ['c', -usd(20)],
      ]),
    )
  })
})

// --- market -----------------------------------------------------------------------------------

type Step = audits.AuditedStep

/** The audit's view of what the matcher decided: its fills with ids, as a market stores them. */
function stepOf(
  seq: number,
  kind: Step['kind'],
  order: audits.AuditedOrder | null,
  decided: matcher.Decision[],
): Step {
  let fills = 0
  return {
    seq,
    kind,
    order,
    decisions: decided.map((d): audits.AuditedDecision => {
      if (d.type === 'funding') return { type: 'funding' }
      if (d.type !== 'fill') return { type: d.type, orderId: d.orderId }
      return { ...d, fillId: `${seq}/${fills++}` }
    }),
  }
}

type MarketOp =
  | { op: 'order'; account: number; buy: boolean; ticks: number; lots: number; ioc: boolean }
  | { op: 'cancel'; back: number }
  | { op: 'settle'; liquidate: number }

const accounts = ['alice', 'bob', 'carol']

/** A market history the real matcher makes: orders, cancels and settlements with liquidations. */
function validMarket(ops: MarketOp[]): Step[] {
  const book = matcher.create(btc)
  const steps: Step[] = []
  const orderIds: string[] = []
  for (const [n, op] of ops.entries()) {
    const seq = steps.length + 1
    if (op.op === 'order') {
      const order = {
        orderId: `o${n}`,
        accountId: accounts[op.account]!,
        side: op.buy ? ('buy' as const) : ('sell' as const),
        size: size('0.001') * BigInt(op.lots),
      }
      orderIds.push(order.orderId)
      const intent = {
        ...order,
        price: price('60000') + price('0.5') * BigInt(op.ticks),
        timeInForce: op.ioc ? ('IOC' as const) : ('GTC' as const),
        reduceOnly: false,
      }
      steps.push(stepOf(seq, 'order', order, matcher.submit(book, intent)))
    } else if (op.op === 'cancel') {
      const orderId = orderIds[orderIds.length - 1 - (op.back % Math.max(1, orderIds.length))]
      if (orderId !== undefined)
        steps.push(stepOf(seq, 'cancel', null, [matcher.cancel(book, orderId)]))
    } else {
      const settlement = {
        epoch: n,
        mark: price('60000'),
        fundingRate: 300n,
        liquidate: [accounts[op.liquidate]!],
        liquidationFeeRate: 10_000n,
      }
      steps.push(stepOf(seq, 'settle', null, matcher.settle(book, settlement)))
    }
  }
  return steps
}

const marketOps = fc.array(
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constant('order' as const),
        account: fc.integer({ min: 0, max: 2 }),
        buy: fc.boolean(),
        ticks: fc.integer({ min: -4, max: 4 }),
        lots: fc.integer({ min: 1, max: 5 }),
        ioc: fc.boolean(),
      }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('cancel' as const), back: fc.nat() }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('settle' as const),
        liquidate: fc.integer({ min: 0, max: 2 }),
      }),
    },
  ),
  { maxLength: 60 },
)

const scale = btc.notionalScale

/** Alice rests a sell of 0.002; bob buys 0.001 of it. */
const traded = () =>
  validMarket([
    { op: 'order', account: 0, buy: false, ticks: 0, lots: 2, ioc: false },
    { op: 'order', account: 1, buy: true, ticks: 0, lots: 1, ioc: true },
  ])

const fillOf = (step: Step) => step.decisions.find((d) => d.type === 'fill') as audits.AuditedFill

describe('market audits', () => {
  it("find nothing on the matcher's own histories, and resume from a fold's figures", () => {
    fc.assert(
      fc.property(marketOps, fc.nat(), (ops, cut) => {
        const steps = validMarket(ops)
        const whole = audits.auditMarket(steps, scale)
        expect(whole.violations).toEqual([])
        const split = cut % (steps.length + 1)
        const first = audits.auditMarket(steps.slice(0, split), scale)
        expect(audits.auditMarket(steps.slice(split), scale, first.figures).figures).toEqual(
          whole.figures,
        )
      }),
    )
  })

  it('find a fill without its maker leg (I5, C7) and the positions it leaves unbalanced', () => {
    const [rest, take] = traded()
    const lone = {
      ...take!,
      decisions: take!.decisions.map((d) => (d.type === 'fill' ? { ...d, maker: null } : d)),
    }
    const { violations } = audits.auditMarket([rest!, lone], scale)
    expect(violations.map((v) => [v.invariant, v.subject])).toEqual([
      ['I5', '2/0'],
      ['I5', 'positions/2'],
      ['I6', 'clearing/2'],
    ])
    expect(violations[0]).toMatchObject({
      accountIds: ['bob'],
      evidence: { seq: 2, fill: { maker: null, size: '1' } },
    })
  })

  it('find an order id the matcher took twice (I3) and the order going back from filled (I7)', () => {
    const steps = validMarket([
      { op: 'order', account: 0, buy: false, ticks: 0, lots: 1, ioc: false },
      { op: 'order', account: 1, buy: true, ticks: 0, lots: 1, ioc: true },
    ])
    const again = {
      ...steps[0]!,
      seq: 3,
      decisions: [{ type: 'accepted' as const, orderId: 'o0' }],
    }
    const { violations } = audits.auditMarket([...steps, again], scale)
    expect(violations).toMatchObject([
      { invariant: 'I3', subject: 'o0', accountIds: ['alice'], evidence: { seq: 3 } },
      {
        invariant: 'I7',
        subject: 'o0',
        message: 'order o0: accepted after it was filled, at step 3',
      },
    ])
  })

  it('find a fill after the cancel the matcher accepted (I7)', () => {
    const [rest, take] = traded()
    const cancel = stepOf(2, 'cancel', null, [
      { type: 'cancelled', orderId: 'o0', remaining: 0n, reason: 'user' },
    ])
    const { violations } = audits.auditMarket([rest!, cancel, { ...take!, seq: 3 }], scale)
    expect(violations).toMatchObject([
      {
        invariant: 'I7',
        subject: 'o0',
        accountIds: ['alice'],
        message: 'order o0: filled after it was cancelled, at step 3',
      },
    ])
  })

  it('find realized PnL the open positions do not hold (I6) and an overfilled order (I7)', () => {
    const steps = traded()
    const close = validMarket([
      { op: 'order', account: 0, buy: false, ticks: 0, lots: 2, ioc: false },
      { op: 'order', account: 1, buy: true, ticks: 0, lots: 1, ioc: true },
      { op: 'order', account: 1, buy: false, ticks: 10, lots: 1, ioc: false },
      { op: 'order', account: 2, buy: true, ticks: 10, lots: 1, ioc: true },
    ])
    const fill = fillOf(close[3]!)
    const tampered = {
      ...close[3]!,
      decisions: close[3]!.decisions.map((d) => (d === fill ? { ...fill, takerRealized: 5n } : d)),
    }
    expect(audits.auditMarket([...close.slice(0, 3), tampered], scale).violations).toMatchObject([
      { invariant: 'I6', subject: 'clearing/4', evidence: { seq: 4 } },
    ])
    const big = {
      ...steps[1]!,
      decisions: steps[1]!.decisions.map((d) =>
        d.type === 'fill' ? { ...d, size: size('0.003') } : d,
      ),
    }
    expect(audits.auditMarket([steps[0]!, big], scale).violations).toMatchObject([
      { invariant: 'I7', subject: 'o1', message: 'order o1: filled 3 of its size 1, at step 2' },
      { invariant: 'I7', subject: 'o0', message: 'order o0: filled 3 of its size 2, at step 2' },
    ])
  })
})
