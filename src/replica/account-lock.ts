// Serializes the decisions that spend one account's free collateral (orders, withdrawals) inside
// its shard replica. A Durable Object interleaves calls while one awaits another object, so
// without this two concurrent orders could each pass a risk check that only one of them fits.

export type AccountLocks = Map<string, Promise<unknown>>

export function withAccountLock<T>(
  locks: AccountLocks,
  accountId: string,
  run: () => Promise<T>,
): Promise<T> {
  const previous = locks.get(accountId) ?? Promise.resolve()
  const next = previous.then(run, run)
  const settled = next.catch(() => undefined)
  locks.set(accountId, settled)
  void settled.then(() => {
    if (locks.get(accountId) === settled) locks.delete(accountId)
  })
  return next
}
