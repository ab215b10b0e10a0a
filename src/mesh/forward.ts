// Calls to an instrument's matcher on its home node, from any other node. Locally a peer is a URL
// and the call is one HTTP POST to the peer's matcher endpoint, carrying a mesh token bound to
// that instrument's matcher; deployed on Cloudflare the same Dialer can be a Durable Object stub
// (README, "Deploying"). The answer is the home MarketReplica's own result, in wire form.

import type { Durability } from '../config'
import { reject, type Result } from '../domain/result'
import type { CancelInput, OrderInput } from '../state/market-doc'
import type { OrderView } from '../state/market-state'
import type { Reflects } from '../replica/durable-doc'
import * as token from './token'
import type { Dialer } from './transport'
import type { MeshConfig } from './replication'
import * as clock from '../clock'

export type MatcherCall =
  | { op: 'submit'; input: OrderInput; durability: Durability }
  | { op: 'cancel'; input: CancelInput; durability: Durability }
  /**
   * A placement retry: the order as the matcher took it, never taken anew. `recordedAt`: when
   * its account shard took the client order id, to tell an order never taken from one whose
   * history a checkpoint folded.
   */
  | { op: 'replay'; orderId: string; accountId: string; recordedAt: number }

/** The path of an instrument's matcher endpoint on its home node. */
export const matcherPath = (symbol: string): string => `/v1/mesh/matcher/${symbol}`
/** What a matcher token is bound to: one instrument's matcher, never a sync document. */
export const matcherDoc = (symbol: string): string => `matcher/${symbol}`

export type OrderViewWire = Omit<OrderView, 'filled' | 'filledValue' | 'remaining'> & {
  filled: string
  filledValue: string
  remaining: string
}

/** The home's answer: its MarketReplica result, with the view's amounts as decimal strings. */
export type MatcherAnswer =
  | { ok: true; value: { value: OrderViewWire; reflects: Reflects } }
  | { ok: false; code: string; message: string }

export const viewToWire = (view: OrderView): OrderViewWire => ({
  ...view,
  filled: view.filled.toString(),
  filledValue: view.filledValue.toString(),
  remaining: view.remaining.toString(),
})

export const viewFromWire = (wire: OrderViewWire): OrderView => ({
  ...wire,
  filled: BigInt(wire.filled),
  filledValue: BigInt(wire.filledValue),
  remaining: BigInt(wire.remaining),
})

/**
 * Sends one call to `home`'s matcher. Any failure after the request may have left this node is an
 * unknown outcome: the caller answers 504 and the client's retry of the same order id replays it.
 */
export async function callHome(
  config: MeshConfig,
  fetcher: Dialer,
  home: string,
  symbol: string,
  call: MatcherCall,
  timeoutMs: number,
): Promise<Result<MatcherAnswer, 'outcome_unknown'>> {
  const base = config.peers.get(home)
  if (base === undefined) return reject('outcome_unknown', `node ${home} is not a peer`)
  const credential = await token.issue(
    config.meshSecret,
    { role: 'node', id: config.nodeId },
    matcherDoc(symbol),
    clock.now() + timeoutMs,
  )
  const deadline = clock.now() + timeoutMs
  let failure = ''
  // Calls are idempotent at the home node (an order id taken replays its view; a cancel of a
  // cancelled order changes nothing), so a connection lost before an answer is retried once: a
  // pooled connection a partition killed would otherwise fail the first call after every heal.
  for (let attempt = 0; attempt < 2 && clock.now() < deadline; attempt++) {
    try {
      const response = await fetcher(`${base}${matcherPath(symbol)}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${credential}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(call),
        signal: AbortSignal.timeout(deadline - clock.now()),
      })
      if (response.status !== 200) {
        return reject('outcome_unknown', `node ${home} answered ${response.status}`)
      }
      return { ok: true, value: (await response.json()) as MatcherAnswer }
    } catch (error) {
      failure = String(error)
    }
  }
  return reject('outcome_unknown', `node ${home} did not answer: ${failure}`)
}
