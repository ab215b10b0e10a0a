// A link's outbound backlog is bounded. A peer that keeps heartbeating but never acknowledges what
// it is sent (a one-way link, a stalled process) would have the runtime buffer every update for
// it; past linkUnacknowledgedMax updates the node closes that link (1013) instead. Writes keep
// being acknowledged and the well-behaved peer stays converged.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { linkUnacknowledgedMax } from '../../src/constants'
import * as protocol from '../../src/mesh/protocol'
import * as meshToken from '../../src/mesh/token'
import { syncPath } from '../../src/mesh/transport'
import { shardOf } from '../../src/state/shard-of'
import { bulkDeposits, startMesh, waitFor, type Mesh } from './support/mesh'
import { upgrade } from './support/raw-websocket'

const shards = 2

describe('a peer that stops acknowledging', () => {
  let mesh: Mesh

  beforeAll(async () => {
    mesh = await startMesh({ ids: ['a', 'b'], shards })
    await mesh.client('a').fundedAccount('alice', '0', ['read'])
    await mesh.converge('accounts')
  })

  afterEach((context) => {
    if (context.task.result?.state === 'fail') console.log(`node output:\n${mesh?.output()}`)
  })

  afterAll(async () => {
    await mesh?.stop()
  })

  it('has its link closed once its backlog passes the bound, and nothing else changes', async () => {
    const doc = `shard/${shardOf('alice', shards)}`
    const token = await meshToken.issue(
      mesh.meshSecret,
      { role: 'node', id: 'z' },
      doc,
      Date.now() + 60_000,
    )
    const answer = await upgrade(
      `${mesh.node('a').url()}${syncPath(doc)}?token=${encodeURIComponent(token)}`,
    )
    if (answer.body !== undefined) throw new Error(`expected an open socket: ${answer.body}`)
    const silent = answer.socket
    // Alive by heartbeat, never a Held.
    const beating = setInterval(() => silent.sendBinary(protocol.writeHeartbeat(Date.now())), 500)
    try {
      const writes = await bulkDeposits(
        mesh.client('a'),
        'alice',
        linkUnacknowledgedMax + 50,
        'backlog',
        16,
      )
      expect(writes.filter((write) => write.outcome !== 'acked')).toEqual([])
      const close = await waitFor('the silent peer is cut off', async () =>
        Promise.race([silent.closed, new Promise<undefined>((r) => setTimeout(r, 100))]),
      )
      expect(close.code).toBe(1013)
      const updates = silent.messages.filter((m) => protocol.readFrame(m).type === 'update')
      expect(updates.length).toBe(linkUnacknowledgedMax)
    } finally {
      clearInterval(beating)
      silent.destroy()
    }
    await mesh.converge('after the backlog')
  })
})
