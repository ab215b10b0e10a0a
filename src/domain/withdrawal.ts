// Whether a withdrawal may be approved against an account's figures. Pure: no I/O, no clock.

import { withdrawableUnits, type AccountFigures } from './account'
import * as money from './money'
import { ok, reject, type Result } from './result'

export type WithdrawalRejection = 'insufficient_funds'

export function decide(
  figures: AccountFigures,
  amount: money.Units,
): Result<{ withdrawableAfter: money.Units }, WithdrawalRejection> {
  const withdrawable = withdrawableUnits(figures)
  if (amount > withdrawable) {
    return reject(
      'insufficient_funds',
      `withdrawal of ${money.formatUsd(amount)} USD exceeds the withdrawable ${money.formatUsd(withdrawable)} USD`,
    )
  }
  return ok({ withdrawableAfter: withdrawable - amount })
}
