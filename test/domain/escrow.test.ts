// Escrow decisions alone: rights folded from deposits, withdrawals and grants; what a node may
// spend; grant policies; and the property that makes it worth having (I4): nodes that each decide
// alone, from views frozen at a split, never spend together more than the free collateral.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as escrow from '../../src/domain/escrow'
import type { Transfer } from '../../src/domain/ledger'
import * as money from '../../src/domain/money'

const usd = (whole: number) => BigInt(whole) * 1_000_000n

const transfer = (
  kind: 'deposit' | 'withdrawal',
  node: string,
  amount: number,
  id = `${kind}-${node}-${amount}`,
): Transfer => ({
  id,
  kind,
  from: kind === 'deposit' ? '@external' : 'alice',
  to: kind === 'deposit' ? 'alice' : '@external',
  amount: money.formatUsd(usd(amount)),
  ts: 1,
  node,
  requestDigest: 'd',
})

const grant = (from: string, to: string, amount: number, id = `g-${from}-${to}`): escrow.Grant => ({
  id,
  accountId: 'alice',
  from,
  to,
  amount: money.formatUsd(usd(amount)),
  ts: 1,
})

describe('rights', () => {
  it('are deposits recorded, less withdrawals approved, plus grants in, less grants out', () => {
    const rights = escrow.rightsByNode(
      [
        transfer('deposit', 'a', 100),
        transfer('deposit', 'b', 30),
        transfer('withdrawal', 'a', 20),
        { ...transfer('deposit', 'c', 7), to: 'bob' },
      ],
      [grant('a', 'c', 50), { ...grant('b', 'c', 1), accountId: 'bob' }],
      'alice',
    )
    expect(rights).toEqual(
      new Map([
        ['a', usd(30)],
        ['b', usd(30)],
        ['c', usd(50)],
      ]),
    )
    // Grants move rights; they never change the sum (deposits − withdrawals).
    expect([...rights.values()].reduce((sum, units) => sum + units, 0n)).toBe(usd(110))
  })

  it('a node spends its rights less the whole commitment, never below zero', () => {
    const rights = new Map([
      ['a', usd(70)],
      ['b', usd(30)],
    ])
    // Free collateral 100: nothing committed.
    expect(escrow.spendable(rights, 'b', usd(100), 'a')).toEqual({
      rights: usd(30),
      commitment: 0n,
      usable: usd(30),
    })
    // 40 of the cash is margin in use: charged in full against each node's rights.
    expect(escrow.spendable(rights, 'a', usd(60), 'a').usable).toBe(usd(30))
    expect(escrow.spendable(rights, 'b', usd(60), 'a').usable).toBe(0n)
    // Free collateral below zero (losses past margin): nobody spends.
    expect(escrow.spendable(rights, 'a', -usd(5), 'a').usable).toBe(0n)
  })

  it('realized gains above the rights are spendable at the settlement node only', () => {
    const rights = new Map([
      ['a', usd(50)],
      ['b', usd(50)],
    ])
    expect(escrow.spendable(rights, 'a', usd(130), 'a').usable).toBe(usd(80))
    expect(escrow.spendable(rights, 'b', usd(130), 'a').usable).toBe(usd(50))
    expect(escrow.settlementNodeOf(['c', 'a', 'b'])).toBe('a')
    // While the settlement node is cut off from a majority, nobody spends the gains.
    expect(escrow.spendable(rights, 'a', usd(130), null).usable).toBe(usd(50))
  })

  it('the settlement node keeps paying gains through a short loss of majority contact only', () => {
    const grace = 10_000
    let lostAt = escrow.majorityLostAt(null, true, 1_000)
    expect(lostAt).toBeNull()
    expect(escrow.gainsSpendableAfter(lostAt, 1_000, grace)).toBe(true)
    // Cut off at 2 s: the first moment is kept while it stays cut off.
    lostAt = escrow.majorityLostAt(lostAt, false, 2_000)
    lostAt = escrow.majorityLostAt(lostAt, false, 9_000)
    expect(lostAt).toBe(2_000)
    expect(escrow.gainsSpendableAfter(lostAt, 11_999, grace)).toBe(true)
    expect(escrow.gainsSpendableAfter(lostAt, 12_000, grace)).toBe(false)
    // Contact clears it at once.
    lostAt = escrow.majorityLostAt(lostAt, true, 20_000)
    expect(escrow.gainsSpendableAfter(lostAt, 20_000, grace)).toBe(true)
  })

  it('grants the shortfall or everything usable, and nothing from nothing', () => {
    expect(escrow.grantAmount('shortfall', usd(50), usd(20))).toBe(usd(20))
    expect(escrow.grantAmount('shortfall', usd(10), usd(20))).toBe(usd(10))
    expect(escrow.grantAmount('all', usd(50), usd(20))).toBe(usd(50))
    expect(escrow.grantAmount('all', 0n, usd(20))).toBe(0n)
  })
})

describe('I4 under any split', () => {
  const nodes = ['a', 'b', 'c']

  it('nodes deciding alone from views frozen at the split spend at most the free collateral', () => {
    fc.assert(
      fc.property(
        // Cash each node holds rights to at the split, and how much of the cash is committed
        // (negative: realized gains on top of it).
        fc.tuple(fc.nat(1_000), fc.nat(1_000), fc.nat(1_000)),
        fc.integer({ min: -500, max: 1_500 }),
        // Spend attempts: (node, amount), in any interleaving.
        fc.array(fc.tuple(fc.constantFrom(...nodes), fc.integer({ min: 1, max: 800 })), {
          maxLength: 40,
        }),
        (held, committed, attempts) => {
          const rightsAtSplit = new Map(nodes.map((node, i) => [node, usd(held[i]!)]))
          const cash = [...rightsAtSplit.values()].reduce((sum, units) => sum + units, 0n)
          const freeAtSplit = cash - usd(committed)
          const spent = new Map(nodes.map((node) => [node, 0n]))
          for (const [node, amount] of attempts) {
            // Each node sees its own spends, and nothing of the other side's.
            const view = new Map(rightsAtSplit)
            view.set(node, rightsAtSplit.get(node)! - spent.get(node)!)
            const free = freeAtSplit - spent.get(node)!
            const { usable } = escrow.spendable(view, node, free, 'a')
            if (usd(amount) <= usable) spent.set(node, spent.get(node)! + usd(amount))
          }
          const total = [...spent.values()].reduce((sum, units) => sum + units, 0n)
          expect(total).toBeLessThanOrEqual(money.max(0n, freeAtSplit))
          // No node spends past its rights; the settlement node's include the realized gains.
          const gains = money.max(0n, freeAtSplit - cash)
          for (const node of nodes) {
            const limit = rightsAtSplit.get(node)! + (node === 'a' ? gains : 0n)
            expect(spent.get(node)!).toBeLessThanOrEqual(limit)
          }
        },
      ),
      { numRuns: 500 },
    )
  })
})
