// Resident memory of the processes of one process group (a node: its Node.js runner and the
// workerd it started), read from /proc. Linux only; elsewhere an empty list.

import { readFileSync, readdirSync } from 'node:fs'

export type MemberMemory = { pid: number; command: string; rssBytes: number; peakRssBytes: number }

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined // gone while we looked, or no /proc
  }
}

const kib = (status: string, field: string) => {
  const match = new RegExp(`^${field}:\\s+([0-9]+) kB`, 'm').exec(status)
  return match === null ? 0 : Number(match[1]) * 1024
}

/** Every live member of the group led by `pgid`, with its resident and peak resident memory. */
export function groupMemory(pgid: number): MemberMemory[] {
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((name) => /^[0-9]+$/.test(name))
  } catch {
    return []
  }
  return pids.flatMap((pid) => {
    const stat = read(`/proc/${pid}/stat`)
    if (stat === undefined) return []
    const command = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(fields[2]) !== pgid || fields[0] === 'Z') return []
    const status = read(`/proc/${pid}/status`) ?? ''
    return [
      {
        pid: Number(pid),
        command,
        rssBytes: kib(status, 'VmRSS'),
        peakRssBytes: kib(status, 'VmHWM'),
      },
    ]
  })
}

/** Resident memory of the group's workerd (where a node's documents live); 0 if none is found. */
export const workerdRss = (pgid: number): number =>
  groupMemory(pgid)
    .filter((member) => member.command.startsWith('workerd'))
    .reduce((sum, member) => sum + member.rssBytes, 0)
