// The clearmesh client SDK: a typed client for Node and browsers (fetch and Web Crypto only).
//
//   const client = createClient({ nodes: ['http://127.0.0.1:8787', 'http://127.0.0.1:8788'],
//                                 apiKey: { keyId, secret } })
//   const { value: order } = await client.trading.placeOrder({ instrument: 'BTC-PERP',
//     side: 'buy', type: 'limit', price: '60000', size: '0.01' })
//
// Every call returns an `Answer` (value, node, request id, replayed) or throws a ClearmeshError.

import type { ApiKey } from './auth'
import { adminOperations, type AdminOperations } from './admin'
import {
  publicOperations,
  tradingOperations,
  type PublicOperations,
  type TradingOperations,
} from './trading'
import { createTransport, type Transport, type TransportOptions } from './transport'

export type ClientOptions = TransportOptions & {
  /** The operator's admin token: enables `admin`. */
  adminToken?: string
  /** An API key: enables `trading`. */
  apiKey?: ApiKey
}

export type Client<O extends ClientOptions = ClientOptions> = {
  transport: Transport
  public: PublicOperations
  admin: O extends { adminToken: string } ? AdminOperations : undefined
  trading: O extends { apiKey: ApiKey } ? TradingOperations : undefined
}

export function createClient<O extends ClientOptions>(options: O): Client<O> {
  const transport = createTransport(options)
  return {
    transport,
    public: publicOperations(transport),
    admin: (options.adminToken === undefined
      ? undefined
      : adminOperations(transport, options.adminToken)) as Client<O>['admin'],
    trading: (options.apiKey === undefined
      ? undefined
      : tradingOperations(transport, options.apiKey)) as Client<O>['trading'],
  }
}

export { adminOperations, publicOperations, tradingOperations, createTransport }
export { ClearmeshError, type ExecutionStatus } from './errors'
export { staleness, type Staleness } from './reads'
export type { VerifiedProof } from '../state/state-proof'
export type {
  AdminOperations,
  ApiKey,
  PublicOperations,
  TradingOperations,
  Transport,
  TransportOptions,
}
export type { Answer, Call, Fetch } from './transport'
export type * from './wire'
