// The wire types of the API, derived from the zod schemas the node validates with and documents in
// its OpenAPI document. Type-only imports: no server code reaches a client bundle.

import type { z } from 'zod'
import type { BreakerBody, BreakerEntry, BreakerState } from '../api/routes/admin-breakers'
import type { ShardStatus } from '../api/routes/admin-shards'
import type { MeshStatus as MeshStatusSchema } from '../api/routes/mesh'
import type * as schemas from '../api/schemas'
import type * as trading from '../api/trading-schemas'

export type Reflects = z.output<typeof schemas.Reflects>
export type Durability = 'local' | 'quorum'
export type Scope = z.output<typeof schemas.CreateKeyBody>['scopes'][number]
export type RateLimit = z.output<typeof schemas.RateLimit>

export type AccountRecord = z.output<typeof schemas.Account>
export type CreatedKey = z.output<typeof schemas.CreatedKey>
export type RotatedKey = z.output<typeof schemas.RotatedKey>
export type Revocation = z.output<typeof schemas.Revocation>
export type Deposit = z.output<typeof schemas.Deposit>
export type Withdrawal = z.output<typeof schemas.Withdrawal>
export type AccountSummary = z.output<typeof schemas.AccountSummary>
export type AccountProof = z.output<typeof schemas.AccountProof>
export type LedgerPage = z.output<typeof schemas.LedgerPage>

export type Instrument = z.output<typeof trading.Instrument>
export type InstrumentList = z.output<typeof trading.InstrumentList>
export type Book = z.output<typeof trading.Book>
export type Mark = z.output<typeof trading.MarkReply>
export type Order = z.output<typeof trading.Order>
export type OrderReply = z.output<typeof trading.OrderReply>
export type OrderList = z.output<typeof trading.OrderList>
export type CancelRequestedReply = z.output<typeof trading.CancelRequestedReply>
export type CancelAllReply = z.output<typeof trading.CancelAllReply>
export type PositionList = z.output<typeof trading.PositionList>
export type FillsPage = z.output<typeof trading.FillsPage>

export type BreakerRequest = z.input<typeof BreakerBody>
export type Breaker = z.output<typeof BreakerEntry>
export type Breakers = z.output<typeof BreakerState>
export type ShardStatus = z.output<typeof ShardStatus>
export type MeshStatus = z.output<typeof MeshStatusSchema>

/** Amounts are decimal strings on the wire (the node parses them exactly). */
export type DepositRequest = {
  accountId: string
  amount: string
  /** The deposit's request id; the client makes one when it is not given. */
  depositId?: string
  durability?: Durability
}

export type WithdrawalRequest = {
  amount: string
  /** The withdrawal's request id; the client makes one when it is not given. */
  withdrawalId?: string
  durability?: Durability
}

export type OrderRequest = Omit<z.input<typeof trading.OrderBody>, 'clientOrderId'> & {
  /** The order's request id; the client makes one when it is not given. */
  clientOrderId?: string
}

export type KeyRequest = z.input<typeof schemas.CreateKeyBody>
export type MarkRequest = z.input<typeof trading.MarkBody>
export type PageRequest = { cursor?: string; limit?: number }
