// The one seam between replication and the network. Locally a peer is a URL and a link is a
// WebSocket opened with fetch's Upgrade; deployed on Cloudflare a peer can be a Durable Object stub
// (same `fetch` shape), so replication never knows which it has.

export type Dialer = (url: string, init: RequestInit) => Promise<Response>

/** The path of a document's sync endpoint on any node, for peers and y-websocket followers. */
export const syncPath = (doc: string): string => `/v1/mesh/sync/${doc}`

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
  const controller = new AbortController()
  const timer = setTimeout(
    () => controller.abort(new Error(`${base} did not answer within ${timeoutMs} ms`)),
    timeoutMs,
  )
  let response: Response
  try {
    response = await fetcher(url, { headers: { Upgrade: 'websocket' }, signal: controller.signal })
  } finally {
    clearTimeout(timer)
  }
  const socket = response.webSocket
  if (response.status !== 101 || socket === null) {
    throw new Error(`peer answered ${response.status} instead of a WebSocket`)
  }
  socket.accept()
  return socket
}
