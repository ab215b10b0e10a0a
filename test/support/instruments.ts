import * as instruments from '../../src/domain/instrument'
import { readCatalog } from '../../src/instruments'
import type { OrderInput } from '../../src/state/market-doc'

/** BTC-PERP of the built-in catalog, which the examples in the tests work by hand: 10% / 5%
 * margin, 2 / 5 bp fees, tick 0.5, lot 0.001. */
export const btc = readCatalog(undefined).get('BTC-PERP')!

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

/** A GTC limit order as the matcher receives it (wire form), of 0.01 unless `orderSize` says. */
export const limitOrder = (
  orderId: string,
  accountId: string,
  side: 'buy' | 'sell',
  orderPrice: string,
  orderSize = '0.01',
): OrderInput => ({
  kind: 'order',
  orderId,
  clientOrderId: orderId,
  accountId,
  side,
  type: 'limit',
  price: orderPrice,
  size: orderSize,
  timeInForce: 'GTC',
  reduceOnly: false,
  receivedAt: 1,
})
