// The mesh speaks the standard protocol: a stock y-websocket WebsocketProvider (the client every
// Yjs application uses, with `ws` as its WebSocket in Node) given a follower's mesh token follows
// a node's shard, catches up and then receives live writes, reaching the node's very content
// digest. One without a valid token is refused and gets nothing.

import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import * as meshToken from '../../src/mesh/token'
import { syncPath } from '../../src/mesh/transport'
import { contentDigest } from '../../src/state/digest'
import { transfers } from '../../src/state/shard-doc'
import { shardOf } from '../../src/state/shard-of'
import { startMesh, waitFor, type Mesh } from './support/mesh'

const shards = 4
type ProviderOptions = NonNullable<ConstructorParameters<typeof WebsocketProvider>[3]>

describe('a stock y-websocket client follows a shard', () => {
  let mesh: Mesh
  const providers: WebsocketProvider[] = []

  /** A provider for shard `shard` of node `id`, presenting `token` the only way y-websocket can. */
  const follow = (id: string, shard: number, token: string) => {
    const doc = new Y.Doc()
    const base = mesh.node(id).url().replace(/^http/, 'ws')
    const provider = new WebsocketProvider(`${base}${syncPath('shard')}`, String(shard), doc, {
      // `ws` is the WebSocket y-websocket documents for Node; the DOM and ws typings differ.
      WebSocketPolyfill: WebSocket as unknown as ProviderOptions['WebSocketPolyfill'],
      params: { token },
      disableBc: true,
    })
    providers.push(provider)
    return { doc, provider }
  }

  const deposit = (id: string, depositId: string) =>
    mesh.client(id).admin('POST', '/v1/admin/deposits', {
      depositId,
      accountId: 'alice',
      asset: 'USD',
      amount: '25',
      signedAt: Date.now(),
    })

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b'], shards })
    await mesh.client('a').fundedAccount('alice', '100', ['read'])
    await mesh.converge('accounts')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    for (const provider of providers) provider.destroy()
    await mesh?.stop()
  })

  it('catches up, stays connected, and receives live writes made at another node', async () => {
    const shard = shardOf('alice', shards)
    const token = await meshToken.issue(
      mesh.meshSecret,
      { role: 'follower', id: 'backup' },
      `shard/${shard}`,
      Date.now() + 60_000,
    )
    const { doc, provider } = follow('a', shard, token)
    const ids = () => [...transfers(doc).keys()]
    await waitFor('the follower holds the initial deposit', async () =>
      provider.synced && ids().some((id) => id.endsWith('initial-alice')) ? true : undefined,
    )

    // A write at b reaches a over the mesh, then the follower over its link.
    expect((await deposit('b', 'live-1')).status).toBe(201)
    await waitFor('the follower receives a live write', async () =>
      ids().some((id) => id.endsWith('live-1')) ? true : undefined,
    )
    await mesh.converge('after the live write')
    const nodeDigest = (await mesh.digests('a')).get(`shard/${shard}`)!.contentDigest
    expect(contentDigest(doc)).toBe(nodeDigest)

    // The follower's own reply to the node's SyncStep1 held nothing new: its link is still up.
    expect(provider.wsconnected).toBe(true)
    const links = (await mesh.digests('a')).get(`shard/${shard}`)!.links
    expect(links.some((link) => link.peer === 'backup' && link.state === 'up')).toBe(true)
  })

  it('gives nothing to a provider without a valid token', async () => {
    const shard = shardOf('alice', shards)
    const forged = await meshToken.issue(
      'not-the-mesh-secret-at-all',
      { role: 'follower', id: 'intruder' },
      `shard/${shard}`,
      Date.now() + 60_000,
    )
    const { doc, provider } = follow('a', shard, forged)
    const closes: number[] = []
    provider.on('connection-close', (event: CloseEvent | null) => {
      closes.push(event?.code ?? 0)
    })
    // y-websocket keeps redialling a refused upgrade: wait for a few refusals.
    await waitFor('the refused provider gave up a few times', async () =>
      closes.length >= 2 ? true : undefined,
    )
    expect(provider.synced).toBe(false)
    expect(transfers(doc).size).toBe(0)
    expect(doc.store.clients.size).toBe(0)
    provider.destroy()
  })
})
