// One clearmesh node as a child process running scripts/node.ts, shared by scripts/start.ts and
// the node tests.
//
// Each node gets its own process group (spawned detached): miniflare runs workerd as a child of
// the node process, and a SIGKILLed node would leave workerd running and holding the port. Killing
// the whole group takes both down, and the group id tells when every member is gone.

import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { GrantPolicy } from '../../src/domain/escrow'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const nodeScript = fileURLToPath(new URL('../node.ts', import.meta.url))

/** The line scripts/node.ts prints once it serves; the only start-up contract with callers. */
export const readyLine = (id: string, url: string) => `clearmesh node ${id} listening on ${url}`
const readyPattern = /^clearmesh node (\S+) listening on (http:\/\/\S+)$/

/** `undefined` when the token came from the environment: a caller-provided secret is not echoed. */
export const adminTokenLine = (id: string, token: string | undefined) =>
  `clearmesh node ${id} admin token: ${token ?? '(from CLEARMESH_ADMIN_TOKEN)'}`

export type NodeSpec = {
  id: string
  port: number
  data: string
  shards?: number
  host?: string
  /** The other nodes of the mesh: `b=http://127.0.0.1:8788,c=...`. */
  peers?: string
  /** Settlement epoch length (ms) on the instruments this node is home to; unset: none. */
  settleEveryMs?: number
  /** Epoch checkpoint length (ms) of the shard and market documents; unset: none. */
  checkpointEveryMs?: number
  /** Test only: ms added to the node's clock (design.md F9); unset: none. */
  clockSkewMs?: number
  /** What the node grants a peer that asks for escrow rights; unset: the default (shortfall). */
  grantPolicy?: GrantPolicy
  /** Added to this process's environment, e.g. CLEARMESH_ADMIN_TOKEN. */
  env?: Record<string, string>
}

export type NodeExit = { code: number | null; signal: NodeJS.Signals | null }

export type NodeProcess = {
  readonly spec: NodeSpec
  readonly pid: number
  /** The node's base URL, once it printed its ready line. */
  readonly ready: Promise<string>
  readonly exited: Promise<NodeExit>
  /** The last lines the node printed, for failure messages. */
  output(): string
  /** SIGKILL to the whole group (node and workerd); resolves once no member is left. */
  kill(): Promise<void>
  /** SIGTERM to the node (it disposes workerd and exits 0); SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<NodeExit>
}

export type SpawnOptions = {
  /** Called with every line the node prints (stdout and stderr). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void
  /** How long to wait for the ready line before `ready` rejects. */
  readyTimeoutMs?: number
}

const outputLinesKept = 200

export function nodeArgs(spec: NodeSpec): string[] {
  const args = ['--id', spec.id, '--port', String(spec.port), '--data', spec.data]
  if (spec.shards !== undefined) args.push('--shards', String(spec.shards))
  if (spec.host !== undefined) args.push('--host', spec.host)
  if (spec.peers !== undefined && spec.peers !== '') args.push('--peers', spec.peers)
  if (spec.settleEveryMs !== undefined) args.push('--settle-every', String(spec.settleEveryMs))
  if (spec.checkpointEveryMs !== undefined) {
    args.push('--checkpoint-every', String(spec.checkpointEveryMs))
  }
  // One argument: a negative value as a separate one would read as an option.
  if (spec.clockSkewMs !== undefined) args.push(`--clock-skew-ms=${spec.clockSkewMs}`)
  if (spec.grantPolicy !== undefined) args.push('--grant-policy', spec.grantPolicy)
  return args
}

export function spawnNode(spec: NodeSpec, options: SpawnOptions = {}): NodeProcess {
  // `node --import tsx` rather than the tsx CLI: one process per node, no relay in between.
  const child = spawn(process.execPath, ['--import', 'tsx', nodeScript, ...nodeArgs(spec)], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...spec.env },
  })
  const pid = child.pid
  if (pid === undefined) throw new Error(`could not spawn node ${spec.id}`)
  const lines: string[] = []
  const output = () => lines.join('\n')
  const exited = new Promise<NodeExit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const ready = new Promise<string>((resolve, reject) => {
    const timeoutMs = options.readyTimeoutMs ?? 60_000
    const timer = setTimeout(
      () => reject(new Error(`node ${spec.id} not ready after ${timeoutMs} ms\n${output()}`)),
      timeoutMs,
    )
    followLines(child, (line, stream) => {
      lines.push(`${stream === 'stderr' ? '! ' : ''}${line}`)
      if (lines.length > outputLinesKept) lines.shift()
      options.onLine?.(line, stream)
      const match = stream === 'stdout' ? readyPattern.exec(line) : null
      if (match?.[1] === spec.id && match[2] !== undefined) {
        clearTimeout(timer)
        resolve(match[2])
      }
    })
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`node ${spec.id} exited (${signal ?? code}) before ready\n${output()}`))
    })
  })
  // A caller that only awaits `exited` must not see an unhandled rejection.
  ready.catch(() => undefined)

  return {
    spec,
    pid,
    ready,
    exited,
    output,
    kill: async () => {
      signalGroup(pid, 'SIGKILL')
      await exited
      await groupGone(pid, 10_000)
    },
    stop: async (graceMs = 10_000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs)
      const exit = await exited
      clearTimeout(timer)
      // The node disposes workerd before it exits; a leftover member means it did not.
      if (!(await groupGone(pid, 1_000))) signalGroup(pid, 'SIGKILL')
      await groupGone(pid, 10_000)
      return exit
    },
  }
}

function followLines(
  child: ChildProcess,
  onLine: (line: string, stream: 'stdout' | 'stderr') => void,
): void {
  if (child.stdout) createInterface({ input: child.stdout }).on('line', (l) => onLine(l, 'stdout'))
  if (child.stderr) createInterface({ input: child.stderr }).on('line', (l) => onLine(l, 'stderr'))
}

/** Signals every process of the group led by `pid`; a group already gone is not an error. */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
  }
}

/**
 * Whether any process of the group led by `pid` is still alive. A zombie is not: it holds no
 * socket or file, and an orphaned one waits for init to reap it (over a second in some sandboxes).
 */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw error
  }
  const states = groupStates(pid)
  return states === undefined || states.some((state) => state !== 'Z')
}

/** States of the group's members from /proc, or undefined where there is no /proc. */
function groupStates(pgid: number): string[] | undefined {
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((name) => /^[0-9]+$/.test(name))
  } catch {
    return undefined
  }
  return pids.flatMap((pid) => {
    const stat = readProcStat(pid)
    // Fields after "(comm)": state, ppid, pgrp, ...; comm may hold spaces and parentheses.
    const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ')
    return fields !== undefined && Number(fields[2]) === pgid ? [fields[0] ?? '?'] : []
  })
}

function readProcStat(pid: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined // exited while we listed
  }
}

/** Waits until no process of the group is left; true if that happened within `timeoutMs`. */
export async function groupGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (groupAlive(pid)) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return true
}
