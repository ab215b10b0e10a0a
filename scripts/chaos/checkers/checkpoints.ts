// C11: market checkpoints (src/state/market-checkpoint.ts). Every node holding a checkpoint holds
// the same one, whatever order its maps came in; and the checkpoint in force, which the other
// checkers read the folded history from, adds up: each account's realized PnL, fees and funding
// are the sums of the fills and fundings it lists, each order's filled size the sum of its listed
// fills, and the positions what those fills give by the model's arithmetic. Reports, per market,
// the step the checkpoint in force folds to and how many steps the document still holds.

import { orderFreeJson } from '../../../src/domain/canonical'
import type { MarketCheckpoint } from '../../../src/state/market-doc'
import { usd, units, type NodeView } from '../final-state'
import { contextOf, type CheckInput, type Context } from './context'
import { applyFill, type Position } from './model'
import { report, type CheckResult, type Report } from './report'

export function checkMarketCheckpoints(input: CheckInput): CheckResult {
  const r = report('C11', 'market checkpoints agree and add up')
  const context = contextOf(input)
  const reference = new Map<string, { node: string; text: string }>()
  for (const view of context.views) {
    for (const [key, checkpoint] of view.marketCheckpoints) {
      const text = orderFreeJson(checkpoint)
      const held = reference.get(key)
      if (held === undefined) reference.set(key, { node: view.node, text })
      else if (held.text !== text) r.error('differs', `${key}: ${view.node} and ${held.node}`)
    }
    for (const [symbol, base] of view.bases) addsUp(r, context, view.node, symbol, base)
  }
  const first = context.views[0]
  for (const [symbol, base] of first?.bases ?? []) {
    r.figure(`${symbol} folded to`, base.at.seq)
    r.figure(`${symbol} steps held`, stepsHeld(input, first!, symbol))
  }
  r.figure('checkpoints', reference.size)
  if (reference.size === 0) r.notApplicable('no market checkpoint in the documents')
  return r.done()
}

const stepsHeld = (input: CheckInput, view: NodeView, symbol: string): number =>
  Object.keys(
    input.final.nodes.find((node) => node.node === view.node)?.docs[`market/${symbol}`]?.content
      ?.steps ?? {},
  ).length

/** The base's totals, orders and positions are what the history it lists gives. */
function addsUp(
  r: Report,
  context: Context,
  node: string,
  symbol: string,
  base: MarketCheckpoint,
): void {
  const instrument = context.instruments.get(symbol)
  if (instrument === undefined) return
  const where = `${node} ${symbol} ${base.id}`
  const fills = new Map(
    Object.values(base.accounts).flatMap((a) => a.fills.map(({ fill }) => [fill.fillId, fill])),
  )
  const sums = new Map<string, { realized: bigint; fees: bigint; funding: bigint }>()
  const sumOf = (accountId: string) => {
    let sum = sums.get(accountId)
    if (sum === undefined) sums.set(accountId, (sum = { realized: 0n, fees: 0n, funding: 0n }))
    return sum
  }
  const filled = new Map<string, bigint>()
  const positions = new Map<string, Position>()
  for (const fill of [...fills.values()].sort((x, y) => (x.fillId < y.fillId ? -1 : 1))) {
    const size = units(fill.size, instrument.sizeDecimals)
    const value = units(fill.price, instrument.priceDecimals) * size * instrument.notionalScale
    const legs = [
      { accountId: fill.taker, orderId: fill.takerOrderId, buys: fill.takerSide === 'buy' },
      { accountId: fill.maker, orderId: fill.makerOrderId, buys: fill.takerSide !== 'buy' },
    ]
    for (const { accountId, orderId, buys } of legs) {
      filled.set(orderId, (filled.get(orderId) ?? 0n) + size)
      let position = positions.get(accountId)
      if (position === undefined) positions.set(accountId, (position = { size: 0n, cost: 0n }))
      applyFill(position, buys ? size : -size, buys ? value : -value)
    }
    sumOf(fill.taker).realized += usd(fill.takerRealized)
    sumOf(fill.taker).fees += usd(fill.takerFee)
    sumOf(fill.maker).realized += usd(fill.makerRealized)
    sumOf(fill.maker).fees += usd(fill.makerFee)
  }
  for (const activity of Object.values(base.accounts))
    for (const { funding } of activity.fundings)
      sumOf(funding.accountId).funding += usd(funding.amount)
  for (const [accountId, activity] of Object.entries(base.accounts)) {
    const sum = sumOf(accountId)
    for (const field of ['realized', 'fees', 'funding'] as const)
      if (BigInt(activity[field]) !== sum[field])
        r.error(
          'totals',
          `${where}: ${accountId} ${field} ${activity[field]}, listed ${sum[field]}`,
        )
  }
  for (const [orderId, order] of Object.entries(base.orders))
    if (BigInt(order.filled) !== (filled.get(orderId) ?? 0n))
      r.error(
        'order-filled',
        `${where}: ${orderId} filled ${order.filled}, listed ${filled.get(orderId) ?? 0n}`,
      )
  const accounts = new Set([...positions.keys(), ...Object.keys(base.positions)])
  for (const accountId of accounts) {
    const stated = base.positions[accountId] ?? { size: '0', cost: '0' }
    const listed = positions.get(accountId) ?? { size: 0n, cost: 0n }
    if (BigInt(stated.size) !== listed.size || BigInt(stated.cost) !== listed.cost)
      r.error(
        'positions',
        `${where}: ${accountId} holds ${stated.size} at cost ${stated.cost}, ` +
          `listed fills give ${listed.size} at ${listed.cost}`,
      )
  }
}
