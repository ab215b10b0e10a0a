// The progress display of long operations: one line rewritten in place on a terminal, with other
// output printed above it; plain lines anywhere else.

import { describe, expect, it } from 'vitest'
import { progressDisplay } from '../../scripts/lib/progress'

const streamOf = (isTTY: boolean) => {
  const written: string[] = []
  const stream = { isTTY, columns: 20, write: (text: string) => written.push(text) > 0 }
  return { stream: stream as unknown as NodeJS.WriteStream, written }
}

describe('progressDisplay', () => {
  it('rewrites one line on a terminal and keeps printed lines above it', () => {
    const { stream, written } = streamOf(true)
    const display = progressDisplay(stream)
    display.update('1/3 shard/0')
    display.update('2/3 shard/1 and a long tail cut at the width')
    display.print('a line that stays')
    display.done()
    expect(written).toEqual([
      '\r\x1b[2K1/3 shard/0',
      '\r\x1b[2K2/3 shard/1 and a l',
      '\r\x1b[2K',
      'a line that stays\n',
      '2/3 shard/1 and a l',
      '\n',
    ])
  })

  it('writes plain lines elsewhere', () => {
    const { stream, written } = streamOf(false)
    const display = progressDisplay(stream)
    display.update('1/2 shard/0')
    display.print('a line')
    display.update('2/2 shard/1')
    display.done()
    expect(written.join('')).toBe('1/2 shard/0\na line\n2/2 shard/1\n')
  })
})
