// The progress display of long operations: one line rewritten in place on a terminal, with other
// output printed above it; plain lines anywhere else.

import { describe, expect, it } from 'vitest'
import { progressDisplay } from '../../scripts/lib/progress'

/** What the display writes for two updates, a line that stays, and the end. */
function written(isTTY: boolean): string[] {
  const writes: string[] = []
  const stream = { isTTY, columns: 20, write: (text: string) => writes.push(text) > 0 }
  const display = progressDisplay(stream as unknown as NodeJS.WriteStream)
  display.update('1/3 shard/0')
  display.update('2/3 shard/1 and a long tail cut at the width')
  display.print('a line that stays')
  display.done()
  return writes
}

describe('progressDisplay', () => {
  it('rewrites one line on a terminal and keeps printed lines above it', () => {
    expect(written(true)).toEqual([
      '\r\x1b[2K1/3 shard/0',
      '\r\x1b[2K2/3 shard/1 and a l',
      '\r\x1b[2K',
      'a line that stays\n',
      '2/3 shard/1 and a l',
      '\n',
    ])
  })

  it('writes plain lines elsewhere', () => {
    expect(written(false).join('')).toBe(
      '1/3 shard/0\n2/3 shard/1 and a long tail cut at the width\na line that stays\n',
    )
  })
})
