// Opaque page cursors: a position (time, id) in an ordered listing, bound to the account that
// listed it, so a cursor cannot be replayed against another account's listing.

import type { LedgerCursor } from '../domain/ledger'
import { ApiError } from './api-error'

type Wire = { a: string; ts: number; id: string }

export const encodeCursor = (accountId: string, at: LedgerCursor): string =>
  btoa(JSON.stringify({ a: accountId, ts: at.ts, id: at.id } satisfies Wire)).replace(/=+$/, '')

export function decodeCursor(text: string, accountId: string): LedgerCursor {
  let parsed: unknown
  try {
    parsed = JSON.parse(atob(text))
  } catch {
    throw new ApiError(400, 'invalid_cursor', 'cursor is not one this API returned')
  }
  const cursor = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Partial<Wire>
  if (cursor.a !== accountId || typeof cursor.ts !== 'number' || typeof cursor.id !== 'string') {
    throw new ApiError(
      400,
      'invalid_cursor',
      'cursor is not one this API returned for this account',
    )
  }
  return { ts: cursor.ts, id: cursor.id }
}
