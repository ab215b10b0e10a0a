// A withdrawal is approved exactly up to the withdrawable amount, and one unit more is refused
// with a message that names both amounts.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as account from '../../src/domain/account'
import * as money from '../../src/domain/money'
import * as withdrawal from '../../src/domain/withdrawal'

describe('withdrawal.decide', () => {
  const figures = account.collateralOnly(1_250_500_000n)

  it('approves the whole collateral of a collateral-only account', () => {
    expect(withdrawal.decide(figures, 1_250_500_000n)).toEqual({
      ok: true,
      value: { withdrawableAfter: 0n },
    })
  })

  it('approves part and reports what stays withdrawable', () => {
    expect(withdrawal.decide(figures, 250_500_000n)).toEqual({
      ok: true,
      value: { withdrawableAfter: 1_000_000_000n },
    })
  })

  it('refuses one unit more with insufficient_funds, naming both amounts', () => {
    expect(withdrawal.decide(figures, 1_250_500_001n)).toEqual({
      ok: false,
      code: 'insufficient_funds',
      message: 'withdrawal of 1250.500001 USD exceeds the withdrawable 1250.5 USD',
    })
  })

  it('refuses anything from an empty account', () => {
    expect(withdrawal.decide(account.collateralOnly(0n), 1n)).toEqual({
      ok: false,
      code: 'insufficient_funds',
      message: 'withdrawal of 0.000001 USD exceeds the withdrawable 0 USD',
    })
  })

  it('decides on equity - initial margin when that is below collateral', () => {
    const margined = {
      collateral: 1_000_000_000n,
      unrealizedPnl: -200_000_000n,
      initialMargin: 300_000_000n,
      maintenanceMargin: 150_000_000n,
    }
    expect(withdrawal.decide(margined, 500_000_000n)).toMatchObject({ ok: true })
    expect(withdrawal.decide(margined, 500_000_001n)).toMatchObject({
      ok: false,
      code: 'insufficient_funds',
      message: 'withdrawal of 500.000001 USD exceeds the withdrawable 500 USD',
    })
  })

  it('approves exactly up to withdrawable and rejects one unit more, for any figures', () => {
    const figuresArb = fc.record({
      collateral: fc.bigInt({ min: -(10n ** 12n), max: 10n ** 15n }),
      unrealizedPnl: fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }),
      initialMargin: fc.bigInt({ min: 0n, max: 10n ** 15n }),
      maintenanceMargin: fc.bigInt({ min: 0n, max: 10n ** 15n }),
    })
    fc.assert(
      fc.property(figuresArb, fc.bigInt({ min: 1n, max: 10n ** 15n }), (f, amount) => {
        const withdrawable = account.withdrawableUnits(f)
        const decision = withdrawal.decide(f, amount)
        if (amount <= withdrawable) {
          expect(decision).toEqual({
            ok: true,
            value: { withdrawableAfter: withdrawable - amount },
          })
        } else {
          expect(decision).toMatchObject({ ok: false, code: 'insufficient_funds' })
        }
        if (withdrawable > 0n) {
          expect(withdrawal.decide(f, withdrawable)).toMatchObject({ ok: true })
        }
        const over = withdrawal.decide(f, withdrawable + 1n)
        expect(over).toEqual({
          ok: false,
          code: 'insufficient_funds',
          message: `withdrawal of ${money.formatUsd(withdrawable + 1n)} USD exceeds the withdrawable ${money.formatUsd(withdrawable)} USD`,
        })
      }),
      { numRuns: 1_000 },
    )
  })
})
