// Serializes the decisions that spend one account's free collateral (orders, withdrawals) inside
// its shard replica. A Durable Object interleaves calls while one awaits another object, so
// without this two concurrent orders could each pass a risk check that only one of them fits.
// The queue per account is bounded: past `accountQueueDepthMax` waiting calls the next one is
// refused at once (503 account_busy, retryable) instead of growing memory and latency unbounded.

import { accountQueueDepthMax } from '../constants'
import { reject, type Rejected } from '../domain/result'

type AccountQueue = { tail: Promise<unknown>; depth: number }
export type AccountLocks = Map<string, AccountQueue>

export function withAccountLock<T>(
  locks: AccountLocks,
  accountId: string,
  run: () => Promise<T>,
): Promise<T | Rejected<'account_busy'>> {
  const queue = locks.get(accountId) ?? { tail: Promise.resolve(), depth: 0 }
  if (queue.depth >= accountQueueDepthMax) {
    return Promise.resolve(
      reject(
        'account_busy',
        `account ${accountId} has ${queue.depth} calls waiting for its lock; retry shortly`,
      ),
    )
  }
  queue.depth += 1
  const next = queue.tail.then(run, run)
  const settled = next.catch(() => undefined)
  queue.tail = settled
  locks.set(accountId, queue)
  void settled.then(() => {
    queue.depth -= 1
    if (queue.depth === 0 && locks.get(accountId) === queue) locks.delete(accountId)
  })
  return next
}

/** Calls holding or waiting for any account's lock. */
export const lockQueueDepth = (locks: AccountLocks): number =>
  [...locks.values()].reduce((n, queue) => n + queue.depth, 0)
