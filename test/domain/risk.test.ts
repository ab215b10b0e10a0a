import { describe, expect, it } from 'vitest'
import * as account from '../../src/domain/account'
import * as money from '../../src/domain/money'
import * as risk from '../../src/domain/risk'
import { btc, price, size } from '../support/instruments'

const usd = (text: string) => {
  const parsed = money.parse(text, money.usdTransfer)
  if (!parsed.ok) throw new Error(parsed.message)
  return parsed.value
}
const fresh = (text: string) => ({ price: price(text), stale: false })
const order = (side: 'buy' | 'sell', at: string | null, qty = '1', reduceOnly = false) => ({
  instrument: btc,
  side,
  price: at === null ? null : price(at),
  size: size(qty),
  reduceOnly,
})

describe('pre-trade risk', () => {
  it('bands prices at the mark ± 10% on the tick grid', () => {
    expect(risk.band(btc, price('60000'))).toEqual({ low: price('54000'), high: price('66000') })
    expect(risk.band(btc, price('60000.5'))).toEqual({
      low: price('54000.5'),
      high: price('66000.5'),
    })
  })

  it('requires initial margin at the worse of price and mark, the loss against the mark and the fee', () => {
    const figures = account.collateralOnly(usd('1000000'))
    // buy 1 at 61000 with the mark at 60000: IM 6100 + loss 1000 + fee 30.5
    const buy = risk.preTrade(figures, order('buy', '61000'), fresh('60000'), 0)
    expect(buy.ok && money.formatUsd(buy.value.margin)).toBe('7130.5')
    // sell 1 at 59000: IM at the mark 6000 + loss 1000 + fee 29.5
    const sell = risk.preTrade(figures, order('sell', '59000'), fresh('60000'), 0)
    expect(sell.ok && money.formatUsd(sell.value.margin)).toBe('7029.5')
  })

  it('prices a market order at the band edge and checks it the same way', () => {
    const figures = account.collateralOnly(usd('1000000'))
    const buy = risk.preTrade(figures, order('buy', null), fresh('60000'), 0)
    expect(buy.ok && buy.value.limit).toBe(price('66000'))
  })

  it('refuses off-band prices, missing and stale marks, and too many resting orders', () => {
    const figures = account.collateralOnly(usd('1000000'))
    const code = (result: ReturnType<typeof risk.preTrade>) => (result.ok ? 'ok' : result.code)
    expect(code(risk.preTrade(figures, order('sell', '0.5'), fresh('60000'), 0))).toBe(
      'price_outside_band',
    )
    expect(code(risk.preTrade(figures, order('buy', '60000'), null, 0))).toBe('mark_unavailable')
    const stale = { price: price('60000'), stale: true }
    expect(code(risk.preTrade(figures, order('buy', '60000'), stale, 0))).toBe('mark_stale')
    expect(code(risk.preTrade(figures, order('sell', '60000', '1', true), stale, 0))).toBe('ok')
    expect(code(risk.preTrade(figures, order('buy', '60000'), fresh('60000'), 200))).toBe(
      'too_many_open_orders',
    )
  })

  it('approves exactly what the available balance covers', () => {
    const needed = usd('6030') // IM 6000 + fee 30 at the mark
    const exact = risk.preTrade(
      account.collateralOnly(needed),
      order('buy', '60000'),
      fresh('60000'),
      0,
    )
    expect(exact.ok).toBe(true)
    const short = risk.preTrade(
      account.collateralOnly(needed - 1n),
      order('buy', '60000'),
      fresh('60000'),
      0,
    )
    expect(short.ok ? 'ok' : short.code).toBe('insufficient_margin')
  })
})
