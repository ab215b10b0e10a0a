// A market's derived state in the stored form a market checkpoint keeps (market-doc.ts), and
// back. Pure: the same state gives the same snapshot on every node, so a node checks a checkpoint
// by taking its own snapshot where the checkpoint was written and comparing. Only what the chain
// decided is kept: an order only a fenced step took is no part of it (fence() adds its view on
// each node from the steps that node holds, so nodes may differ on it until they converge).

import * as matcher from '../domain/matcher'
import type * as money from '../domain/money'
import * as market from './market-doc'
import type { AccountActivity, MarketState, OrderView } from './market-state'

const units = (text: string): money.Units => BigInt(text)

/** The snapshot of `state`: open orders and totals whole, closed history from `retainFrom`. */
export function snapshotOf(state: MarketState, retainFrom: number): market.MarketSnapshot {
  // The book's orders are the matcher's own objects, which carry more than a resting order.
  const resting = matcher.restingOf(state.book).map((order) => ({
    orderId: order.orderId,
    accountId: order.accountId,
    side: order.side,
    price: order.price.toString(),
    remaining: order.remaining.toString(),
    reduceOnly: order.reduceOnly,
  }))
  const positions = Object.fromEntries(
    [...state.book.positions].map(([id, p]) => [
      id,
      { size: p.size.toString(), cost: p.cost.toString() },
    ]),
  )
  const orders: Record<string, market.StoredOrder> = {}
  for (const [id, view] of state.orders) {
    if (view.reason === 'fenced') continue
    if (!state.book.orders.has(id) && view.updatedAt < retainFrom) continue
    orders[id] = storedOrder(view)
  }
  const accounts: Record<string, market.StoredActivity> = {}
  for (const [id, activity] of state.accounts) {
    accounts[id] = {
      fills: activity.fills.filter((entry) => entry.ts >= retainFrom),
      fundings: activity.fundings.filter((entry) => entry.ts >= retainFrom),
      realized: activity.realized.toString(),
      fees: activity.fees.toString(),
      funding: activity.funding.toString(),
    }
  }
  const settlements: Record<string, market.StoredSettlement> = {}
  for (const [epoch, settlement] of state.settledEpochs) {
    if (settlement.input.receivedAt >= retainFrom) settlements[String(epoch)] = settlement
  }
  return { resting, positions, orders, accounts, settlements }
}

const storedOrder = (view: OrderView): market.StoredOrder => ({
  ...view,
  filled: view.filled.toString(),
  filledValue: view.filledValue.toString(),
  remaining: view.remaining.toString(),
})

/** Puts a checkpoint's state into `state`, a state just created: it goes on from the step after. */
export function restore(state: MarketState, checkpoint: market.MarketCheckpoint): void {
  state.book = matcher.restore(
    state.instrument,
    checkpoint.resting.map((order) => ({
      ...order,
      price: units(order.price),
      remaining: units(order.remaining),
    })),
    new Map(
      Object.entries(checkpoint.positions).map(([id, p]) => [
        id,
        { size: units(p.size), cost: units(p.cost) },
      ]),
    ),
  )
  for (const [id, order] of Object.entries(checkpoint.orders)) {
    state.orders.set(id, {
      ...order,
      filled: units(order.filled),
      filledValue: units(order.filledValue),
      remaining: units(order.remaining),
    })
  }
  for (const [id, stored] of Object.entries(checkpoint.accounts)) {
    const activity: AccountActivity = {
      fills: [...stored.fills],
      fundings: [...stored.fundings],
      realized: units(stored.realized),
      fees: units(stored.fees),
      funding: units(stored.funding),
    }
    state.accounts.set(id, activity)
  }
  for (const [epoch, settlement] of Object.entries(checkpoint.settlements)) {
    state.settledEpochs.set(Number(epoch), settlement)
  }
  state.base = checkpoint
  state.nextSeq = checkpoint.at.seq + 1
  state.term = checkpoint.at.term
  state.last = checkpoint.at
}
