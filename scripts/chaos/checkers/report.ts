// The result every checker returns (TigerBeetle/Jepsen style): valid or not, how many errors, the
// first one, and per type of error its count, first and last message; plus figures worth printing
// (counts, times) and, for a checker whose subject does not exist yet, why it is not applicable.

export type CheckId = 'C1' | 'C2' | 'C3' | 'C4' | 'C5' | 'C6' | 'C7' | 'C8' | 'C9' | 'C10' | 'C11'

export type CheckStatus = 'pass' | 'fail' | 'n/a'

export type ErrorGroup = { count: number; first: string; last: string }

export type CheckResult = {
  id: CheckId
  name: string
  status: CheckStatus
  /** False only when status is 'fail'. */
  valid: boolean
  errorCount: number
  firstError: string | null
  errors: Record<string, ErrorGroup>
  figures: Record<string, number | string>
  /** Why the checker does not apply ('n/a'), or what it could not see. */
  note?: string
}

export type Report = {
  error(type: string, message: string): void
  figure(name: string, value: number | string): void
  /** Marks the checker not applicable (unless it already found an error). */
  notApplicable(why: string): void
  note(text: string): void
  done(): CheckResult
}

export function report(id: CheckId, name: string): Report {
  const errors: Record<string, ErrorGroup> = {}
  const figures: Record<string, number | string> = {}
  const notes: string[] = []
  let errorCount = 0
  let firstError: string | null = null
  let inapplicable: string | undefined
  return {
    error(type, message) {
      errorCount++
      firstError ??= `${type}: ${message}`
      const group = errors[type]
      if (group === undefined) errors[type] = { count: 1, first: message, last: message }
      else {
        group.count++
        group.last = message
      }
    },
    figure(name, value) {
      figures[name] = value
    },
    notApplicable(why) {
      inapplicable = why
    },
    note(text) {
      notes.push(text)
    },
    done() {
      const status: CheckStatus =
        errorCount > 0 ? 'fail' : inapplicable !== undefined ? 'n/a' : 'pass'
      const note = [inapplicable, ...notes].filter((n) => n !== undefined).join('; ')
      return {
        id,
        name,
        status,
        valid: status !== 'fail',
        errorCount,
        firstError,
        errors,
        figures,
        ...(note !== '' && { note }),
      }
    },
  }
}
