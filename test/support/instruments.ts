import * as instruments from '../../src/domain/instrument'

/** BTC-PERP as the examples in the tests work it by hand: 10% / 5% margin, 2 / 5 bp fees. */
export const btc = instruments.define({
  symbol: 'BTC-PERP',
  tickSize: '0.5',
  lotSize: '0.001',
  minSize: '0.001',
  initialMarginRate: '0.1',
  maintenanceMarginRate: '0.05',
  makerFeeRate: '0.0002',
  takerFeeRate: '0.0005',
  homeNode: 'a',
})

export const price = (text: string) => {
  const parsed = instruments.parsePrice(btc, text)
  if (!parsed.ok) throw new Error(parsed.message)
  return parsed.value
}

export const size = (text: string) => {
  const parsed = instruments.parseSize(btc, text)
  if (!parsed.ok) throw new Error(parsed.message)
  return parsed.value
}
