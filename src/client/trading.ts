// A trading client's calls, signed with its API key: the account and its ledger, withdrawals,
// orders and cancels, positions and fills; and the public market data. Writes carry their request
// id in the body (withdrawalId, clientOrderId), made here when the caller gives none, so a retry
// on any node replays the first outcome; a cancel of a cancelled order replays too. Reads answer
// with what they reflect (`reflects`).

import { verifyAccountProof } from '../state/state-proof'
import type { ApiKey, Auth } from './auth'
import { ClearmeshError } from './errors'
import { newRequestId, queryOf, segment } from './request-id'
import type { Answer, Call, Transport } from './transport'
import type * as wire from './wire'

/** Every call here is idempotent: a read, or a write its request id names. */
const sender =
  (transport: Transport, auth: Auth) =>
  <T>(method: Call['method'], path: string, body?: unknown): Promise<Answer<T>> =>
    transport.send({ method, path, body, auth, idempotent: true })

export function tradingOperations(transport: Transport, key: ApiKey) {
  const send = sender(transport, { kind: 'signed', key })
  return {
    account: () => send<wire.AccountSummary>('GET', '/v1/account'),
    /**
     * The account's balance at the latest epoch checkpoint, checked against the nodes the client
     * trusts (node id → Ed25519 public key, learned from the operator): a proof whose path or
     * signatures do not check, or that fewer than a majority of them signed, throws
     * `invalid_proof`, so a node serving a balance the quorum did not sign is caught.
     */
    async provenBalance(trustedNodeKeys: Readonly<Record<string, string>>) {
      const answer = await send<wire.AccountProof>('GET', '/v1/account/proof')
      const checked = await verifyAccountProof(answer.value, trustedNodeKeys)
      if (checked.ok) return { ...answer, value: checked.value }
      throw new ClearmeshError(checked.code, checked.message, {
        status: answer.status,
        retryable: false,
        executionStatus: null,
        requestId: answer.requestId,
        node: answer.node,
        attempts: answer.attempts,
        details: { proof: answer.value },
      })
    },
    ledger: (page: wire.PageRequest = {}) =>
      send<wire.LedgerPage>('GET', `/v1/ledger${queryOf(page)}`),
    withdraw({ withdrawalId = newRequestId('wd'), ...rest }: wire.WithdrawalRequest) {
      const body = { withdrawalId, asset: 'USD', ...rest }
      return send<wire.Withdrawal>('POST', '/v1/withdrawals', body)
    },
    withdrawal: (withdrawalId: string) =>
      send<wire.Withdrawal>('GET', `/v1/withdrawals/${segment(withdrawalId)}`),
    placeOrder({ clientOrderId = newRequestId('ord'), ...rest }: wire.OrderRequest) {
      return send<wire.OrderReply>('POST', '/v1/orders', { clientOrderId, ...rest })
    },
    order: (orderId: string) => send<wire.OrderReply>('GET', `/v1/orders/${segment(orderId)}`),
    orderByClientId: (clientOrderId: string) =>
      send<wire.OrderList>('GET', `/v1/orders${queryOf({ clientOrderId })}`),
    openOrders: () => send<wire.OrderList>('GET', '/v1/orders?status=open'),
    /** 200 with the cancelled order, or 202 when the instrument's matcher has yet to see it. */
    cancelOrder: (orderId: string) =>
      send<wire.OrderReply | wire.CancelRequestedReply>('DELETE', `/v1/orders/${segment(orderId)}`),
    cancelAll: (instrument: string) =>
      send<wire.CancelAllReply>('DELETE', `/v1/orders${queryOf({ instrument })}`),
    positions: () => send<wire.PositionList>('GET', '/v1/positions'),
    fills: (page: wire.PageRequest = {}) =>
      send<wire.FillsPage>('GET', `/v1/fills${queryOf(page)}`),
  }
}

export type TradingOperations = ReturnType<typeof tradingOperations>

/** Public calls: no credentials. */
export function publicOperations(transport: Transport) {
  const send = sender(transport, { kind: 'none' })
  return {
    health: () => send<{ status: 'ok'; node: string; at: number }>('GET', '/health'),
    instruments: () => send<wire.InstrumentList>('GET', '/v1/instruments'),
    book: (instrument: string, levels?: number) =>
      send<wire.Book>('GET', `/v1/book/${segment(instrument)}${queryOf({ levels })}`),
  }
}

export type PublicOperations = ReturnType<typeof publicOperations>
