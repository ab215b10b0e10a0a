import type { Env, NodeConfig } from '../config'
import type { Scope } from '../state/shard-doc'

/** The caller a signed request was verified to come from. */
export type Caller = { keyId: string; accountId: string; scopes: Scope[] }

export type AppEnv = {
  Bindings: Env
  Variables: { config: NodeConfig; caller: Caller; requestId: string }
}
