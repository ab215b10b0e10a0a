// Asking every replica of this node for its metrics at scrape time: one RPC each, in parallel. A
// replica that fails to answer is counted, not fatal: the scrape reports what the others said.

import type { Env, NodeConfig } from '../../config'
import { nodeReplicas } from '../../replica/addressing'
import type { ReplicaMetrics } from '../../replica/replica-metrics'

export async function gatherReplicas(
  env: Env,
  config: NodeConfig,
): Promise<{ replicas: ReplicaMetrics[]; unanswered: number }> {
  const answers = await Promise.allSettled(
    nodeReplicas(env, config).map(({ stub }) => stub.metrics()),
  )
  const replicas: ReplicaMetrics[] = []
  let unanswered = 0
  for (const answer of answers) {
    if (answer.status === 'fulfilled') replicas.push(answer.value as ReplicaMetrics)
    else {
      unanswered += 1
      console.error(JSON.stringify({ msg: 'replica metrics failed', error: String(answer.reason) }))
    }
  }
  return { replicas, unanswered }
}
