// Open-loop load at a steady rate, in a process of its own (started through harness.runScript):
// write i leaves at start + i / rate whatever the others do (autocannon's rate limit sends each
// second's quota in a burst, which is not a steady rate), round-robin over the target nodes, each
// a deposit with its own id. Records, for every write, when it left and when its answer came
// (ms since the epoch, comparable with the suite's clock), and prints them as one JSON line.
//
//   npx tsx scripts/bench/pacer.ts <spec.json>

import { readFileSync } from 'node:fs'

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
}

export type PacedWrite = {
  id: string
  node: string
  accountId: string
  sentAtMs: number
  ackedAtMs: number
  status: number
}

export type PacerResult = {
  writes: PacedWrite[]
  skipped: number
  failed: number
  /** How late, at worst, a write left after its due time (the pacer's own jitter). */
  lateMsMax: number
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
  let inFlight = 0
  let lateMsMax = 0
  const pending: Promise<void>[] = []
  const total = Math.round(spec.rate * spec.seconds)
  const startedAt = performance.now() + 50
  const send = async (i: number) => {
    const node = nodes[i % nodes.length]!
    const accountId = spec.accounts[Math.floor(i / nodes.length) % spec.accounts.length]!
    const id = `${spec.tag}-${i}`
    const body = JSON.stringify({
      depositId: id,
      accountId,
      asset: 'USD',
      amount: '1.25',
      ...(spec.durability !== undefined && { durability: spec.durability }),
    })
    inFlight++
    const sentAtMs = epochMs()
    try {
      const response = await fetch(`${spec.targets[node]}/v1/admin/deposits`, {
        method: 'POST',
        headers: { authorization: `Bearer ${spec.adminToken}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(30_000),
      })
      await response.text()
      writes.push({ id, node, accountId, sentAtMs, ackedAtMs: epochMs(), status: response.status })
    } catch {
      failed++
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
  const result: PacerResult = { writes, skipped, failed, lateMsMax }
  console.log(JSON.stringify(result))
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error((error as Error)?.stack ?? String(error))
    process.exit(1)
  },
)
