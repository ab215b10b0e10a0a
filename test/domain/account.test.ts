// The account summary a trader reconciles against: hand-worked figures, canonical decimals, and
// a withdrawable amount that never exceeds what the account may give up.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as account from '../../src/domain/account'
import * as money from '../../src/domain/money'

const usd = (text: string): money.Units => {
  const parsed = money.parse(text, { ...money.usdTransfer, allowZero: true, allowNegative: true })
  if (!parsed.ok) throw new Error(parsed.message)
  return parsed.value
}

const figures = (
  collateral: string,
  unrealizedPnl: string,
  initialMargin: string,
  maintenanceMargin: string,
): account.AccountFigures => ({
  collateral: usd(collateral),
  unrealizedPnl: usd(unrealizedPnl),
  initialMargin: usd(initialMargin),
  maintenanceMargin: usd(maintenanceMargin),
})

describe('account.collateralOnly', () => {
  it('has zero PnL and margins', () => {
    expect(account.collateralOnly(5n)).toEqual({
      collateral: 5n,
      unrealizedPnl: 0n,
      initialMargin: 0n,
      maintenanceMargin: 0n,
    })
  })
})

describe('account.summarize for collateral-only accounts', () => {
  it.each([
    ['0', 0n],
    ['0.000001', 1n],
    ['100', 100_000_000n],
    ['1250.5', 1_250_500_000n],
    ['1000000000000', 10n ** 18n],
  ])('collateral %s: every money field is canonical, margins zero', (text, collateral) => {
    expect(account.summarize(account.collateralOnly(collateral))).toEqual({
      collateral: text,
      equity: text,
      unrealizedPnl: '0',
      initialMargin: '0',
      maintenanceMargin: '0',
      availableBalance: text,
      withdrawable: text,
      marginRatio: '0',
    })
  })

  it('never prints trailing zeros, exponents or "-0"', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 18n }), (collateral) => {
        const summary = account.summarize(account.collateralOnly(collateral))
        for (const value of Object.values(summary)) {
          expect(value).toMatch(/^(0|[1-9][0-9]*)(\.[0-9]{0,5}[1-9])?$/)
        }
        expect(usd(summary.collateral)).toBe(collateral)
        expect(usd(summary.withdrawable)).toBe(collateral)
      }),
    )
  })
})

describe('account.summarize with margin figures (hand-worked)', () => {
  it('a loss reduces equity and what may be withdrawn', () => {
    expect(account.summarize(figures('1000', '-200', '300', '150'))).toEqual({
      collateral: '1000',
      equity: '800',
      unrealizedPnl: '-200',
      initialMargin: '300',
      maintenanceMargin: '150',
      availableBalance: '500',
      withdrawable: '500',
      marginRatio: '0.1875',
    })
  })

  it('an unrealized profit raises equity but is not withdrawable beyond collateral', () => {
    expect(account.summarize(figures('1000', '500', '100', '50'))).toMatchObject({
      equity: '1500',
      availableBalance: '1400',
      withdrawable: '1000',
      marginRatio: '0.033333',
    })
  })

  it('equity below initial margin: negative available balance, nothing withdrawable', () => {
    expect(account.summarize(figures('100', '-50', '80', '40'))).toMatchObject({
      equity: '50',
      availableBalance: '-30',
      withdrawable: '0',
      marginRatio: '0.8',
    })
  })

  it('equity at or below zero: ratio "infinite" with maintenance margin, "0" without', () => {
    expect(account.summarize(figures('100', '-300', '20', '10'))).toMatchObject({
      equity: '-200',
      availableBalance: '-220',
      withdrawable: '0',
      marginRatio: 'infinite',
    })
    expect(account.summarize(figures('100', '-100', '0', '0'))).toMatchObject({
      equity: '0',
      withdrawable: '0',
      marginRatio: '0',
    })
  })
})

const figuresArb: fc.Arbitrary<account.AccountFigures> = fc.record({
  collateral: fc.bigInt({ min: -(10n ** 12n), max: 10n ** 15n }),
  unrealizedPnl: fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }),
  initialMargin: fc.bigInt({ min: 0n, max: 10n ** 15n }),
  maintenanceMargin: fc.bigInt({ min: 0n, max: 10n ** 15n }),
})

describe('account.withdrawableUnits', () => {
  it('is zero for zero collateral and all of it for a collateral-only account', () => {
    expect(account.withdrawableUnits(account.collateralOnly(0n))).toBe(0n)
    expect(account.withdrawableUnits(account.collateralOnly(1_250_500_000n))).toBe(1_250_500_000n)
  })

  it('is never negative and never exceeds collateral nor equity - initial margin', () => {
    fc.assert(
      fc.property(figuresArb, (f) => {
        const withdrawable = account.withdrawableUnits(f)
        const available = f.collateral + f.unrealizedPnl - f.initialMargin
        expect(withdrawable).toBeGreaterThanOrEqual(0n)
        expect(withdrawable).toBeLessThanOrEqual(money.max(0n, f.collateral))
        expect(withdrawable).toBeLessThanOrEqual(money.max(0n, available))
        // And it is the largest such amount: nothing withdrawable is withheld.
        const bound = money.min(f.collateral, available)
        expect(withdrawable).toBe(bound > 0n ? bound : 0n)
      }),
      { numRuns: 1_000 },
    )
  })

  it('summarize prints exactly withdrawableUnits and equity - initial margin', () => {
    fc.assert(
      fc.property(figuresArb, (f) => {
        const summary = account.summarize(f)
        const equity = f.collateral + f.unrealizedPnl
        expect(usd(summary.withdrawable)).toBe(account.withdrawableUnits(f))
        expect(usd(summary.equity)).toBe(equity)
        expect(usd(summary.availableBalance)).toBe(equity - f.initialMargin)
        if (equity > 0n) {
          expect(summary.marginRatio).toBe(
            money.format((f.maintenanceMargin * 1_000_000n) / equity, 6),
          )
        }
      }),
      { numRuns: 1_000 },
    )
  })
})
