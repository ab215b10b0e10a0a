// Progress of a long operation (snapshot, restore, soak): on a terminal one line that is rewritten
// in place; elsewhere (a pipe, a log file, CI) plain lines. Other output is printed above the
// progress line, which is then drawn again.

import { spawn } from 'node:child_process'

export type ProgressDisplay = {
  /** Shows the current state of the operation. */
  update(text: string): void
  /** Prints a line that stays, on `to` (default: the display's own stream). */
  print(text: string, to?: NodeJS.WritableStream): void
  /** Ends the progress line. */
  done(): void
}

export function progressDisplay(stream: NodeJS.WriteStream = process.stderr): ProgressDisplay {
  if (!stream.isTTY) {
    return {
      update: (text) => stream.write(`${text}\n`),
      print: (text, to = stream) => to.write(`${text}\n`),
      done: () => undefined,
    }
  }
  let shown = ''
  const fit = (text: string) => text.slice(0, Math.max(10, (stream.columns ?? 80) - 1))
  return {
    update(text) {
      shown = fit(text)
      stream.write(`\r\x1b[2K${shown}`)
    },
    print(text, to = stream) {
      stream.write('\r\x1b[2K')
      to.write(`${text}\n`)
      stream.write(shown)
    },
    done() {
      if (shown !== '') stream.write('\n')
      shown = ''
    },
  }
}

/** tsx's loader, as a URL: the child runs TypeScript wherever it is started from. */
const tsxLoader = import.meta.resolve('tsx')

/**
 * Runs a script of the repo (`scripts/...ts`) as a child process; each line of its output that
 * `isProgress` recognises updates the progress display, every other line is printed as it is.
 * Resolves with the child's exit code.
 */
export function runWithProgress(
  script: string,
  args: string[],
  isProgress: (line: string) => boolean,
  env: Record<string, string> = {},
): Promise<number> {
  const display = progressDisplay()
  const child = spawn(process.execPath, ['--import', tsxLoader, script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  const outputs = [
    [child.stdout, process.stdout],
    [child.stderr, process.stderr],
  ] as const
  for (const [output, to] of outputs) {
    let rest = ''
    const show = (line: string) => {
      if (line === '') return
      if (isProgress(line)) display.update(line)
      else display.print(line, to)
    }
    output.setEncoding('utf8')
    output.on('data', (chunk: string) => {
      // A progress line may end with a carriage return instead of a newline.
      const lines = (rest + chunk).split(/\r|\n/)
      rest = lines.pop() ?? ''
      lines.forEach(show)
    })
    output.on('end', () => show(rest))
  }
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => {
      display.done()
      resolve(code ?? (signal === null ? 1 : 128))
    })
  })
}
