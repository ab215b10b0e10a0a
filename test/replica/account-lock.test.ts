// The per-account lock queue is bounded: calls past the bound are refused at once with
// account_busy, other accounts are untouched, and the queue drains in order and forgets the
// account once empty.

import { describe, expect, it } from 'vitest'
import { accountQueueDepthMax } from '../../src/constants'
import { withAccountLock, type AccountLocks } from '../../src/replica/account-lock'

describe('account lock queue', () => {
  it('refuses the call past the bound, serves the queued ones in order, then accepts again', async () => {
    const locks: AccountLocks = new Map()
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    const order: number[] = []
    const queued = Array.from({ length: accountQueueDepthMax }, (_, i) =>
      withAccountLock(locks, 'alice', async () => {
        await gate
        order.push(i)
        return i
      }),
    )
    const refused = await withAccountLock(locks, 'alice', async () => 'never')
    expect(refused).toMatchObject({ ok: false, code: 'account_busy' })
    // Another account has its own queue.
    expect(await withAccountLock(locks, 'bob', async () => 'bob served')).toBe('bob served')

    open()
    expect(await Promise.all(queued)).toEqual([...order.keys()])
    expect(order).toEqual([...order.keys()])
    expect(await withAccountLock(locks, 'alice', async () => 'served')).toBe('served')
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(locks.size).toBe(0)
  })

  it('keeps serving after a call that throws', async () => {
    const locks: AccountLocks = new Map()
    const failing = withAccountLock(locks, 'alice', async () => {
      throw new Error('boom')
    })
    const next = withAccountLock(locks, 'alice', async () => 'next')
    await expect(failing).rejects.toThrow('boom')
    expect(await next).toBe('next')
  })
})
