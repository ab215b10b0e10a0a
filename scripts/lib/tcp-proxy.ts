// A TCP proxy for one direction of one link (the dialling side is given the proxy's address): the
// partition harness of design.md §5 on real sockets, never a flag in a node. Used by the node tests
// (one proxy per directed mesh link) and by the chaos harness (mesh links and client ports).
//   cut()        resets every open connection and refuses new ones (accept, then reset)
//   blackhole()  drops every byte of open and new connections, both ways, and keeps them open:
//                no reset, no close reaches either end (a middlebox that lost its flow state)
//   heal()       forwards new connections again and lifts every impairment; blackholed
//                connections stay dead, as they would
//   impair()     while forwarding: delay (and jitter) every chunk in order, drop one direction's
//                bytes (a one-way link), reset a connection at random (a lossy path that makes
//                TCP give up), or, on an upgraded WebSocket connection, duplicate whole data
//                frames or swap one with the next (TCP itself never reorders or duplicates bytes,
//                so frames are the unit a middlebox or a buggy relay could).

import { createServer, connect, type Server, type Socket } from 'node:net'

export type ProxyMode = 'forward' | 'cut' | 'blackhole'

/** 'up': bytes from the dialling side to the target; 'down': the target's bytes back. */
export type Direction = 'up' | 'down'

export type Impairment = {
  /** Added to every chunk, in each direction. */
  delayMs?: number
  /** Up to this much more, uniformly; chunks never overtake each other. */
  jitterMs?: number
  /** Bytes of this direction are dropped while the connection stays open (one-way link). */
  drop?: Direction
  /** Chance per chunk that the connection is reset (both ends see a reset). */
  resetChance?: number
  /** WebSocket connections: chance that a data frame is sent twice. */
  duplicateChance?: number
  /** WebSocket connections: chance that a data frame is held back and sent after the next. */
  reorderChance?: number
}

export type ProxyStats = {
  forwarded: number
  refused: number
  swallowed: number
  /** Connections reset by `resetChance`. */
  reset: number
  /** WebSocket data frames sent twice, or swapped with the next. */
  duplicated: number
  reordered: number
  open: number
}

export type TcpProxy = {
  /** Which link this proxy carries, e.g. `a->c` (a's connections to c). */
  readonly name: string
  /** `http://127.0.0.1:<port>`: the address the dialling side is given. */
  readonly url: string
  readonly port: number
  readonly mode: ProxyMode
  readonly impairment: Impairment
  /** Connections forwarded, refused while cut, swallowed while blackholed; sockets open now. */
  stats(): ProxyStats
  cut(): void
  blackhole(): void
  impair(impairment: Impairment): void
  heal(): void
  close(): Promise<void>
}

type Connection = { client: Socket; upstream: Socket | undefined; dead: boolean }

export type ProxyOptions = {
  /** Source of randomness for jitter and resets (a seeded one makes a run replayable). */
  random?: () => number
}

