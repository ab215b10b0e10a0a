// What every section of the benchmark suite shares: figures as medians of runs with their spread,
// paired ratios of runs made side by side, child processes of the suite (load generators, the
// hello-world Worker) each in its own process group and always killed, and epoch clocks that agree
// between processes.

import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { groupGone, signalGroup } from '../lib/node-process'

export const benchDir = fileURLToPath(new URL('.', import.meta.url))
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** Milliseconds since the epoch with sub-millisecond resolution, comparable across processes. */
export const epochMs = (): number => performance.timeOrigin + performance.now()

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** One figure: the median of its runs, their spread (min and max) and every run's value. */
export type Figure = { median: number; min: number; max: number; runs: number[]; unit: string }

export const round = (value: number, digits = 1): number =>
  Number.isFinite(value) ? Number(value.toFixed(digits)) : value

export function median(values: number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

export function figure(values: number[], unit: string, digits = 1): Figure {
  const finite = values.filter((value) => Number.isFinite(value))
  return {
    median: round(median(finite), digits),
    min: round(finite.length === 0 ? NaN : Math.min(...finite), digits),
    max: round(finite.length === 0 ? NaN : Math.max(...finite), digits),
    runs: values.map((value) => round(value, digits)),
    unit,
  }
}

/**
 * The ratio of two series measured side by side: run i of `numerator` over run i of
 * `denominator`, so that both halves of each ratio saw the same moment of a noisy machine.
 */
export function pairedRatio(numerator: number[], denominator: number[], digits = 3): Figure {
  const ratios = numerator.map((value, i) => value / (denominator[i] ?? NaN))
  return figure(ratios, 'x', digits)
}

/** p-th percentile (0-100), nearest rank; NaN for no values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((x, y) => x - y)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1]!
}

/** A line of the suite's progress on stderr (stdout is kept for the table). */
export const log = (line: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`)

/** Process groups the suite started and has not seen end: killed whatever way the suite ends. */
const children = new Set<number>()
process.once('exit', () => children.forEach((pid) => signalGroup(pid, 'SIGKILL')))

export type ScriptRun<T> = { result: T; output: string }

/** Starts a script of this folder in a process group of its own, killed with the suite. */
function spawnScript(script: string, args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(benchDir, script), ...args], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const pid = child.pid
  if (pid === undefined) throw new Error(`could not spawn ${script}`)
  children.add(pid)
  return { child, pid }
}

/**
 * Runs a TypeScript script of this folder as its own process (its own process group), hands it
 * `input` as a JSON file and resolves with the JSON it writes to stdout's last line. SIGKILLs the
 * group past `timeoutMs`.
 */
export async function runScript<T>(
  script: string,
  input: unknown,
  timeoutMs: number,
  tmpDir: string,
): Promise<ScriptRun<T>> {
  const inputFile = join(tmpDir, `${script.replace(/\W/g, '-')}-${process.hrtime.bigint()}.json`)
  await writeFile(inputFile, JSON.stringify(input))
  const { child, pid } = spawnScript(script, [inputFile])
  const stdout: string[] = []
  const stderr: string[] = []
  createInterface({ input: child.stdout! }).on('line', (line) => stdout.push(line))
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr.push(line)
    if (stderr.length > 50) stderr.shift()
  })
  const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), timeoutMs)
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve) => child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  clearTimeout(timer)
  signalGroup(pid, 'SIGKILL')
  await groupGone(pid, 5_000)
  children.delete(pid)
  const output = stderr.join('\n')
  const last = stdout.at(-1)
  if (exit.code !== 0 || last === undefined) {
    throw new Error(
      `${script} ended ${exit.signal ?? exit.code} after a budget of ${timeoutMs} ms\n${output}`,
    )
  }
  return { result: JSON.parse(last) as T, output }
}

export type Server = { url: string; pid: number; stop(): Promise<void> }

/**
 * Starts a long-running script of this folder (its own process group) and resolves once it prints
 * a line matching `ready`, whose first group is the URL it serves.
 */
export async function startServer(
  script: string,
  args: string[],
  ready: RegExp,
  timeoutMs: number,
): Promise<Server> {
  const { child, pid } = spawnScript(script, args)
  const lines: string[] = []
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) signalGroup(pid, 'SIGTERM')
    if (!(await groupGone(pid, 5_000))) signalGroup(pid, 'SIGKILL')
    await groupGone(pid, 5_000)
    children.delete(pid)
  }
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script} not ready\n${lines.join('\n')}`)),
      timeoutMs,
    )
    const onLine = (line: string) => {
      lines.push(line)
      const match = ready.exec(line)
      if (match?.[1] !== undefined) {
        clearTimeout(timer)
        resolve(match[1])
      }
    }
    createInterface({ input: child.stdout! }).on('line', onLine)
    createInterface({ input: child.stderr! }).on('line', onLine)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${script} exited ${code}\n${lines.join('\n')}`))
    })
  }).catch(async (error: unknown) => {
    await stop()
    throw error
  })
  return { url, pid, stop }
}

/** `median (min-max)` of a figure, for a table cell. */
export function cell(value: Figure, withUnit = false): string {
  const unit = withUnit ? ` ${value.unit}` : ''
  if (!Number.isFinite(value.median)) return 'n/a'
  if (value.min === value.max) return `${value.median}${unit}`
  return `${value.median}${unit} (${value.min}–${value.max})`
}
