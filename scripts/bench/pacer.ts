// Open-loop load at a steady rate, in a process of its own (started through harness.runScript):
// write i leaves at start + i / rate whatever the others do (autocannon's rate limit sends each
// second's quota in a burst, which is not a steady rate), round-robin over the target nodes, each
// a deposit with its own id (or, given signed accounts, every other one a signed withdrawal of one
// of them). Records, for every write, when it left and when its answer came
// (ms since the epoch, comparable with the suite's clock), and prints them as one JSON line.
//
//   npx tsx scripts/bench/pacer.ts <spec.json>

import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { signingPayload } from '../../src/api/signing'
import type { SignedAccount } from './load'

export type PacerSpec = {
  /** Node id → base URL (loopback). */
  targets: Record<string, string>
  /** Writes per second over all targets. */
  rate: number
  seconds: number
  adminToken: string
  /** Accounts written to, round-robin; each write goes to targets in turn. */
  accounts: string[]
  tag: string
  durability?: 'local' | 'quorum'
  /** Writes in flight past which a due write is skipped (counted) rather than queued. */
  inFlightMax?: number
  /** When set, every odd write is a withdrawal of 0.5 USD signed by one of these, in turn. */
  withdrawers?: SignedAccount[]
}

export type PacedWrite = {
  kind: 'deposit' | 'withdrawal'
  id: string
  node: string
  accountId: string
  sentAtMs: number
  ackedAtMs: number
  status: number
  /** The error code of a refusal. */
  code?: string
}

export type PacerResult = {
  writes: PacedWrite[]
  skipped: number
  failed: number
  /** Why writes failed without an answer (fetch's error cause), counted. */
  failures: Record<string, number>
  /** How late, at worst, a write left after its due time (the pacer's own jitter). */
  lateMsMax: number
}

/** The code of an error envelope, or the start of whatever else came back. */
function errorCode(text: string): string {
  try {
    return String(JSON.parse(text)?.error?.code)
  } catch {
    return text.slice(0, 40) // not the envelope: what it was instead
  }
}

const epochMs = () => performance.timeOrigin + performance.now()

async function main(): Promise<void> {
  const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as PacerSpec
  const nodes = Object.keys(spec.targets)
  for (const url of Object.values(spec.targets)) {
    const host = new URL(url).hostname
    if (host !== '127.0.0.1' && host !== 'localhost') throw new Error(`loopback only, not ${host}`)
  }
  const writes: PacedWrite[] = []
  let skipped = 0
  let failed = 0
  const failures: Record<string, number> = {}
  let inFlight = 0
  let lateMsMax = 0
  const pending: Promise<void>[] = []
  const total = Math.round(spec.rate * spec.seconds)
  const startedAt = performance.now() + 50
  const durability = spec.durability !== undefined && { durability: spec.durability }
  /** Write i: its id, account, path, headers and body. */
  const build = (i: number) => {
    const id = `${spec.tag}-${i}`
    const withdrawers = spec.withdrawers ?? []
    if (withdrawers.length > 0 && i % 2 === 1) {
      const account = withdrawers[Math.floor(i / 2) % withdrawers.length]!
      const body = JSON.stringify({ withdrawalId: id, asset: 'USD', amount: '0.5', ...durability })
      const timestamp = String(Date.now())
      const signature = createHmac('sha256', account.secret)
        .update(signingPayload(timestamp, 'POST', '/v1/withdrawals', body))
        .digest('hex')
      const headers = {
        'content-type': 'application/json',
        'x-api-key': account.keyId,
        'x-api-timestamp': timestamp,
        'x-api-signature': signature,
      }
      const kind = 'withdrawal' as const
      return { kind, id, accountId: account.accountId, path: '/v1/withdrawals', headers, body }
    }
    const accountId = spec.accounts[Math.floor(i / nodes.length) % spec.accounts.length]!
    const body = JSON.stringify({
      depositId: id,
      accountId,
      asset: 'USD',
      amount: '1.25',
      signedAt: Date.now(),
      ...durability,
    })
    const headers = {
      authorization: `Bearer ${spec.adminToken}`,
      'content-type': 'application/json',
    }
    return { kind: 'deposit' as const, id, accountId, path: '/v1/admin/deposits', headers, body }
  }
  const send = async (i: number) => {
    const node = nodes[i % nodes.length]!
    const { kind, id, accountId, path, headers, body } = build(i)
    inFlight++
    const sentAtMs = epochMs()
    try {
      const response = await fetch(`${spec.targets[node]}${path}`, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(30_000),
      })
      const text = await response.text()
      const ackedAtMs = epochMs()
      const write: PacedWrite = {
        kind,
        id,
        node,
        accountId,
        sentAtMs,
        ackedAtMs,
        status: response.status,
      }
      if (response.status >= 400) write.code = errorCode(text)
      writes.push(write)
    } catch (error) {
      failed++
      const cause = (error as { cause?: { code?: string } })?.cause?.code ?? (error as Error)?.name
      failures[String(cause)] = (failures[String(cause)] ?? 0) + 1
    } finally {
      inFlight--
    }
  }
  for (let i = 0; i < total; i++) {
    const due = startedAt + (i * 1000) / spec.rate
    const wait = due - performance.now()
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    // setTimeout wakes early by up to a millisecond: spin the rest for an even pace.
    while (performance.now() < due) {
      /* spin */
    }
    lateMsMax = Math.max(lateMsMax, performance.now() - due)
    if (inFlight >= (spec.inFlightMax ?? 512)) {
      skipped++
      continue
    }
    pending.push(send(i))
  }
  await Promise.all(pending)
  const result: PacerResult = { writes, skipped, failed, failures, lateMsMax }
  // Written out before the process exits: a large line through a pipe is flushed asynchronously.
  await new Promise((resolve) => process.stdout.write(`${JSON.stringify(result)}\n`, resolve))
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error((error as Error)?.stack ?? String(error))
    process.exit(1)
  },
)
