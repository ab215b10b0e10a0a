// Wire schemas: the single source of request validation and of the OpenAPI document.
// Objects are strict (an unknown field is a 400), amounts are decimal strings.

import { z } from '@hono/zod-openapi'
import {
  idLengthMax,
  idPattern,
  keyRateMax,
  ledgerPageLimitDefault,
  ledgerPageLimitMax,
} from '../constants'
import * as money from '../domain/money'
import { scopes } from '../state/shard-doc'

export const Id = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(idLengthMax, `${what} must have at most ${idLengthMax} characters`)
    .regex(
      idPattern,
      `${what} may hold letters, digits, "_" and "-", starting with a letter or digit`,
    )
    .openapi({ example: `${what.replace(/[^a-z]/gi, '').toLowerCase()}-1` })

export const UsdAmount = z
  .unknown()
  .transform((value, context) => {
    const parsed = money.parse(value, money.usdTransfer)
    if (parsed.ok) return parsed.value
    context.addIssue({ code: 'custom', message: parsed.message, params: { code: parsed.code } })
    return z.NEVER
  })
  .openapi({
    type: 'string',
    example: '1250.50',
    description: 'positive decimal string, at most 6 decimals',
  })

export const Asset = z.literal('USD', { error: 'asset must be "USD"' })

/** How durable a write is before its answer: this node (`local`) or a majority of nodes. */
export const DurabilityField = z
  .enum(['local', 'quorum'], { error: 'durability is "local" or "quorum"' })
  .optional()
  .openapi({
    description:
      '`local`: persisted on the node that answers; `quorum`: on a majority of nodes, or 504 ' +
      'with executionStatus "unknown" if that does not happen in time (retry the same id)',
  })

export const Reflects = z
  .object({
    node: z.string(),
    shards: z.array(
      z.object({ shard: z.string(), stateVectorDigest: z.string(), pending: z.boolean() }),
    ),
    at: z.number().int().openapi({ description: 'node time of the read, ms since the epoch' }),
  })
  .openapi('Reflects', {
    description: 'what a response reflects: the node and the shard state it read',
  })

export const ErrorEnvelope = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      retryable: z.boolean(),
      requestId: z.string(),
    }),
  })
  .openapi('Error')

export const CreateAccountBody = z.strictObject({ accountId: Id('accountId').optional() })

export const Account = z
  .object({ accountId: z.string(), createdAt: z.number().int(), node: z.string() })
  .openapi('AccountRecord')

export const RateLimit = z
  .strictObject({
    perSecond: z.number().int().min(1).max(keyRateMax),
    burst: z.number().int().min(1).max(keyRateMax),
  })
  .openapi('RateLimit')

export const CreateKeyBody = z.strictObject({
  scopes: z
    .array(z.enum(scopes, { error: `scopes are ${scopes.join(', ')}` }))
    .min(1, 'a key needs at least one scope')
    .max(scopes.length),
  label: z.string().max(idLengthMax).optional(),
  rateLimit: RateLimit.optional().openapi({
    description: "this key's own rate limit on each node; the node's default when absent",
  }),
})

export const CreatedKey = z
  .object({
    keyId: z.string(),
    secret: z.string().openapi({ description: 'shown once; sign requests with it' }),
    accountId: z.string(),
    scopes: z.array(z.enum(scopes)),
    label: z.string(),
    rateLimit: RateLimit.nullable(),
    createdAt: z.number().int(),
  })
  .openapi('CreatedKey')

export const Revocation = z
  .object({
    keyId: z.string(),
    revokedAt: z.number().int(),
    node: z.string(),
    replacedBy: z.string().optional().openapi({ description: 'the key that replaced it' }),
  })
  .openapi('Revocation')

export const RotatedKey = CreatedKey.extend({
  replaces: z.string().openapi({ description: 'the key id revoked by this rotation' }),
}).openapi('RotatedKey')

export const DepositBody = z.strictObject({
  depositId: Id('depositId'),
  accountId: Id('accountId'),
  asset: Asset,
  amount: UsdAmount,
  signedAt: z
    .number({ error: 'signedAt must be milliseconds since the epoch' })
    .int('signedAt must be a whole number of milliseconds')
    .min(0, 'signedAt must be milliseconds since the epoch')
    .openapi({
      example: 1_767_225_600_000,
      description:
        "when the operator made this request (ms since the epoch): taken only within the node's " +
        "receive window (SIGNATURE_WINDOW_MS) of its clock, like a signed request's timestamp, " +
        "and signed with the deposit; a retry may carry a newer one (it is not part of the request's digest)",
    }),
  durability: DurabilityField,
})

