// The harness's TCP proxy on loopback sockets: it forwards both ways, keeps byte order under delay
// and jitter, passes one direction only when told, and cuts and heals.

import { createServer, connect, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { startTcpProxy, type TcpProxy } from '../../scripts/lib/tcp-proxy'

/** An echo server that upper-cases what it gets. */
async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined) // the proxy resets it when the test closes
    socket.on('data', (d) => socket.write(d.toString().toUpperCase()))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { server, port: address.port }
}

const dial = (proxy: TcpProxy) =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect({ port: proxy.port, host: '127.0.0.1' }, () => resolve(socket))
    socket.on('error', reject)
  })

/** Everything the socket receives within `ms`. */
const received = (socket: Socket, ms: number) =>
  new Promise<string>((resolve) => {
    let text = ''
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')))
    setTimeout(() => resolve(text), ms)
  })

describe('tcp proxy', () => {
  const opened: { close(): unknown }[] = []
  afterEach(async () => {
    for (const item of opened.splice(0)) await item.close()
  })

  it('forwards in order under delay and jitter', async () => {
    const { server, port } = await echoServer()
    const proxy = await startTcpProxy('t', port)
    opened.push(proxy, server)
    proxy.impair({ delayMs: 20, jitterMs: 30 })
    const socket = await dial(proxy)
    const answer = received(socket, 600)
    for (const word of ['a', 'b', 'c', 'd', 'e', 'f']) {
      socket.write(word)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    expect(await answer).toBe('ABCDEF')
    socket.destroy()
  })

  it('drops one direction while the connection stays open, then heals', async () => {
    const { server, port } = await echoServer()
    const proxy = await startTcpProxy('t', port)
    opened.push(proxy, server)
    const socket = await dial(proxy)
    proxy.impair({ drop: 'down' })
    const silent = received(socket, 200)
    socket.write('x')
    expect(await silent).toBe('')
    expect(socket.destroyed).toBe(false)
    proxy.heal()
    const heard = received(socket, 200)
    socket.write('y')
    expect(await heard).toBe('Y')
    socket.destroy()
  })

  it('duplicates and swaps whole WebSocket frames, never splitting one', async () => {
    // A server that answers the upgrade and keeps every byte it gets after it.
    let got = Buffer.alloc(0)
    const server = createServer((socket) => {
      socket.on('error', () => undefined)
      socket.once('data', () => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n')
        socket.on('data', (d: Buffer) => (got = Buffer.concat([got, d])))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    const proxy = await startTcpProxy('t', port, { random: () => 0 })
    opened.push(proxy, server)
    const socket = await dial(proxy)
    socket.write('GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n')
    await received(socket, 100)
    // Masked binary frames of one byte each (mask 0): 0x82 0x81 0 0 0 0 <byte>.
    const frame = (byte: number) => Buffer.from([0x82, 0x81, 0, 0, 0, 0, byte])
    const payloads = () => [...got].filter((_, i) => i % 7 === 6)
    const settle = () => new Promise((resolve) => setTimeout(resolve, 200))
    proxy.impair({ duplicateChance: 1 })
    socket.write(Buffer.concat([frame(1), frame(2).subarray(0, 3)]))
    socket.write(frame(2).subarray(3))
    await settle()
    expect(payloads()).toEqual([1, 1, 2, 2])
    got = Buffer.alloc(0)
    proxy.impair({ reorderChance: 1 })
    socket.write(Buffer.concat([frame(1), frame(2), frame(3), frame(4)]))
    await settle()
    expect(payloads()).toEqual([2, 1, 4, 3])
    expect(proxy.stats()).toMatchObject({ duplicated: 2, reordered: 2 })
    socket.destroy()
  })

  it('refuses while cut and forwards new connections after the heal', async () => {
    const { server, port } = await echoServer()
    const proxy = await startTcpProxy('t', port)
    opened.push(proxy, server)
    proxy.cut()
    const refused = await dial(proxy).then(
      (socket) => new Promise<boolean>((resolve) => socket.on('close', () => resolve(true))),
      () => true,
    )
    expect(refused).toBe(true)
    proxy.heal()
    const socket = await dial(proxy)
    const answer = received(socket, 200)
    socket.write('z')
    expect(await answer).toBe('Z')
    expect(proxy.stats()).toMatchObject({ refused: 1, forwarded: 1 })
    socket.destroy()
  })
})
