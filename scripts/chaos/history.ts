// The history of a chaos run, Jepsen style: every client invocation and its completion (ok, fail,
// info = outcome unknown), every fault the nemesis starts and ends, and the run's phases. Written
// as JSON lines, one event a line, so a failed run can be checked again without running it.
//
// A request is one client intent under one request id (a deposit id, a withdrawal id, a client
// order id, a cancel of one order); each try of it at some node is an attempt with its own
// invoke and completion. A retry after a timeout or a 5xx reuses the request id at another node.

import { createWriteStream, readFileSync, type WriteStream } from 'node:fs'

export type Op =
  | { f: 'deposit'; requestId: string; accountId: string; amount: string }
  | { f: 'withdraw'; requestId: string; accountId: string; amount: string }
  | {
      f: 'order'
      /** The clientOrderId. */
      requestId: string
      accountId: string
      /** Derived from the account and clientOrderId (the same on every node). */
      orderId: string
      instrument: string
      side: 'buy' | 'sell'
      type: 'limit' | 'market'
      price: string | null
      size: string
      timeInForce: 'GTC' | 'IOC' | 'FOK' | 'POST_ONLY'
    }
  | { f: 'cancel'; requestId: string; accountId: string; orderId: string; instrument: string }

export type OpKind = Op['f']

/** ok: a 2xx. fail: a definite refusal (4xx, or 503 "not executed"). info: no answer, or 5xx. */
export type Outcome = 'ok' | 'fail' | 'info'

/** What a completion keeps of the reply: enough for the checkers, not the whole body. */
export type ReplySummary = {
  /** Deposits and withdrawals: the amount and the node that recorded the entry. */
  amount?: string
  node?: string
  /** Orders and cancels: the order's state as answered. */
  orderId?: string
  status?: string
  filledSize?: string
  replayed?: boolean
}

export type InvokeEvent = {
  type: 'invoke'
  /** Milliseconds since the run started. */
  t: number
  process: number
  attempt: number
  node: string
  op: Op
}

export type CompletionEvent = {
  type: Outcome
  t: number
  process: number
  attempt: number
  node: string
  op: Op
  status?: number
  /** The error envelope's code and retryable flag, when there was one. */
  code?: string
  retryable?: boolean
  reply?: ReplySummary
  error?: string
}

export type NemesisEvent = {
  type: 'nemesis'
  t: number
  /** e.g. 'start' / 'stop' of a fault, or 'skip' when it could not be applied. */
  f: 'start' | 'stop' | 'skip'
  fault: string
  value: Record<string, unknown>
}

export type PhaseEvent = {
  type: 'phase'
  t: number
  name: 'setup' | 'workload' | 'heal' | 'quiescent' | 'converged' | 'not-converged' | 'final'
  value?: Record<string, unknown>
}

export type HistoryEvent = InvokeEvent | CompletionEvent | NemesisEvent | PhaseEvent

export const isCompletion = (event: HistoryEvent): event is CompletionEvent =>
  event.type === 'ok' || event.type === 'fail' || event.type === 'info'

/** The key of a request: one intent, whatever node its attempts reached. */
export const requestKey = (op: Op): string => `${op.f}:${op.accountId}:${op.requestId}`

export type Attempt = {
  node: string
  attempt: number
  invokedAt: number
  completedAt: number
  outcome: Outcome
  status?: number
  code?: string
  retryable?: boolean
  reply?: ReplySummary
}

export type Request = {
  key: string
  op: Op
  attempts: Attempt[]
  /** ok if any attempt was acknowledged; fail if every attempt was refused; else info. */
  outcome: Outcome
}

/** Groups the attempts of every request; an invocation never completed counts as info. */
export function requestsOf(history: readonly HistoryEvent[]): Map<string, Request> {
  const requests = new Map<string, Request>()
  const open = new Map<string, InvokeEvent>()
  const attemptKey = (e: { op: Op; process: number; attempt: number }) =>
    `${requestKey(e.op)}#${e.process}#${e.attempt}`
  const add = (op: Op, attempt: Attempt) => {
    const key = requestKey(op)
    let request = requests.get(key)
    if (request === undefined) {
      request = { key, op, attempts: [], outcome: 'fail' }
      requests.set(key, request)
    }
    request.attempts.push(attempt)
  }
  for (const event of history) {
    if (event.type === 'invoke') open.set(attemptKey(event), event)
    if (!isCompletion(event)) continue
    const invoked = open.get(attemptKey(event))
    open.delete(attemptKey(event))
    add(event.op, {
      node: event.node,
      attempt: event.attempt,
      invokedAt: invoked?.t ?? event.t,
      completedAt: event.t,
      outcome: event.type,
      ...(event.status !== undefined && { status: event.status }),
      ...(event.code !== undefined && { code: event.code }),
      ...(event.retryable !== undefined && { retryable: event.retryable }),
      ...(event.reply !== undefined && { reply: event.reply }),
    })
  }
  for (const invoked of open.values()) {
    add(invoked.op, {
      node: invoked.node,
      attempt: invoked.attempt,
      invokedAt: invoked.t,
      completedAt: Number.POSITIVE_INFINITY,
      outcome: 'info',
    })
  }
  for (const request of requests.values()) {
    const outcomes = request.attempts.map((a) => a.outcome)
    request.outcome = outcomes.includes('ok') ? 'ok' : outcomes.includes('info') ? 'info' : 'fail'
  }
  return requests
}

export type HistoryWriter = {
  readonly events: HistoryEvent[]
  /** Milliseconds since the run started. */
  now(): number
  append(event: HistoryEvent): void
  close(): Promise<void>
}

/** Keeps the events in memory and, when `file` is given, appends each as one JSON line. */
export function historyWriter(file?: string): HistoryWriter {
  const startedAt = performance.now()
  const events: HistoryEvent[] = []
  const stream: WriteStream | undefined =
    file === undefined ? undefined : createWriteStream(file, { flags: 'w' })
  return {
    events,
    now: () => Math.round(performance.now() - startedAt),
    append(event) {
      events.push(event)
      stream?.write(`${JSON.stringify(event)}\n`)
    },
    close: () =>
      new Promise<void>((resolve) => (stream === undefined ? resolve() : stream.end(resolve))),
  }
}

export function readHistory(file: string): HistoryEvent[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as HistoryEvent)
}
