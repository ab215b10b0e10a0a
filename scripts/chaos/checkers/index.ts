// Every checker of design.md §5, each a pure function of the history and the final states.

import { checkMarketCheckpoints } from './checkpoints'
import type { CheckInput } from './context'
import { checkConvergence } from './convergence'
import { checkConservation, checkOverdraft, checkRightsRefusals } from './money'
import type { CheckResult } from './report'
import { checkExactlyOnce, checkLostWrites } from './requests'
import { checkAllLegs, checkLiquidations, checkNetZero, checkReferenceModel } from './trading'

export type { CheckInput } from './context'
export type { CheckResult } from './report'

export const checkers: readonly ((input: CheckInput) => CheckResult)[] = [
  checkConvergence,
  checkLostWrites,
  checkConservation,
  checkOverdraft,
  checkNetZero,
  checkExactlyOnce,
  checkAllLegs,
  checkReferenceModel,
  checkLiquidations,
  checkRightsRefusals,
  checkMarketCheckpoints,
]

/** Runs every checker; one that throws fails with the error rather than stopping the others. */
export function runCheckers(input: CheckInput): CheckResult[] {
  return checkers.map((check, i) => {
    try {
      return check(input)
    } catch (error) {
      const id = `C${i + 1}` as CheckResult['id']
      return {
        id,
        name: check.name,
        status: 'fail' as const,
        valid: false,
        errorCount: 1,
        firstError: `checker threw: ${(error as Error).stack ?? String(error)}`,
        errors: { threw: { count: 1, first: String(error), last: String(error) } },
        figures: {},
      }
    }
  })
}
