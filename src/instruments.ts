// The venue's instrument catalog: the defaults below, or a JSON array in the INSTRUMENTS binding.

import { instrumentCountMax } from './constants'
import * as instruments from './domain/instrument'

export const defaultCatalog: instruments.InstrumentSpec[] = [
  {
    symbol: 'BTC-PERP',
    tickSize: '0.5',
    lotSize: '0.001',
    minSize: '0.001',
    initialMarginRate: '0.1',
    maintenanceMarginRate: '0.05',
    makerFeeRate: '0.0002',
    takerFeeRate: '0.0005',
    homeNode: 'a',
  },
  {
    symbol: 'ETH-PERP',
    tickSize: '0.01',
    lotSize: '0.01',
    minSize: '0.01',
    initialMarginRate: '0.1',
    maintenanceMarginRate: '0.05',
    makerFeeRate: '0.0002',
    takerFeeRate: '0.0005',
    homeNode: 'a',
  },
]

const symbolPattern = /^[A-Z0-9]{2,16}-PERP$/

/** Parses and checks a catalog; throws with the offending instrument named. */
export function readCatalog(json: string | undefined): Map<string, instruments.Instrument> {
  const specs =
    json === undefined || json === ''
      ? defaultCatalog
      : (JSON.parse(json) as instruments.InstrumentSpec[])
  if (!Array.isArray(specs) || specs.length === 0 || specs.length > instrumentCountMax) {
    throw new Error(`INSTRUMENTS must be a JSON array of 1 to ${instrumentCountMax} instruments`)
  }
  const catalog = new Map<string, instruments.Instrument>()
  for (const spec of specs) {
    if (!symbolPattern.test(spec.symbol))
      throw new Error(`instrument symbol ${spec.symbol} is not like BTC-PERP`)
    if (catalog.has(spec.symbol)) throw new Error(`instrument ${spec.symbol} is listed twice`)
    catalog.set(spec.symbol, instruments.define(spec))
  }
  return catalog
}
