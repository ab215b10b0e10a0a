// Argument helpers of the scripts: one error type for "you called it wrong", which the scripts
// answer with their usage text and exit code 2, and strict integer options.

import { parseArgs, type ParseArgsConfig } from 'node:util'

export class UsageError extends Error {}

/** node:util parseArgs, with its errors (unknown option, missing value) turned into UsageError. */
export function parseOptions<O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O,
) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

export function integerOption(name: string, text: string, min: number, max: number): number {
  const value = Number(text)
  if (!/^-?[0-9]+$/.test(text) || value < min || value > max) {
    throw new UsageError(`${name} must be an integer from ${min} to ${max}, not "${text}"`)
  }
  return value
}

/**
 * Runs a script's main with the process arguments: exit with its code, or 2 with the usage text,
 * or 1 with the error. `--help` / `-h` prints the usage and exits 0.
 */
export function runMain(
  name: string,
  usage: string,
  main: (argv: string[]) => Promise<number>,
): void {
  const argv = process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage)
    process.exit(0)
  }
  main(argv).then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof UsageError) console.error(`${name}: ${error.message}\n${usage}`)
      else if (isUserError(error)) console.error(`${name}: ${error.message}`)
      else console.error(`${name}: ${(error as Error)?.stack ?? String(error)}`)
      process.exit(error instanceof UsageError ? 2 : 1)
    },
  )
}

/** Miniflare marks errors the user can fix (port in use, bad option): their message is enough. */
const isUserError = (error: unknown): error is Error =>
  error instanceof Error &&
  typeof (error as { isUserError?: unknown }).isUserError === 'function' &&
  (error as unknown as { isUserError: () => boolean }).isUserError()
