// Exact decimal amounts: bigint fixed point inside, canonical decimal strings outside.
// A JSON number never becomes money: floats cannot hold 0.1 exactly (design.md §2.2).

import { amountUnitsMax, decimalStringLengthMax, usdDecimals } from '../constants'
import { reject, ok, type Result } from './result'

/** An amount in the smallest unit of its scale (for USD: 10^-6). */
export type Units = bigint

export type ParseOptions = {
  /** Most digits allowed after the decimal point; also the fixed-point scale. */
  decimals: number
  /** Largest absolute value allowed, in units. */
  max: Units
  /** Whether zero is acceptable (a transfer of zero is not). */
  allowZero: boolean
  /** Whether a leading minus sign is acceptable. */
  allowNegative: boolean
}

export type AmountError = 'invalid_amount'

const decimalPattern = /^(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?$/

/** Options for a positive USD amount moved by a deposit or withdrawal. */
export const usdTransfer: ParseOptions = {
  decimals: usdDecimals,
  max: amountUnitsMax,
  allowZero: false,
  allowNegative: false,
}

/**
 * Parses a decimal string such as "1250.5" into units of `10^-decimals`.
 * Refuses numbers (JSON floats), exponents, signs other than a leading minus, leading zeros,
 * more decimals than the scale allows and values beyond `max`, each with its own message.
 */
export function parse(value: unknown, options: ParseOptions): Result<Units, AmountError> {
  if (typeof value === 'number') {
    return reject(
      'invalid_amount',
      'amounts are decimal strings such as "100.25", not JSON numbers',
    )
  }
  if (typeof value !== 'string') return reject('invalid_amount', 'amount must be a decimal string')
  if (value.length === 0 || value.length > decimalStringLengthMax) {
    return reject('invalid_amount', `amount must have 1 to ${decimalStringLengthMax} characters`)
  }
  const match = decimalPattern.exec(value)
  if (match === null) {
    return reject(
      'invalid_amount',
      `"${value}" is not a plain decimal (digits, one optional ".", no exponent, no leading zeros)`,
    )
  }
  const [, sign, whole, fraction = ''] = match
  if (fraction.length > options.decimals) {
    return reject('invalid_amount', `amount has more than ${options.decimals} decimal places`)
  }
  const magnitude =
    BigInt(whole!) * 10n ** BigInt(options.decimals) +
    BigInt(fraction.padEnd(options.decimals, '0') || '0')
  const units = sign === '-' ? -magnitude : magnitude
  if (sign === '-' && !options.allowNegative) {
    return reject('invalid_amount', 'amount must not be negative')
  }
  if (units === 0n && !options.allowZero) return reject('invalid_amount', 'amount must be positive')
  if (magnitude > options.max) {
    return reject(
      'invalid_amount',
      `amount exceeds the limit of ${format(options.max, options.decimals)}`,
    )
  }
  return ok(units)
}

/** Formats units as the canonical decimal string: no exponent, no trailing zeros, "-0" never. */
export function format(units: Units, decimals: number): string {
  const negative = units < 0n
  const magnitude = negative ? -units : units
  const scale = 10n ** BigInt(decimals)
  const whole = (magnitude / scale).toString()
  const fraction = (magnitude % scale).toString().padStart(decimals, '0').replace(/0+$/, '')
  const text = fraction.length > 0 ? `${whole}.${fraction}` : whole
  return negative ? `-${text}` : text
}

export const formatUsd = (units: Units): string => format(units, usdDecimals)

export const min = (a: Units, b: Units): Units => (a < b ? a : b)
export const max = (a: Units, b: Units): Units => (a > b ? a : b)
