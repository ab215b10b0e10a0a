// Worker entry of one clearmesh node: the HTTP API and the Durable Object classes it binds.

import { app } from './api/app'

export { MarketReplica } from './replica/market-replica'
export { ShardReplica } from './replica/shard-replica'
export default app
