// Decimal strings in, bigint units out, and back: the only way money enters or leaves the ledger.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { amountUnitsMax, decimalStringLengthMax, usdDecimals } from '../../src/constants'
import * as money from '../../src/domain/money'

const usd = money.usdTransfer
/** Signed amounts with zero allowed, e.g. an account balance or an unrealized PnL. */
const signed: money.ParseOptions = { ...usd, allowZero: true, allowNegative: true }
const nonNegative: money.ParseOptions = { ...usd, allowZero: true, allowNegative: false }

const units = (value: unknown, options = usd): money.Units => {
  const parsed = money.parse(value, options)
  if (!parsed.ok) throw new Error(`expected ${String(value)} to parse: ${parsed.message}`)
  return parsed.value
}

const rejection = (value: unknown, options = usd) => {
  const parsed = money.parse(value, options)
  if (parsed.ok) throw new Error(`expected ${String(value)} to be rejected, got ${parsed.value}`)
  return parsed
}

describe('money.parse accepts plain decimal strings', () => {
  it.each([
    ['0.000001', 1n],
    ['1', 1_000_000n],
    ['100', 100_000_000n],
    ['1250.5', 1_250_500_000n],
    ['1250.50', 1_250_500_000n],
    ['0.1', 100_000n],
    ['999999999999.999999', amountUnitsMax - 1n],
    ['1000000000000', amountUnitsMax],
    ['1000000000000.000000', amountUnitsMax],
  ])('"%s" is %s units', (text, expected) => {
    const value = units(text)
    expect(typeof value).toBe('bigint')
    expect(value).toBe(expected)
  })

  it('adds exactly where a float would not (0.1 + 0.2 == 0.3)', () => {
    expect(0.1 + 0.2).not.toBe(0.3)
    expect(units('0.1') + units('0.2')).toBe(units('0.3'))
  })

  it('accepts zero and negatives only where the options allow them', () => {
    expect(units('0', nonNegative)).toBe(0n)
    expect(units('0.000000', nonNegative)).toBe(0n)
    expect(units('-0.000001', signed)).toBe(-1n)
    expect(units('-1250.5', signed)).toBe(-1_250_500_000n)
    expect(units('-1000000000000', signed)).toBe(-amountUnitsMax)
  })

  it('uses the scale given by the options', () => {
    expect(units('7', { ...usd, decimals: 0 })).toBe(7n)
    expect(units('1.25', { ...usd, decimals: 2, max: 1_000n })).toBe(125n)
    expect(units('1.25', { ...usd, decimals: 8, max: 10n ** 9n })).toBe(125_000_000n)
  })

  it(`accepts a string of exactly ${decimalStringLengthMax} characters`, () => {
    const text = `0.${'0'.repeat(decimalStringLengthMax - 3)}1`
    expect(text).toHaveLength(decimalStringLengthMax)
    const options = { ...usd, decimals: decimalStringLengthMax - 2, max: 1n }
    expect(units(text, options)).toBe(1n)
  })
})

