// Escrow decisions alone: rights folded from deposits, withdrawals and grants; what a node may
// spend; grant policies; and the property that makes it worth having (I4): nodes that each decide
// alone, from views frozen at a split, never spend together more than the free collateral.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as escrow from '../../src/domain/escrow'
import * as ledger from '../../src/domain/ledger'
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

  const idle: escrow.Demand = { asker: usd(20), granter: 0n }

  it('grants the shortfall or everything usable, and nothing from nothing', () => {
    expect(escrow.grantAmount('shortfall', usd(50), usd(20), idle)).toBe(usd(20))
    expect(escrow.grantAmount('shortfall', usd(10), usd(20), idle)).toBe(usd(10))
    expect(escrow.grantAmount('all', usd(50), usd(20), idle)).toBe(usd(50))
    expect(escrow.grantAmount('all', 0n, usd(20), idle)).toBe(0n)
  })

  it('grants the shortfall plus a share of the rest weighted by the recent demand', () => {
    const demand = (asker: number, granter: number) => ({
      asker: usd(asker),
      granter: usd(granter),
    })
    // A granter that spent nothing lately gives all it may spend.
    expect(escrow.grantAmount('demand', usd(1_000), usd(20), idle)).toBe(usd(1_000))
    // Equal demand: the shortfall and half the rest.
    expect(escrow.grantAmount('demand', usd(1_000), usd(20), demand(60, 60))).toBe(usd(510))
    // The granter spends 9 times what the asker asked for: it keeps back 9/10 of the rest.
    expect(escrow.grantAmount('demand', usd(1_020), usd(20), demand(10, 90))).toBe(usd(120))
    // Never more than the granter may spend, and nothing from nothing.
    expect(escrow.grantAmount('demand', usd(10), usd(20), demand(20, 90))).toBe(usd(10))
    expect(escrow.grantAmount('demand', 0n, usd(20), idle)).toBe(0n)
    // No demand seen at the asker (it cannot be: its request is demand): the shortfall alone.
    expect(escrow.grantAmount('demand', usd(100), usd(20), demand(0, 5))).toBe(usd(20))
    expect(() => escrow.grantAmount('demand', usd(100), usd(20), demand(5, -1))).toThrow(
      'demand is never negative',
    )
  })

  it("a node's recent demand: its withdrawals and what its requests lacked, since then", () => {
    const at = (entry: Transfer, ts: number) => ({ ...entry, ts })
    const request = (node: string, amount: number, ts: number, accountId = 'alice') => ({
      id: `${accountId}/${node}/${ts}`,
      accountId,
      node,
      amount: money.formatUsd(usd(amount)),
      ts,
    })
    const transfers = [
      at(transfer('withdrawal', 'b', 4, 'w1'), 1_000),
      at(transfer('withdrawal', 'b', 5, 'w2'), 2_000),
      // Older than the window, a deposit, another node's, another account's: none count.
      at(transfer('withdrawal', 'b', 100, 'w0'), 999),
      at(transfer('deposit', 'b', 100, 'd1'), 2_000),
      at(transfer('withdrawal', 'a', 100, 'w3'), 2_000),
      at({ ...transfer('withdrawal', 'b', 100, 'w4'), from: 'bob' }, 2_000),
    ]
    const requests = [
      request('b', 3, 1_500),
      request('b', 100, 500),
      request('a', 100, 1_500),
      request('b', 100, 1_500, 'bob'),
    ]
    expect(escrow.recentDemand(transfers, requests, 'alice', 'b', 1_000)).toBe(usd(12))
    expect(escrow.recentDemand(transfers, requests, 'alice', 'c', 1_000)).toBe(0n)
  })

  it('a rights request stands in the way of another while fresh and unanswered', () => {
    const request = { id: 'alice/b/1000', accountId: 'alice', node: 'b', amount: '3', ts: 1_000 }
    expect(escrow.requestOpen(request, false, 10_999, 10_000)).toBe(true)
    expect(escrow.requestOpen(request, false, 11_000, 10_000)).toBe(false)
    expect(escrow.requestOpen(request, true, 1_001, 10_000)).toBe(false)
  })

  it('every policy grants within what the granter may spend, and the shortfall if it can', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...escrow.grantPolicies),
        fc.bigInt({ min: -usd(100), max: usd(10_000) }),
        fc.bigInt({ min: 1n, max: usd(1_000) }),
        fc.bigInt({ min: 0n, max: usd(10_000) }),
        fc.bigInt({ min: 0n, max: usd(10_000) }),
        (policy, usable, shortfall, asker, granter) => {
          const amount = escrow.grantAmount(policy, usable, shortfall, { asker, granter })
          expect(amount).toBeGreaterThanOrEqual(0n)
          expect(amount).toBeLessThanOrEqual(money.max(0n, usable))
          expect(amount).toBeGreaterThanOrEqual(money.min(money.max(0n, usable), shortfall))
        },
      ),
      { numRuns: 1_000 },
    )
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

  it('grants under any policy move rights, never make them: no node ever holds less than zero', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...escrow.grantPolicies),
        fc.tuple(
          fc.integer({ min: 1, max: 1_000 }),
          fc.integer({ min: 1, max: 1_000 }),
          fc.integer({ min: 1, max: 1_000 }),
        ),
        fc.nat(500),
        // Spends (node, amount) and answers (granter, which request) in any order.
        fc.array(
          fc.oneof(
            fc.tuple(
              fc.constant('spend'),
              fc.constantFrom(...nodes),
              fc.integer({ min: 1, max: 400 }),
            ),
            fc.tuple(fc.constant('grant'), fc.constantFrom(...nodes), fc.nat(40)),
          ),
          { maxLength: 60 },
        ),
        (policy, deposited, committed, steps) => {
          const transfers = nodes.map((node, i) => transfer('deposit', node, deposited[i]!))
          const cash = usd(deposited.reduce((sum, whole) => sum + whole, 0))
          const grants: escrow.Grant[] = []
          const requests: escrow.RightsRequest[] = []
          const usableAt = (node: string) => {
            const rights = escrow.rightsByNode(transfers, grants, 'alice')
            const spent = cash - [...rights.values()].reduce((sum, units) => sum + units, 0n)
            return escrow.spendable(rights, node, cash - spent - usd(committed), null).usable
          }
          for (const [t, [kind, node, n]] of steps.entries()) {
            if (kind === 'spend') {
              const usable = usableAt(node)
              if (usd(n) <= usable) {
                transfers.push({ ...transfer('withdrawal', node, n, `w${t}`), ts: t })
              } else {
                const amount = money.formatUsd(usd(n) - usable)
                requests.push({ id: `r${t}`, accountId: 'alice', node, amount, ts: t })
              }
              continue
            }
            const request = requests[n % Math.max(1, requests.length)]
            if (request === undefined || request.node === node) continue
            const id = `${request.id}/${node}`
            if (grants.some((g) => g.id === id)) continue
            const of = (who: string) => escrow.recentDemand(transfers, requests, 'alice', who, 0)
            const demand = { asker: of(request.node), granter: of(node) }
            const units = escrow.grantAmount(
              policy,
              usableAt(node),
              ledger.amountUnits(request),
              demand,
            )
            if (units > 0n) {
              grants.push({ ...grant(node, request.node, 0, id), amount: money.formatUsd(units) })
            }
          }
          const rights = escrow.rightsByNode(transfers, grants, 'alice')
          const withdrawn = transfers
            .filter((t) => t.kind === 'withdrawal')
            .reduce((sum, t) => sum + ledger.amountUnits(t), 0n)
          expect([...rights.values()].reduce((sum, units) => sum + units, 0n)).toBe(
            cash - withdrawn,
          )
          for (const units of rights.values()) expect(units).toBeGreaterThanOrEqual(0n)
          expect(withdrawn).toBeLessThanOrEqual(money.max(0n, cash - usd(committed)))
        },
      ),
      { numRuns: 300 },
    )
  })
})
