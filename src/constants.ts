// Every limit of the system, named with its unit last (TigerBeetle style). Module-load assertions
// at the bottom relate them, so a bad edit fails at start-up instead of in production.

/** Decimals of the USD collateral asset: the ledger's fixed-point scale. */
export const usdDecimals = 6
/** Largest amount of one ledger transfer, in USD units (1e12 USD). */
export const amountUnitsMax = 10n ** 12n * 10n ** BigInt(usdDecimals)
/** Longest decimal string accepted before parsing (guards against huge inputs). */
export const decimalStringLengthMax = 40

/** Default number of shard documents accounts are hashed into. */
export const shardCountDefault = 16
export const shardCountMax = 256

/** Client-chosen ids (account, deposit, withdrawal, key label): length and alphabet. */
export const idLengthMax = 64
export const idPattern = /^[A-Za-z0-9][A-Za-z0-9_-]*$/

/** Request bodies above this size are refused with 413. */
export const bodyBytesMax = 16 * 1024
/** Signed requests whose timestamp differs from the node's clock by more are refused. */
export const signatureWindowMsDefault = 5_000

/** Orders must be priced within this share of the mark, in millionths (100_000 = 10%); a market
 * order is an IOC limit at the band's edge. Bounds what one off-market fill can move. */
export const priceBandRate = 100_000n
/** Settlement (rate units): the liquidation fee paid into the insurance fund, 1% of notional. */
export const liquidationFeeRate = 10_000n
/** Settlement (rate units): the largest funding rate of one epoch either way, 0.05%. */
export const fundingRateMax = 500n
/** Resting orders one account may hold across all books. */
export const openOrdersPerAccountMax = 200
/** A mark stamped further ahead of this node's clock is refused (a feed with a broken clock). */
export const markFutureMsMax = 10_000

/** A mark price older than this is stale (reads say so). */
export const markMaxAgeMsDefault = 30_000
/** Depth levels a book read returns at most. */
export const bookLevelsMax = 100
/** Instruments an account can hold positions in (bounds every per-account fan-out). */
export const instrumentCountMax = 32

/** Ledger page size bounds. */
export const ledgerPageLimitDefault = 100
export const ledgerPageLimitMax = 500

/** Snapshot chunks stay under the Durable Object's 128 KiB value limit with margin. */
export const snapshotChunkBytesMax = 96 * 1024
export const storedValueBytesMax = 128 * 1024
/** Compaction is scheduled once the log tail holds this many updates or bytes. */
export const compactionLogRowsMax = 2_000
export const compactionLogBytesMax = 4 * 1024 * 1024
/** Delay between the write that crosses a compaction threshold and the compaction alarm. */
export const compactionDelayMs = 1_000

/** Mesh links: heartbeats, the silence after which a link is dead, reconnect backoff. */
export const heartbeatIntervalMs = 1_000
export const heartbeatTimeoutMs = 5_000
/** A dial whose peer has not answered the upgrade by then fails, and is redialled. */
export const dialTimeoutMs = heartbeatTimeoutMs
export const reconnectDelayMsMin = 100
export const reconnectDelayMsMax = 5_000
/** Lifetime of the mesh tokens a node issues when it dials a peer. */
export const meshTokenLifetimeMs = 60_000
/**
 * Largest CLOCK_SKEW_MS either way (a test-only knob, src/clock.ts). Two nodes whose clocks differ
 * by more than a mesh token's lifetime cannot link: each token is expired, or not yet issued,
 * on the other's clock.
 */
export const clockSkewMsMax = 10 * 60_000
/** A frame larger than this closes the link (the largest catch-up a link carries at once). */
export const frameBytesMax = 64 * 1024 * 1024
/** Frames above this travel as fragments: a WebSocket message may not exceed 1 MiB. */
export const fragmentBytesMax = 512 * 1024
/** Updates sent on a link without a Held back; the next one closes the link (it resyncs). */
export const linkUnacknowledgedMax = 1_024
/** How often a replica with a link down wakes itself to redial, if nothing else wakes it. */
export const maintenanceIntervalMs = 5_000
/**
 * A link redials at once when its node learns the peer is reachable (another link to it opened),
 * at most this often: a peer whose links flap cannot make them redial in a tight loop.
 */
export const peerPromptIntervalMsMin = 1_000

/**
 * Matcher leases (domain/lease.ts): how long a grant lasts (LEASE_DURATION_MS), and how long
 * every higher candidate must have been silent before a lower one campaigns (FAILOVER_TIMEOUT_MS).
 * A holder renews every third of its lease, and stops matching `duration × (1 − ρ)` after it sent
 * a request: ρ bounds how much slower one node's clock may run than another's over one lease.
 * 0.1 is far above what any disciplined clock drifts (NTP keeps ~1e-4); it buys margin for a
 * runtime's coarse timers.
 */