/** Listens on a free port of 127.0.0.1 and forwards to `127.0.0.1:<targetPort>`. */
export async function startTcpProxy(
  name: string,
  targetPort: number,
  options: ProxyOptions = {},
): Promise<TcpProxy> {
  const random = options.random ?? Math.random
  const connections = new Set<Connection>()
  let mode: ProxyMode = 'forward'
  let impairment: Impairment = {}
  const counts = { forwarded: 0, refused: 0, swallowed: 0, reset: 0, duplicated: 0, reordered: 0 }

  const reset = (socket: Socket | undefined) => {
    if (socket === undefined || socket.destroyed) return
    try {
      socket.resetAndDestroy()
    } catch {
      socket.destroy()
    }
  }
  const drop = (connection: Connection) => {
    connections.delete(connection)
    reset(connection.client)
    reset(connection.upstream)
  }
  /** From now on nothing passes and no end learns of the other's close. */
  const kill = (connection: Connection) => {
    connection.dead = true
  }

  /** Relays one direction chunk by chunk, applying the impairment in force at each chunk. */
  const relay = (connection: Connection, from: Socket, to: Socket, direction: Direction) => {
    // Delayed chunks wait in one queue drained by one timer: timers alone may fire out of order.
    const queue: { at: number; write: () => void }[] = []
    let timer: ReturnType<typeof setTimeout> | undefined
    const drain = () => {
      timer = undefined
      while (queue.length > 0 && queue[0]!.at <= Date.now()) queue.shift()!.write()
      if (queue.length > 0) timer = setTimeout(drain, queue[0]!.at - Date.now()).unref()
    }
    const deliver = (write: () => void) => {
      const delay = impairment.delayMs ?? 0
      const jitter = impairment.jitterMs ?? 0
      if (delay === 0 && jitter === 0 && queue.length === 0) return write()
      const last = queue.at(-1)?.at ?? 0
      queue.push({ at: Math.max(Date.now() + delay + Math.floor(random() * jitter), last), write })
      timer ??= setTimeout(drain, queue[0]!.at - Date.now()).unref()
    }
    const send = (bytes: Buffer) =>
      deliver(() => {
        if (!connection.dead && !to.destroyed) to.write(bytes)
      })
    const splitter = webSocketSplitter(direction)
    let held: Buffer | undefined
    const flushHeld = () => {
      if (held !== undefined) send(held)
      held = undefined
    }
    from.on('data', (chunk: Buffer) => {
      if (connection.dead || impairment.drop === direction) return
      if (impairment.resetChance !== undefined && random() < impairment.resetChance) {
        counts.reset++
        return drop(connection)
      }
      for (const unit of splitter(chunk)) {
        if (!unit.data) {
          flushHeld()
          send(unit.bytes)
        } else if (random() < (impairment.duplicateChance ?? 0)) {
          counts.duplicated++
          send(unit.bytes)
          send(unit.bytes)
          flushHeld()
        } else if (held === undefined && random() < (impairment.reorderChance ?? 0)) {
          counts.reordered++
          held = unit.bytes
          // A frame with nothing after it is not held for ever, only swapped with what follows.
          setTimeout(flushHeld, 50).unref()
        } else {
          send(unit.bytes)
          flushHeld()
        }
      }
    })
    from.on('end', () => {
      if (!connection.dead) deliver(() => to.end())
    })
  }

  const server: Server = createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    client.on('error', () => undefined)
    if (mode === 'cut') {
      counts.refused++
      reset(client)
      return
    }
    const connection: Connection = { client, upstream: undefined, dead: false }
    connections.add(connection)
    // Live, either end closing takes the other down; dead, each end only learns of its own.
    const closed = () => {
      if (!connection.dead) return drop(connection)
      if (client.destroyed && (connection.upstream?.destroyed ?? true))
        connections.delete(connection)
    }
    client.on('close', closed)
    if (mode === 'blackhole') {
      counts.swallowed++
      kill(connection)
      client.on('data', () => undefined)
      return
    }
    counts.forwarded++
    const upstream = connect({
      port: targetPort,
      host: '127.0.0.1',
      noDelay: true,
      allowHalfOpen: true,
    })
    connection.upstream = upstream
    upstream.on('error', () => undefined)
    upstream.on('close', closed)
    relay(connection, client, upstream, 'up')
    relay(connection, upstream, client, 'down')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')

  return {
    name,
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    get mode() {
      return mode
    },
    get impairment() {
      return impairment
    },
    stats: () => ({ ...counts, open: [...connections].filter((c) => !c.dead).length }),
    cut() {
      mode = 'cut'
      for (const connection of [...connections]) drop(connection)
    },
    blackhole() {
      mode = 'blackhole'
      for (const connection of connections) kill(connection)
    },
    impair(next) {
      impairment = { ...next }
    },
    heal() {
      mode = 'forward'
      impairment = {}
    },
    async close() {
      mode = 'cut'
      for (const connection of [...connections]) drop(connection)
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

type Unit = { bytes: Buffer; data: boolean }

/** An HTTP head longer than this is not waited for: its bytes pass through as they come. */
const headBytesMax = 64 * 1024

/**
 * Splits one direction of a connection into units: the HTTP head, then (once the connection is a
 * WebSocket: the request asked to upgrade, the answer was 101) whole frames, `data` for a complete
 * uncompressed text or binary message; anything else passes as it comes.
 */
function webSocketSplitter(direction: Direction): (chunk: Buffer) => Unit[] {
  let state: 'head' | 'frames' | 'raw' = 'head'
  let buffered: Buffer = Buffer.alloc(0)
  return (chunk) => {
    if (state === 'raw') return [{ bytes: chunk, data: false }]
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    // Not HTTP, or a head that never ends: pass the bytes through untouched.
    const http = /^(?:[A-Z]+ |HTTP\/)/.test(buffered.subarray(0, 8).toString('latin1'))
    if (state === 'head' && (!http || buffered.length > headBytesMax)) {
      state = 'raw'
      const bytes = buffered
      buffered = Buffer.alloc(0)
      return [{ bytes, data: false }]
    }
    const units: Unit[] = []
    if (state === 'head') {
      const end = buffered.indexOf('\r\n\r\n')
      if (end === -1) return units
      const head = buffered.subarray(0, end + 4)
      const text = head.toString('latin1')
      const upgraded =
        direction === 'up' ? /\r\nupgrade: *websocket/i.test(text) : /^HTTP\/1\.1 101/.test(text)
      state = upgraded ? 'frames' : 'raw'
      units.push({ bytes: head, data: false })
      buffered = buffered.subarray(end + 4)
      if (state === 'raw') {
        if (buffered.length > 0) units.push({ bytes: buffered, data: false })
        buffered = Buffer.alloc(0)
        return units
      }
    }
    for (;;) {
      const length = frameLength(buffered)
      if (length === undefined || buffered.length < length) return units
      const first = buffered[0]!
      const opcode = first & 0x0f
      const data = (first & 0x80) !== 0 && (first & 0x40) === 0 && (opcode === 1 || opcode === 2)
      units.push({ bytes: buffered.subarray(0, length), data })
      buffered = buffered.subarray(length)
    }
  }
}

/** Bytes of the WebSocket frame at the start of `bytes`, or undefined until its header is in. */
function frameLength(bytes: Buffer): number | undefined {
  if (bytes.length < 2) return undefined
  const masked = (bytes[1]! & 0x80) !== 0 ? 4 : 0
  const short = bytes[1]! & 0x7f
  if (short < 126) return 2 + masked + short
  if (short === 126) return bytes.length < 4 ? undefined : 4 + masked + bytes.readUInt16BE(2)
  return bytes.length < 10 ? undefined : 10 + masked + Number(bytes.readBigUInt64BE(2))
}

/**
 * Ports held open together, so that nothing else (a proxy listening on port 0) is handed one of
 * them before the nodes that will serve on them start; `release` frees them for those nodes.
 * With `below`, ports are drawn under it instead of from the kernel's ephemeral range (32768 and
 * up on Linux), where any outgoing connection of any process may take a port a node released
 * for a moment (a restart) or had not bound yet.
 */
export async function reservePorts(
  count: number,
  options: { below?: number; random?: () => number } = {},
): Promise<{ ports: number[]; release(): Promise<void> }> {
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const server = createServer()
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve(server))
    })
  const servers: Server[] = []
  const random = options.random ?? Math.random
  for (let attempt = 0; servers.length < count; attempt++) {
    if (options.below === undefined) {
      servers.push(await listen(0))
      continue
    }
    if (attempt > 100 * count) throw new Error(`no ${count} free ports below ${options.below}`)
    const low = Math.floor(options.below / 2)
    const port = low + Math.floor(random() * (options.below - low))
    const server = await listen(port).catch(() => undefined)
    if (server !== undefined) servers.push(server)
  }
  const ports = servers.map((server) => {
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('no free port')
    return address.port
  })
  const release = async () => {
    await Promise.all(
      servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    )
  }
  return { ports, release }
}