describe('money.parse rejects everything else with invalid_amount and a reason', () => {
  it.each([0.5, 100, 0, -1, 1e5, Number.NaN, Number.POSITIVE_INFINITY])(
    'the JSON number %s',
    (value) => {
      const rejected = rejection(value)
      expect(rejected.code).toBe('invalid_amount')
      expect(rejected.message).toMatch(/decimal strings .* not JSON numbers/)
    },
  )

  it.each([null, undefined, true, 5n, {}, ['5'], { amount: '5' }])('the non-string %s', (value) => {
    const rejected = rejection(value)
    expect(rejected.code).toBe('invalid_amount')
    expect(rejected.message).toBe('amount must be a decimal string')
  })

  it.each([
    '1e5',
    '1E-3',
    '+5',
    ' 5',
    '5 ',
    '5\n',
    '5.',
    '.5',
    '007',
    '00.5',
    '1,000',
    '1_000',
    'NaN',
    'Infinity',
    '-Infinity',
    '0x10',
    '0b1',
    '--5',
    '-',
    '1.2.3',
    '١٢',
  ])('the non-plain decimal %j', (text) => {
    const rejected = rejection(text, signed)
    expect(rejected.code).toBe('invalid_amount')
    expect(rejected.message).toBe(
      `"${text}" is not a plain decimal (digits, one optional ".", no exponent, no leading zeros)`,
    )
  })

  it('more decimals than the scale (7 for USD)', () => {
    const rejected = rejection('0.0000001')
    expect(rejected.code).toBe('invalid_amount')
    expect(rejected.message).toBe(`amount has more than ${usdDecimals} decimal places`)
    // Trailing zeros count too: the client asked for a precision the ledger cannot hold.
    expect(rejection('1.0000000').message).toBe('amount has more than 6 decimal places')
  })

  it.each(['-5', '-0.000001', '-1250.5'])('the negative %s where negatives are refused', (text) => {
    for (const options of [usd, nonNegative]) {
      const rejected = rejection(text, options)
      expect(rejected.code).toBe('invalid_amount')
      expect(rejected.message).toBe('amount must not be negative')
    }
  })

  it.each(['0', '0.0', '0.000000', '-0'])('the zero %s where zero is refused', (text) => {
    const rejected = rejection(text)
    expect(rejected.code).toBe('invalid_amount')
    expect(rejected.message).toMatch(/must (be positive|not be negative)/)
  })

  it('a leading minus sign where negatives are refused, even on zero ("-0")', () => {
    // ParseOptions.allowNegative: "Whether a leading minus sign is acceptable." "-0" is also
    // never produced by format, so accepting it would admit a second spelling of zero.
    const rejected = rejection('-0', nonNegative)
    expect(rejected.code).toBe('invalid_amount')
    expect(rejected.message).toBe('amount must not be negative')
  })

  it(`values over the limit (amountUnitsMax = ${money.formatUsd(amountUnitsMax)} USD)`, () => {
    for (const text of ['1000000000000.000001', '1000000000001', '99999999999999999999']) {
      const rejected = rejection(text)
      expect(rejected.code).toBe('invalid_amount')
      expect(rejected.message).toBe('amount exceeds the limit of 1000000000000')
    }
    expect(rejection('-1000000000000.000001', signed).message).toBe(
      'amount exceeds the limit of 1000000000000',
    )
    expect(rejection('10.01', { ...usd, max: 10_000_000n }).message).toBe(
      'amount exceeds the limit of 10',
    )
  })

  it(`the empty string and strings over ${decimalStringLengthMax} characters`, () => {
    const tooLong = [
      `0.${'0'.repeat(decimalStringLengthMax - 2)}1`,
      '1'.repeat(decimalStringLengthMax + 1),
      '1'.repeat(10_000),
    ]
    for (const text of ['', ...tooLong]) {
      const rejected = rejection(text, { ...signed, decimals: 100, max: 10n ** 200n })
      expect(rejected.code).toBe('invalid_amount')
      expect(rejected.message).toBe(`amount must have 1 to ${decimalStringLengthMax} characters`)
    }
  })
})

describe('money.format', () => {
  it.each([
    [0n, '0'],
    [1n, '0.000001'],
    [100_000n, '0.1'],
    [1_000_000n, '1'],
    [100_000_000n, '100'],
    [1_250_500_000n, '1250.5'],
    [1_250_000_001n, '1250.000001'],
    [amountUnitsMax, '1000000000000'],
    [-1n, '-0.000001'],
    [-1_250_500_000n, '-1250.5'],
  ])('%s units are "%s" USD', (value, text) => {
    expect(money.format(value, usdDecimals)).toBe(text)
    expect(money.formatUsd(value)).toBe(text)
  })

  it('writes no exponent however large the value', () => {
    expect(money.format(10n ** 30n, 6)).toBe('1000000000000000000000000')
    expect(money.format(10n ** 30n + 1n, 0)).toBe(`1${'0'.repeat(29)}1`)
  })

  it('honours the scale it is given', () => {
    expect(money.format(7n, 0)).toBe('7')
    expect(money.format(125n, 2)).toBe('1.25')
    expect(money.format(120n, 2)).toBe('1.2')
    expect(money.format(5n, 3)).toBe('0.005')
  })
})

