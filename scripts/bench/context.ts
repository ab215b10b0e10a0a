// What the suite hands every section, and the rows a section hands back: one figure per row
// (median of the runs with their spread), with the comparison that gives it meaning.

export type Mode = 'quick' | 'full'

export type Options = {
  mode: Mode
  /** Runs behind every figure (at least 3). */
  runs: number
  /** Length of each load run, seconds. */
  seconds: number
  /** Closed-loop connections of a throughput run (autocannon -c). */
  connections: number
  /** Steady write rates of the lag curve, writes per second over the whole mesh. */
  lagRates: number[]
  lagMeshSizes: number[]
  /** Divergent operations per side of a split. */
  divergentOps: number[]
  /** Shard document sizes of the recovery section, MB. */
  shardMegabytes: number[]
  /** One-way delays of the three client groups (edge vs central), ms. */
  groupDelaysMs: number[]
  /** One-way delay between a client and the edge node nearest it, ms. */
  edgeDelayMs: number
  /** Length of the partition of the issue-5 catch-up figure, seconds. */
  partitionSeconds: number
  /** Steady rate of the issue-5 figures, writes per second over the mesh. */
  closingRate: number
  /** Working folder (data folders, load specs); removed at the end. */
  tmpDir: string
}

/** One table of a section: a header and rows of cells already formatted. */
export type Table = { title: string; columns: string[]; rows: string[][] }

export type SectionResult = {
  tables: Table[]
  /** Every figure measured (median, spread, runs), for the JSON file and the chart. */
  figures: Record<string, unknown>
  /** What bounds the figures, found while measuring (printed under the tables). */
  findings?: string[]
}

export type Section = {
  id: string
  title: string
  run(options: Options): Promise<SectionResult>
}
