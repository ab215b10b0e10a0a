import * as instruments from '../../src/domain/instrument'
import { readCatalog } from '../../src/instruments'

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