export const Deposit = z
  .object({
    depositId: z.string(),
    accountId: z.string(),
    asset: z.literal('USD'),
    amount: z.string(),
    createdAt: z.number().int(),
    node: z.string(),
  })
  .openapi('Deposit')

export const WithdrawalBody = z.strictObject({
  withdrawalId: Id('withdrawalId').optional(),
  asset: Asset,
  amount: UsdAmount,
  durability: DurabilityField,
})

export const Withdrawal = z
  .object({
    withdrawalId: z.string(),
    accountId: z.string(),
    asset: z.literal('USD'),
    amount: z.string(),
    status: z.literal('approved'),
    createdAt: z.number().int(),
    node: z.string(),
    reflects: Reflects,
  })
  .openapi('Withdrawal')

export const AccountSummary = z
  .object({
    accountId: z.string(),
    createdAt: z.number().int(),
    collateral: z.string(),
    equity: z.string(),
    unrealizedPnl: z.string(),
    initialMargin: z.string(),
    maintenanceMargin: z.string(),
    availableBalance: z.string(),
    withdrawable: z.string(),
    marginRatio: z.string(),
    staleMarks: z.array(z.string()).openapi({
      description: 'instruments of open positions whose mark is missing or older than the limit',
    }),
    rights: z
      .object({
        byNode: z.record(z.string(), z.string()),
        usableHere: z.string(),
        majorityContact: z.boolean().openapi({
          description:
            'whether this node reaches a majority of the mesh (or lost it under 10 s ago); the ' +
            'settlement node cut off longer pays out no gains above its rights',
        }),
      })
      .openapi({
        description:
          "escrow: each node's rights to the account's cash, and what this node may spend now " +
          '(withdrawals and new margin past it are refused 503 insufficient_local_rights)',
      }),
    reflects: Reflects,
  })
  .openapi('Account')

/** A whole-number query parameter from 1 to `max`: digits only (no "1e2", no "0x10"). */
export const WholeNumberQuery = (name: string, max: number, fallback: number) =>
  z
    .string()
    .regex(/^[0-9]{1,6}$/, `${name} must be a whole number`)
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(1, `${name} must be at least 1`)
        .max(max, `${name} must be at most ${max}`),
    )
    .optional()
    .transform((value) => value ?? fallback)
    .openapi({ type: 'integer', minimum: 1, maximum: max, default: fallback })

/** Cursor paging of a listing (ledger, fills). */
export const PageQuery = z.strictObject({
  cursor: z.string().max(512).optional(),
  limit: WholeNumberQuery('limit', ledgerPageLimitMax, ledgerPageLimitDefault),
})

export const AccountProof = z
  .object({
    shard: z.number().int(),
    epoch: z.number().int(),
    cutTime: z
      .number()
      .int()
      .openapi({ description: "the writer's clock at the checkpoint's cut" }),
    root: z.string().openapi({ description: 'Merkle root (SHA-256, hex) of the shard balances' }),
    leaf: z.object({ accountId: z.string(), balance: z.string() }),
    path: z.array(z.object({ side: z.enum(['left', 'right']), hash: z.string() })),
    signatures: z.array(
      z.object({ node: z.string(), publicKey: z.string(), signature: z.string() }),
    ),
    reflects: Reflects,
  })
  .openapi('AccountProof', {
    description:
      "the account's balance at the shard's epoch checkpoint in force, its inclusion proof and " +
      "the nodes' Ed25519 signatures over (shard, epoch, root); check it with verifyAccountProof " +
      '(src/state/state-proof.ts) against node keys learned from the operator',
  })

export const LedgerPage = z
  .object({
    entries: z.array(
      z.object({
        id: z.string(),
        kind: z.string(),
        amount: z.string().openapi({ description: 'signed change of the balance' }),
        ts: z.number().int(),
        node: z.string(),
      }),
    ),
    nextCursor: z.string().nullable(),
    reflects: Reflects,
  })
  .openapi('LedgerPage')
