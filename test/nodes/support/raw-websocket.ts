// Just enough of a WebSocket client (RFC 6455) over node:http to knock on a node's sync endpoint:
// Node 20 has no global WebSocket client and `fetch` cannot upgrade. Sends masked binary frames,
// reads unmasked ones, reports the close code.

import { randomBytes } from 'node:crypto'
import { request } from 'node:http'
import type { Socket } from 'node:net'

export type Upgrade =
  { status: number; body: string } | { status: 101; socket: RawWebSocket; body?: undefined }

export type RawWebSocket = {
  /** Binary messages received so far. */
  readonly messages: Uint8Array[]
  /** The close code the server sent, once it closed (1006 when the socket just ended). */
  readonly closed: Promise<{ code: number; reason: string }>
  sendBinary(payload: Uint8Array): void
  destroy(): void
}

/** GET `url` with an Upgrade: websocket; resolves with the refusal or the open socket. */
export function upgrade(url: string, timeoutMs = 10_000): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
      timeout: timeoutMs,
    })
    req.on('timeout', () => req.destroy(new Error(`upgrade to ${url} timed out`)))
    req.on('error', reject)
    req.on('response', (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (body += chunk))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    })
    req.on('upgrade', (response, socket, head) => {
      resolve({ status: response.statusCode as 101, socket: rawWebSocket(socket, head) })
    })
    req.end()
  })
}

function rawWebSocket(socket: Socket, head: Buffer): RawWebSocket {
  const messages: Uint8Array[] = []
  let buffered = Buffer.from(head)
  let resolveClosed!: (close: { code: number; reason: string }) => void
  const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r))
  let fragments: Buffer[] = []

  const parse = () => {
    for (;;) {
      if (buffered.length < 2) return
      const fin = (buffered[0]! & 0x80) !== 0
      const opcode = buffered[0]! & 0x0f
      let length = buffered[1]! & 0x7f
      let offset = 2
      if (length === 126) {
        if (buffered.length < 4) return
        length = buffered.readUInt16BE(2)
        offset = 4
      } else if (length === 127) {
        if (buffered.length < 10) return
        length = Number(buffered.readBigUInt64BE(2))
        offset = 10
      }
      if (buffered.length < offset + length) return
      const payload = buffered.subarray(offset, offset + length)
      buffered = buffered.subarray(offset + length)
      if (opcode === 0x8) {
        resolveClosed({
          code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005,
          reason: payload.subarray(2).toString('utf8'),
        })
        socket.destroy()
        return
      }
      if (opcode === 0x2 || opcode === 0x0) {
        fragments.push(Buffer.from(payload))
        if (fin) {
          messages.push(new Uint8Array(Buffer.concat(fragments)))
          fragments = []
        }
      }
      if (opcode === 0x9) writeFrame(socket, 0xa, payload) // ping: pong
    }
  }
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    parse()
  })
  socket.on('close', () => resolveClosed({ code: 1006, reason: 'socket closed' }))
  socket.on('error', () => undefined)
  parse()

  return {
    messages,
    closed,
    sendBinary: (payload) => writeFrame(socket, 0x2, payload),
    destroy: () => socket.destroy(),
  }
}

/** One final, masked frame (clients must mask). */
function writeFrame(socket: Socket, opcode: number, payload: Uint8Array): void {
  const mask = randomBytes(4)
  const length = payload.byteLength
  const header =
    length < 126
      ? Buffer.from([0x80 | opcode, 0x80 | length])
      : length < 65_536
        ? Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff])
        : (() => {
            const h = Buffer.alloc(10)
            h[0] = 0x80 | opcode
            h[1] = 0x80 | 127
            h.writeBigUInt64BE(BigInt(length), 2)
            return h
          })()
  const masked = Buffer.alloc(length)
  for (let i = 0; i < length; i++) masked[i] = payload[i]! ^ mask[i % 4]!
  socket.write(Buffer.concat([header, mask, masked]))
}
