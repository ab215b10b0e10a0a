// Funding an account at a chosen node. Escrow (I4) gives spending rights to the node that records
// a deposit, so a test that withdraws or trades at a node funds the account there: once the
// account (and its key) has replicated to that node, the deposit is recorded on it.

import { expect } from 'vitest'
import type { ApiKey } from '../../support/api-client'
import { send, type Write } from './ledger-writes'
import { waitFor, type Mesh } from './mesh'

/** Records a deposit of `amount` at `node`; returns the acknowledged write. */
export async function depositAt(
  mesh: Mesh,
  node: string,
  account: { accountId: string; key: ApiKey },
  amount: string,
  requestId: string,
): Promise<Write> {
  await waitFor(`${account.accountId} on ${node}`, async () =>
    (await mesh.client(node).signed(account.key, 'GET', '/v1/account')).status === 200
      ? true
      : undefined,
  )
  const write: Write = { kind: 'deposit', accountId: account.accountId, requestId, amount }
  await send(mesh.client(node), account, write)
  expect(write.outcome, `${requestId} at ${node}: ${write.status}`).toBe('acked')
  return write
}

/**
 * Creates `accountId` at the first node with `amount` and deposits `amount` again at every other
 * node (escrow: a node withdraws within the rights its own deposits gave it). Returns the account
 * and the acknowledged deposits.
 */
export async function fundedEverywhere(
  mesh: Mesh,
  accountId: string,
  amount: string,
): Promise<{ account: { accountId: string; key: ApiKey }; writes: Write[] }> {
  const [first, ...others] = mesh.ids
  const key = await mesh.client(first!).fundedAccount(accountId, amount, ['read', 'withdraw'])
  const account = { accountId, key }
  const writes: Write[] = [
    { kind: 'deposit', accountId, requestId: `initial-${accountId}`, amount, outcome: 'acked' },
  ]
  for (const node of others) {
    writes.push(await depositAt(mesh, node, account, amount, `initial-${accountId}-${node}`))
  }
  return { account, writes }
}
