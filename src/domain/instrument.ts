// Linear perpetual instruments settled in USD, and the exact arithmetic of their notionals, fees
// and margins. Prices and sizes are fixed point at each instrument's own decimals; their product
// must fit the USD scale exactly, which `define` checks, so a notional never rounds.

import { usdDecimals } from '../constants'
import { assert } from './assert'
import * as money from './money'
import { ok, reject, type Result } from './result'

/** Rates (margin, fees) are decimals with this many places: "0.0005" is 500 rate units. */
export const rateDecimals = 6
const rateScale = 10n ** BigInt(rateDecimals)

export type InstrumentSpec = {
  symbol: string
  /** Price increment, e.g. "0.5". */
  tickSize: string
  /** Size increment, e.g. "0.001". */
  lotSize: string
  minSize: string
  initialMarginRate: string
  maintenanceMarginRate: string
  makerFeeRate: string
  takerFeeRate: string
  /** The node whose matcher sequences this instrument's book. */
  homeNode: string
}

export type Instrument = {
  spec: InstrumentSpec
  symbol: string
  priceDecimals: number
  sizeDecimals: number
  tick: money.Units
  lot: money.Units
  minSize: money.Units
  initialMarginRate: bigint
  maintenanceMarginRate: bigint
  makerFeeRate: bigint
  takerFeeRate: bigint
  /** Multiplier from price units × size units to USD units. */
  notionalScale: bigint
}

const decimalsOf = (text: string): number => text.split('.')[1]?.length ?? 0

const parseRate = (text: string, what: string): bigint => {
  const parsed = money.parse(text, {
    decimals: rateDecimals,
    max: rateScale,
    allowZero: true,
    allowNegative: false,
  })
  if (!parsed.ok) throw new Error(`${what}: ${parsed.message}`)
  return parsed.value
}

/** Checks a configured instrument and derives its fixed-point parameters; throws on a bad spec. */
export function define(spec: InstrumentSpec): Instrument {
  const priceDecimals = decimalsOf(spec.tickSize)
  const sizeDecimals = decimalsOf(spec.lotSize)
  if (priceDecimals + sizeDecimals > usdDecimals) {
    throw new Error(`${spec.symbol}: tick and lot decimals together exceed ${usdDecimals}`)
  }
  const positive = (text: string, decimals: number, what: string) => {
    const parsed = money.parse(text, {
      decimals,
      max: 10n ** 18n,
      allowZero: false,
      allowNegative: false,
    })
    if (!parsed.ok) throw new Error(`${spec.symbol} ${what}: ${parsed.message}`)
    return parsed.value
  }
  const instrument: Instrument = {
    spec,
    symbol: spec.symbol,
    priceDecimals,
    sizeDecimals,
    tick: positive(spec.tickSize, priceDecimals, 'tickSize'),
    lot: positive(spec.lotSize, sizeDecimals, 'lotSize'),
    minSize: positive(spec.minSize, sizeDecimals, 'minSize'),
    initialMarginRate: parseRate(spec.initialMarginRate, 'initialMarginRate'),
    maintenanceMarginRate: parseRate(spec.maintenanceMarginRate, 'maintenanceMarginRate'),
    makerFeeRate: parseRate(spec.makerFeeRate, 'makerFeeRate'),
    takerFeeRate: parseRate(spec.takerFeeRate, 'takerFeeRate'),
    notionalScale: 10n ** BigInt(usdDecimals - priceDecimals - sizeDecimals),
  }
  if (instrument.minSize % instrument.lot !== 0n)
    throw new Error(`${spec.symbol}: minSize is not a multiple of lotSize`)
  if (instrument.maintenanceMarginRate <= 0n)
    throw new Error(`${spec.symbol}: maintenance margin rate must be positive`)
  if (instrument.maintenanceMarginRate >= instrument.initialMarginRate) {
    throw new Error(`${spec.symbol}: maintenance margin rate must be below the initial margin rate`)
  }
  return instrument
}

export type PriceSizeError = 'invalid_price' | 'invalid_size'

type Grid = {
  code: PriceSizeError
  what: string
  decimals: number
  /** Largest whole part allowed, as a power of ten. */
  wholeDigits: number
  step: money.Units
  stepText: string
  stepName: string
  minimum: money.Units
  minimumText: string
}

/** Parses a positive decimal on a grid of `step`, at least `minimum`. */
function parseOnGrid(grid: Grid, value: unknown): Result<money.Units, PriceSizeError> {
  const parsed = money.parse(value, {
    decimals: grid.decimals,
    max: 10n ** BigInt(grid.wholeDigits + grid.decimals),
    allowZero: false,
    allowNegative: false,
  })
  if (!parsed.ok) return reject(grid.code, `${grid.what}: ${parsed.message}`)
  if (parsed.value % grid.step !== 0n) {
    return reject(
      grid.code,
      `${grid.what} must be a multiple of the ${grid.stepName} ${grid.stepText}`,
    )
  }
  if (parsed.value < grid.minimum) {
    return reject(grid.code, `${grid.what} is below the minimum ${grid.minimumText}`)
  }
  return ok(parsed.value)
}

/** Parses an order price: positive, on the tick grid. */
export const parsePrice = (instrument: Instrument, value: unknown) =>
  parseOnGrid(
    {
      code: 'invalid_price',
      what: 'price',
      decimals: instrument.priceDecimals,
      wholeDigits: 12,
      step: instrument.tick,
      stepText: instrument.spec.tickSize,
      stepName: 'tick size',
      minimum: instrument.tick,
      minimumText: instrument.spec.tickSize,
    },
    value,
  )

/** Parses an order size: at least the minimum, on the lot grid. */
export const parseSize = (instrument: Instrument, value: unknown) =>
  parseOnGrid(
    {
      code: 'invalid_size',
      what: 'size',
      decimals: instrument.sizeDecimals,
      wholeDigits: 9,
      step: instrument.lot,
      stepText: instrument.spec.lotSize,
      stepName: 'lot size',
      minimum: instrument.minSize,
      minimumText: instrument.spec.minSize,
    },
    value,
  )

export const formatPrice = (instrument: Instrument, units: money.Units) =>
  money.format(units, instrument.priceDecimals)
export const formatSize = (instrument: Instrument, units: money.Units) =>
  money.format(units, instrument.sizeDecimals)

/** Signed USD units of `size` (signed) at `price`: exact, never rounded. */
export const notional = (
  instrument: Instrument,
  price: money.Units,
  size: money.Units,
): money.Units => price * size * instrument.notionalScale

/** `amount × rate`, rounded up to a whole USD unit: fees and margins never round in the trader's favour. */
export function applyRateUp(amount: money.Units, rate: bigint): money.Units {
  assert(amount >= 0n, 'a rate applies to a non-negative amount')
  return (amount * rate + rateScale - 1n) / rateScale
}
