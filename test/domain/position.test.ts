import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as instruments from '../../src/domain/instrument'
import * as money from '../../src/domain/money'
import * as positions from '../../src/domain/position'
import { btc, price, size } from '../support/instruments'

const usd = (units: bigint) => money.formatUsd(units)
const trade = (position: positions.Position, side: 'buy' | 'sell', qty: string, at: string) => {
  const q = side === 'buy' ? size(qty) : -size(qty)
  return positions.applyFill(position, q, instruments.notional(btc, price(at), q))
}

describe('position', () => {
  it('opens, reduces, flips and marks a long as worked by hand', () => {
    const open = trade(positions.flat, 'buy', '0.5', '60000')
    expect(open.realized).toBe(0n)
    expect(usd(open.position.cost)).toBe('30000')
    const markValue = instruments.notional(btc, price('61000'), open.position.size)
    expect(usd(positions.unrealized(open.position, markValue))).toBe('500')

    const reduce = trade(open.position, 'sell', '0.2', '62000')
    expect(usd(reduce.realized)).toBe('400') // 0.2 × 62000 − 30000 × 0.2 / 0.5
    expect(instruments.formatSize(btc, reduce.position.size)).toBe('0.3')
    expect(usd(reduce.position.cost)).toBe('18000')

    const flip = trade(reduce.position, 'sell', '0.5', '59000')
    expect(usd(flip.realized)).toBe('-300') // 0.3 × 59000 − 18000
    expect(instruments.formatSize(btc, flip.position.size)).toBe('-0.2')
    expect(usd(flip.position.cost)).toBe('-11800')
    const shortMark = instruments.notional(btc, price('58000'), flip.position.size)
    expect(usd(positions.unrealized(flip.position, shortMark))).toBe('200')
    expect(
      instruments.formatPrice(btc, positions.averageEntry(flip.position, btc.notionalScale)!),
    ).toBe('59000')
  })

  it('leaves no cost behind when a position built at several prices closes', () => {
    let position = trade(positions.flat, 'buy', '0.001', '60000.5').position
    position = trade(position, 'buy', '0.002', '60001').position
    const partial = trade(position, 'sell', '0.001', '60000')
    const close = trade(partial.position, 'sell', '0.002', '60000')
    expect(close.position).toEqual(positions.flat)
    // Everything paid to open came back as realized PnL: −(0.5 × 0.001 + 1 × 0.002) = −0.0025.
    expect(usd(partial.realized + close.realized)).toBe('-0.0025')
  })

  it('realized plus unrealized PnL over all accounts is exactly zero (conservation)', () => {
    const fillArb = fc.record({
      buyer: fc.integer({ min: 0, max: 3 }),
      seller: fc.integer({ min: 0, max: 3 }),
      lots: fc.integer({ min: 1, max: 50 }),
      ticks: fc.integer({ min: 1, max: 200_000 }),
    })
    fc.assert(
      fc.property(
        fc.array(fillArb, { maxLength: 60 }),
        fc.integer({ min: 1, max: 200_000 }),
        (fills, markTicks) => {
          const book = Array.from({ length: 4 }, () => positions.flat)
          let realized = 0n
          for (const f of fills) {
            if (f.buyer === f.seller) continue
            const q = BigInt(f.lots) * btc.lot
            const value = instruments.notional(btc, BigInt(f.ticks) * btc.tick, q)
            const bought = positions.applyFill(book[f.buyer]!, q, value)
            const sold = positions.applyFill(book[f.seller]!, -q, -value)
            book[f.buyer] = bought.position
            book[f.seller] = sold.position
            realized += bought.realized + sold.realized
          }
          const mark = BigInt(markTicks) * btc.tick
          const unrealized = book.reduce(
            (sum, p) => sum + positions.unrealized(p, instruments.notional(btc, mark, p.size)),
            0n,
          )
          expect(book.reduce((sum, p) => sum + p.size, 0n)).toBe(0n)
          expect(realized + unrealized).toBe(0n)
        },
      ),
    )
  })
})
