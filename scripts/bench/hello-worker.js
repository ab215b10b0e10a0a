// The ceiling of a node on this machine: the smallest Worker there is, served by the same
// miniflare (workerd) a clearmesh node runs on. Nothing but a fixed answer.
export default {
  fetch() {
    return new Response('hello world\n', { headers: { 'content-type': 'text/plain' } })
  },
}
