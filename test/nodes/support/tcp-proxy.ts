// A TCP proxy for one direction of one mesh link (the dialling node is given the proxy's address
// for its peer): the partition harness of design.md §5 on real sockets, never a flag in a node.
//   cut()        resets every open connection and refuses new ones (accept, then reset)
//   blackhole()  drops every byte of open and new connections, both ways, and keeps them open:
//                no reset, no close reaches either end (a middlebox that lost its flow state)
//   heal()       forwards new connections again; blackholed ones stay dead, as they would

import { createServer, connect, type Server, type Socket } from 'node:net'

export type ProxyMode = 'forward' | 'cut' | 'blackhole'

export type TcpProxy = {
  /** Which link this proxy carries, e.g. `a->c` (a's connections to c). */
  readonly name: string
  /** `http://127.0.0.1:<port>`: the address the dialling node is given for its peer. */
  readonly url: string
  readonly mode: ProxyMode
  /** Connections forwarded, refused while cut, swallowed while blackholed; sockets open now. */
  stats(): { forwarded: number; refused: number; swallowed: number; open: number }
  cut(): void
  blackhole(): void
  heal(): void
  close(): Promise<void>
}

type Connection = { client: Socket; upstream: Socket | undefined; dead: boolean }

/** Listens on a free port of 127.0.0.1 and forwards to `127.0.0.1:<targetPort>`. */
export async function startTcpProxy(name: string, targetPort: number): Promise<TcpProxy> {
  const connections = new Set<Connection>()
  let mode: ProxyMode = 'forward'
  let forwarded = 0
  let refused = 0
  let swallowed = 0

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
  const discard = () => undefined
  /** From now on nothing passes and no end learns of the other's close. */
  const kill = (connection: Connection) => {
    if (connection.dead) return
    connection.dead = true
    const { client, upstream } = connection
    if (upstream !== undefined) {
      client.unpipe(upstream)
      upstream.unpipe(client)
      upstream.on('data', discard)
    }
    client.on('data', discard)
  }

  const server: Server = createServer({ noDelay: true }, (client) => {
    client.on('error', () => undefined)
    if (mode === 'cut') {
      refused++
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
      swallowed++
      kill(connection)
      return
    }
    forwarded++
    const upstream = connect({ port: targetPort, host: '127.0.0.1', noDelay: true })
    connection.upstream = upstream
    upstream.on('error', () => undefined)
    upstream.on('close', closed)
    client.pipe(upstream)
    upstream.pipe(client)
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
    get mode() {
      return mode
    },
    stats: () => ({
      forwarded,
      refused,
      swallowed,
      open: [...connections].filter((c) => !c.dead).length,
    }),
    cut() {
      mode = 'cut'
      for (const connection of [...connections]) drop(connection)
    },
    blackhole() {
      mode = 'blackhole'
      for (const connection of connections) kill(connection)
    },
    heal() {
      mode = 'forward'
    },
    async close() {
      mode = 'cut'
      for (const connection of [...connections]) drop(connection)
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/**
 * Ports held open together, so that nothing else (a proxy listening on port 0) is handed one of
 * them before the nodes that will serve on them start; `release` frees them for those nodes.
 */
export async function reservePorts(
  count: number,
): Promise<{ ports: number[]; release(): Promise<void> }> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = createServer()
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, '127.0.0.1', () => resolve())
      })
      return server
    }),
  )
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
