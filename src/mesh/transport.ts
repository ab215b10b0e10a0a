// The one seam between replication and the network. Locally a peer is a URL and a link is a
// WebSocket opened with fetch's Upgrade; deployed on Cloudflare a peer can be a Durable Object stub
// (same `fetch` shape), so replication never knows which it has.

export type Dialer = (url: string, init: RequestInit) => Promise<Response>

/** The path of a document's sync endpoint on any node, for peers and y-websocket followers. */
export const syncPath = (doc: string): string => `/v1/mesh/sync/${doc}`

/** The path by which a node tells a peer that its replica of a document is up. */
export const helloPath = (doc: string): string => `/v1/mesh/hello/${doc}`

/** Calls `fetcher` on `url`, failing if the peer has not answered within `timeoutMs`. */
async function call(
  fetcher: Dialer,
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<Response> {
  const controller = new AbortController()
  const timer = setTimeout(
    () =>
      controller.abort(new Error(`${new URL(url).origin} did not answer within ${timeoutMs} ms`)),
    timeoutMs,
  )
  try {
    return await fetcher(url, { ...init, signal: controller.signal })
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Tells the peer at `base` that this node's replica of `doc` is up, presenting `token`, so the
 * peer's replica dials it now instead of on its backoff (a restarted or wiped node).
 */
export async function hello(
  fetcher: Dialer,
  base: string,
  doc: string,
  token: string,
  timeoutMs: number,
): Promise<void> {
  const url = `${base}${helloPath(doc)}?token=${encodeURIComponent(token)}`
  const response = await call(fetcher, url, { method: 'POST' }, timeoutMs)
  await response.body?.cancel()
  if (response.status !== 204) throw new Error(`peer answered ${response.status} to hello`)
}

/**
 * Opens a WebSocket to `base` + the document's sync path, presenting `token`. A peer that has not
 * answered within `timeoutMs` fails the dial, so the caller redials instead of waiting forever on a
 * connection a network fault swallowed.
 */
export async function dial(
  fetcher: Dialer,
  base: string,
  doc: string,
  token: string,
  timeoutMs: number,
): Promise<WebSocket> {
  const url = `${base}${syncPath(doc)}?token=${encodeURIComponent(token)}`
  const response = await call(fetcher, url, { headers: { Upgrade: 'websocket' } }, timeoutMs)
  const socket = response.webSocket
  if (response.status !== 101 || socket === null) {
    throw new Error(`peer answered ${response.status} instead of a WebSocket`)
  }
  socket.accept()
  return socket
}
