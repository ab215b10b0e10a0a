// The operator's calls (admin token): accounts and keys, deposits, marks, circuit breakers, and
// the mesh's state. Deposits carry their request id (depositId) and the time of each attempt
// (signedAt); creating an account is named by its id; creating a key is not idempotent (each call
// makes a new key), so it is repeated only after a 503 that says it was not executed.

import type { Answer, Call, Transport } from './transport'
import { newRequestId, segment } from './request-id'
import type * as wire from './wire'

export function adminOperations(transport: Transport, adminToken: string) {
  const auth = { kind: 'admin' as const, token: adminToken }
  const send = <T>(
    method: Call['method'],
    path: string,
    body?: unknown,
    idempotent = true,
  ): Promise<Answer<T>> => transport.send({ method, path, body, auth, idempotent })
  return {
    /** Creates an account (an existing id replays); the node names it when `accountId` is absent. */
    createAccount: (accountId?: string) =>
      send<wire.AccountRecord>(
        'POST',
        '/v1/admin/accounts',
        accountId === undefined ? {} : { accountId },
        accountId !== undefined,
      ),
    /** A new API key of the account; its secret is in the answer, and only there. */
    createKey: (accountId: string, key: wire.KeyRequest) =>
      send<wire.CreatedKey>('POST', `/v1/admin/accounts/${segment(accountId)}/keys`, key, false),
    revokeKey: (keyId: string) =>
      send<wire.Revocation>('DELETE', `/v1/admin/keys/${segment(keyId)}`),
    /** Replaces a key; a retry replays the rotation (the same new key). */
    rotateKey: (keyId: string) =>
      send<wire.RotatedKey>('POST', `/v1/admin/keys/${segment(keyId)}/rotate`),
    deposit({ depositId = newRequestId('dep'), ...rest }: wire.DepositRequest) {
      return transport.send<wire.Deposit>({
        method: 'POST',
        path: '/v1/admin/deposits',
        body: { depositId, asset: 'USD', ...rest },
        timeField: 'signedAt',
        auth,
        idempotent: true,
      })
    },
    /** Records a mark price; the same mark sent twice is the same mark. */
    mark: (mark: wire.MarkRequest) => send<wire.Mark>('POST', '/v1/admin/marks', mark),
    /**
     * Halts, restricts or resumes (`mode: 'normal'`) an instrument, the venue or withdrawals. A
     * repeat records the same mode again, which changes nothing, so it is repeated like a read.
     */
    setBreaker: (breaker: wire.BreakerRequest) =>
      send<wire.Breaker>('POST', '/v1/admin/breakers', breaker),
    breakers: () => send<wire.Breakers>('GET', '/v1/admin/breakers'),
    shards: () => send<{ node: string; shards: wire.ShardStatus[] }>('GET', '/v1/admin/shards'),
    meshStatus: () => send<wire.MeshStatus>('GET', '/v1/mesh/status'),
  }
}

export type AdminOperations = ReturnType<typeof adminOperations>
