import { describe, expect, it } from 'vitest'
import * as account from '../../src/domain/account'
import * as instruments from '../../src/domain/instrument'
import * as margin from '../../src/domain/margin'
import * as money from '../../src/domain/money'
import * as positions from '../../src/domain/position'
import { btc, price, size } from '../support/instruments'

const usd = (text: string) => {
  const parsed = money.parse(text, { ...money.usdTransfer, allowNegative: true, allowZero: true })
  if (!parsed.ok) throw new Error(parsed.message)
  return parsed.value
}

describe('cross margin', () => {
  it('computes the figures of a long at mark as worked by hand', () => {
    const q = size('0.5')
    const long = positions.applyFill(
      positions.flat,
      q,
      instruments.notional(btc, price('60000'), q),
    ).position
    const figures = margin.figures(
      usd('10000'),
      [{ instrument: btc, position: long, mark: price('61000') }],
      [],
    )
    expect(account.summarize(figures)).toEqual({
      collateral: '10000',
      equity: '10500', // + 0.5 × (61000 − 60000)
      unrealizedPnl: '500',
      initialMargin: '3050', // 10% of 30500
      maintenanceMargin: '1525', // 5% of 30500
      availableBalance: '7450',
      withdrawable: '7450',
      marginRatio: '0.145238', // 1525 / 10500
    })
  })

  it('reserves initial margin for resting orders and rounds margins up', () => {
    const figures = margin.figures(
      usd('100'),
      [],
      [{ instrument: btc, remaining: size('0.001'), price: price('60000.5') }],
    )
    // 10% of 60.0005 = 6.00005 → rounds up to the USD unit 6.00005 (exact at 6 decimals)
    expect(money.formatUsd(figures.initialMargin)).toBe('6.00005')
    const odd = margin.orderMargin(btc, price('0.5'), size('0.001')) // 10% of 0.0005 = 0.00005
    expect(money.formatUsd(odd)).toBe('0.00005')
    expect(instruments.applyRateUp(1n, btc.takerFeeRate)).toBe(1n) // 0.0005 unit rounds up to 1
  })

  it('caps withdrawable at collateral when unrealized PnL is positive', () => {
    const q = size('1')
    const long = positions.applyFill(
      positions.flat,
      q,
      instruments.notional(btc, price('100'), q),
    ).position
    const figures = margin.figures(
      usd('50'),
      [{ instrument: btc, position: long, mark: price('200') }],
      [],
    )
    // equity 150, IM 20: 130 available, but unrealized profit is not withdrawable: capped at 50
    expect(money.formatUsd(account.withdrawableUnits(figures))).toBe('50')
  })
})
