// A position in one instrument: signed size and signed cost (the USD value paid to open what is
// still open). Realized PnL on a reduce removes cost pro rata; because the removed cost is taken
// from the remaining cost, a position closed in full has had exactly its whole cost removed, so
// realized PnL summed over every account plus unrealized PnL is exactly zero (conservation, I6).

import { assert } from './assert'
import type * as money from './money'

export type Position = {
  /** Signed size in lots' units: positive long, negative short. */
  size: money.Units
  /** Signed USD units: Σ size × price of the fills that opened what is still open. */
  cost: money.Units
}

export const flat: Position = { size: 0n, cost: 0n }

const sign = (n: bigint): bigint => (n > 0n ? 1n : n < 0n ? -1n : 0n)
const abs = (n: bigint): bigint => (n < 0n ? -n : n)

/**
 * Applies a fill of signed `quantity` (buy positive) whose signed value is `value`
 * (quantity × price in USD units). Returns the new position and the PnL it realized.
 */
export function applyFill(
  position: Position,
  quantity: money.Units,
  value: money.Units,
): { position: Position; realized: money.Units } {
  assert(quantity !== 0n, 'a fill has a size')
  assert(sign(value) === sign(quantity), 'a fill value has the sign of its quantity')
  if (position.size === 0n || sign(position.size) === sign(quantity)) {
    return {
      position: { size: position.size + quantity, cost: position.cost + value },
      realized: 0n,
    }
  }
  const closing = abs(quantity) < abs(position.size) ? abs(quantity) : abs(position.size)
  // Truncation toward zero is deterministic on every node; the remainder stays in the cost.
  const removedCost = (position.cost * closing) / abs(position.size)
  const closingValue = (value * closing) / abs(quantity)
  assert(
    (value * closing) % abs(quantity) === 0n,
    'fill value is price × quantity, divisible per lot',
  )
  const realized = -closingValue - removedCost
  const reduced = {
    size: position.size + sign(quantity) * closing,
    cost: position.cost - removedCost,
  }
  assert(reduced.size !== 0n || reduced.cost === 0n, 'a closed position has no cost left')
  const opening = abs(quantity) - closing
  if (opening === 0n) return { position: reduced, realized }
  return {
    position: {
      size: reduced.size + sign(quantity) * opening,
      cost: reduced.cost + (value - closingValue),
    },
    realized,
  }
}

/** PnL of the open position at `markValue` (size × mark in USD units). */
export const unrealized = (position: Position, markValue: money.Units): money.Units =>
  markValue - position.cost

/** Average entry price in price units, truncated; undefined when flat. */
export function averageEntry(position: Position, notionalScale: bigint): money.Units | undefined {
  if (position.size === 0n) return undefined
  return position.cost / (position.size * notionalScale)
}