describe('money.min and money.max', () => {
  it('pick by value, bigint in and out', () => {
    expect(money.min(-3n, 2n)).toBe(-3n)
    expect(money.max(-3n, 2n)).toBe(2n)
    expect(money.min(5n, 5n)).toBe(5n)
    expect(money.max(amountUnitsMax, amountUnitsMax + 1n)).toBe(amountUnitsMax + 1n)
  })
})

/** Canonical USD strings: no leading zeros, no trailing fractional zeros, at most 6 decimals. */
const canonicalMagnitude = fc.oneof(
  fc.stringMatching(/^(0|[1-9][0-9]{0,11})(\.[0-9]{0,5}[1-9])?$/),
  fc.constant('1000000000000'),
)
const canonicalPositive = canonicalMagnitude.filter((text) => text !== '0')
const canonicalSigned = fc
  .tuple(fc.boolean(), canonicalMagnitude)
  .map(([negative, text]) => (negative && text !== '0' ? `-${text}` : text))
const unitsWithinLimit = fc.bigInt({ min: -amountUnitsMax, max: amountUnitsMax })

describe('money properties', () => {
  it('format(parse(s)) === s for every canonical positive string', () => {
    fc.assert(
      fc.property(canonicalPositive, (text) => {
        expect(money.formatUsd(units(text))).toBe(text)
      }),
      { numRuns: 2_000 },
    )
  })

  it('format(parse(s)) === s for every canonical signed string', () => {
    fc.assert(
      fc.property(canonicalSigned, (text) => {
        expect(money.formatUsd(units(text, signed))).toBe(text)
      }),
      { numRuns: 2_000 },
    )
  })

  it('parse(format(u)) === u for all units within the limit', () => {
    fc.assert(
      fc.property(unitsWithinLimit, (value) => {
        const parsed = money.parse(money.formatUsd(value), signed)
        expect(parsed).toEqual({ ok: true, value })
        if (value > 0n) expect(money.parse(money.formatUsd(value), usd)).toEqual(parsed)
      }),
      { numRuns: 2_000 },
    )
  })

  it('parse(format(u)) === u at every scale from 0 to 18 decimals', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 18 }), fc.bigInt(), (decimals, value) => {
        const options = { decimals, max: 10n ** 40n, allowZero: true, allowNegative: true }
        const text = money.format(value, decimals)
        if (text.length > decimalStringLengthMax) return
        expect(money.parse(text, options)).toEqual({ ok: true, value })
      }),
      { numRuns: 1_000 },
    )
  })

  it('every result is a bigint, never a float', () => {
    fc.assert(
      fc.property(fc.oneof(canonicalSigned, fc.string(), fc.double()), (value) => {
        const parsed = money.parse(value, signed)
        if (parsed.ok) expect(typeof parsed.value).toBe('bigint')
        else expect(parsed.code).toBe('invalid_amount')
      }),
      { numRuns: 2_000 },
    )
  })

  it('any JSON number is refused, integral or not', () => {
    fc.assert(
      fc.property(fc.oneof(fc.double(), fc.integer(), fc.maxSafeInteger()), (value) => {
        expect(money.parse(value, signed)).toMatchObject({ ok: false, code: 'invalid_amount' })
      }),
    )
  })

  it('a value within the limit is accepted unless it has more decimals than the scale', () => {
    fc.assert(
      fc.property(unitsWithinLimit, fc.integer({ min: 1, max: 6 }), (value, extraZeros) => {
        const text = money.formatUsd(value)
        const [, fraction = ''] = text.split('.')
        const padded = `${text}${fraction === '' ? '.' : ''}${'0'.repeat(extraZeros)}`
        const decimals = (padded.split('.')[1] ?? '').length
        const parsed = money.parse(padded, signed)
        if (decimals > usdDecimals) expect(parsed.ok).toBe(false)
        else expect(parsed).toEqual({ ok: true, value })
      }),
      { numRuns: 1_000 },
    )
  })
})