export const leaseDurationMsDefault = 3_000
export const failoverTimeoutMsDefault = heartbeatTimeoutMs
export const leaseDriftRate = 0.1
export const leaseRenewsPerDuration = 3
/** A lease shorter than this could not be renewed across one heartbeat's delay. */
export const leaseDurationMsMin = 300

/** Retry-After of every retryable refusal (503, 504): each clears within seconds. */
export const retryAfterSeconds = 1

/** Calls waiting for one account's lock (orders, withdrawals); the next is refused 503. */
export const accountQueueDepthMax = 32

/** Per API key and node: requests per second on average and at once (KEY_RATE_PER_SECOND,
 * KEY_RATE_BURST; a key may carry its own). Cancels and reduce-only orders have a bucket of
 * their own, as large, so no volume of other requests can keep a client from reducing risk. */
export const keyRatePerSecondDefault = 50
export const keyRateBurstDefault = 100
export const keyRateMax = 100_000
/** Buckets one shard replica keeps in memory; the least recently used is forgotten past it. */
export const rateBucketsMax = 10_000

/** Client and operator requests a node serves at once (IN_FLIGHT_MAX); past it every request is
 * refused 503 `overloaded`, except cancels and reduce-only orders, which have this many more. */
export const inFlightMaxDefault = 64
export const inFlightReservedForReducing = 16

/** Findings (merged copies, violations) listed per document in the mesh status, newest first. */
export const findingsShownMax = 50
/** Quarantined rows a repair's finding describes, and the bytes of each it shows (hex). */
export const quarantineEvidenceShownMax = 20
export const quarantineHeadBytesMax = 32

/** Forged entries a replica records as findings while it runs (a rogue peer can redial and send
 * more; past this they are logged only), and the evidence kept of each. */
export const forgedFindingsMax = 100
export const findingEvidenceBytesMax = 4 * 1024

/**
 * A node's request for escrow rights is answered while this fresh; it asks again after, or as
 * soon as a peer has granted it.
 */
export const rightsRequestFreshMs = 10_000

/** The `demand` grant policy weighs the asker's and the granter's spending over this long. */
export const rightsDemandWindowMs = 30_000

/**
 * The settlement node cut off from a majority of the mesh for longer than this stops paying out
 * gains above its escrow rights until contact returns (reads say so: `rights.majorityContact`).
 */
export const majorityLostGraceMs = 10_000

/** A `quorum` write not held by a majority of nodes by then is answered 504, outcome unknown. */
export const quorumTimeoutMs = 5_000
/** A call to another node's matcher: its own quorum wait, plus the round trip. */
export const matcherCallTimeoutMs = quorumTimeoutMs + 2_000

/** Upper bounds of the latency histograms `GET /metrics` serves (requests, durable writes). */
export const latencyBucketsMs = [
  0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000,
] as const
/** A peer's view asked for by the dashboard that has not come back by then: unreachable. */
export const peerViewTimeoutMs = 1_500

/** A snapshot restore's body (one document's whole state) above this is refused with 413. */
export const snapshotBytesMax = 24 * 1024 * 1024

/** One update larger than this is refused before it reaches storage. */
export const updateBytesMax = storedValueBytesMax
/**
 * A catch-up travels as updates of about this size at most (one struct larger than it travels
 * alone): under one stored value with margin, so the receiver appends each as a log row instead
 * of folding its whole document into a new snapshot for every piece.
 */
export const catchUpPieceBytesMax = 96 * 1024
/** Catch-up pieces sent before the sender lets other work run (heartbeats, writes). */
export const catchUpPiecesPerTurn = 8

// Relations between limits, checked once at module load.
if (snapshotChunkBytesMax >= storedValueBytesMax) throw new Error('snapshot chunk over value limit')
if (updateBytesMax > storedValueBytesMax) throw new Error('update over value limit')
if (catchUpPieceBytesMax >= updateBytesMax) throw new Error('catch-up pieces over one log row')
if (catchUpPieceBytesMax > frameBytesMax) throw new Error('catch-up pieces over the frame limit')
if (fragmentBytesMax >= 1024 * 1024) throw new Error('fragments must fit a WebSocket message')
if (heartbeatIntervalMs * 3 > heartbeatTimeoutMs) throw new Error('heartbeat timeout under 3 beats')
if (leaseDriftRate <= 0 || leaseDriftRate >= 0.5) throw new Error('lease drift bound out of range')
if (leaseDurationMsDefault < leaseDurationMsMin) throw new Error('lease default under minimum')
if (ledgerPageLimitDefault > ledgerPageLimitMax) throw new Error('ledger page default over max')
if (keyRateBurstDefault > keyRateMax || keyRatePerSecondDefault > keyRateMax)
  throw new Error('key rate default over max')
if (shardCountDefault > shardCountMax) throw new Error('shard count default over max')
