#!/usr/bin/env node
// The `clearmesh` operator command (package.json "bin"): scripts/clearmesh.ts run through tsx,
// a dependency of the repo, so `npx clearmesh ...` works in a clone after `npm ci`.
import { register } from 'tsx/esm/api'

register()
await import('../scripts/clearmesh.ts')
