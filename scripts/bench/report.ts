// The suite's outputs: plain-text tables for the terminal, one markdown report, and SVG charts
// drawn from the figures (no chart library: a few lines of SVG say what a curve says).

import type { SectionResult, Table } from './context'

export type SuiteDocument = {
  startedAt: string
  seconds: number
  mode: string
  machine: Record<string, unknown>
  sections: { id: string; title: string; seconds: number; result?: SectionResult; error?: string }[]
}

function pad(table: Table): string[] {
  const widths = table.columns.map((column, i) =>
    Math.max(column.length, ...table.rows.map((row) => (row[i] ?? '').length)),
  )
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  ')
  return [line(table.columns), widths.map((w) => '-'.repeat(w)).join('  '), ...table.rows.map(line)]
}

export function textTables(title: string, result: SectionResult): string {
  const parts = [`\n== ${title}`]
  for (const table of result.tables) parts.push(`\n${table.title}`, ...pad(table))
  for (const finding of result.findings ?? []) parts.push(`* ${finding}`)
  return parts.join('\n')
}

const escapeCell = (text: string) => text.replace(/\|/g, '\\|')

export function markdownTable(table: Table): string {
  return [
    `| ${table.columns.map(escapeCell).join(' | ')} |`,
    `| ${table.columns.map(() => '---').join(' | ')} |`,
    ...table.rows.map((row) => `| ${row.map(escapeCell).join(' | ')} |`),
  ].join('\n')
}

export type Series = {
  name: string
  points: [number, number][]
  dashed?: boolean
  /** A colour of its own; by default one per series in turn. */
  colour?: string
}

/**
 * A line chart with a log-free linear x axis and a linear y axis from 0, one colour per series,
 * points marked, a legend; the axes are labelled with their units.
 */
export function lineChart(options: {
  title: string
  xLabel: string
  yLabel: string
  series: Series[]
  /** A horizontal reference line (a target), if any. */
  reference?: { y: number; label: string }
  /** A logarithmic y axis from 1 (for curves with a knee that dwarfs the rest). */
  logY?: boolean
}): string {
  const width = 720
  const height = 420
  const margin = { left: 70, right: 190, top: 40, bottom: 55 }
  const plotW = width - margin.left - margin.right
  const plotH = height - margin.top - margin.bottom
  const xs = options.series.flatMap((s) => s.points.map(([x]) => x))
  const ys = options.series.flatMap((s) => s.points.map(([, y]) => y))
  const xMin = Math.min(0, ...xs)
  const xMax = niceCeiling(Math.max(1, ...xs))
  const yTop = Math.max(1, ...ys, options.reference?.y ?? 0) * 1.05
  const logY = options.logY === true
  const yMax = logY ? 10 ** Math.ceil(Math.log10(yTop)) : niceCeiling(yTop)
  const px = (x: number) => margin.left + ((x - xMin) / (xMax - xMin)) * plotW
  const py = (y: number) =>
    margin.top + plotH - (logY ? Math.log10(Math.max(1, y)) / Math.log10(yMax) : y / yMax) * plotH
  const yTicks = logY
    ? Array.from({ length: Math.log10(yMax) + 1 }, (_, i) => 10 ** i)
    : Array.from({ length: 6 }, (_, i) => (yMax * i) / 5)
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b']
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2 - margin.right / 2}" y="22" text-anchor="middle" font-size="15">${xml(options.title)}</text>`,
  ]
  for (const y of yTicks) {
    parts.push(
      `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`,
      `<text x="${margin.left - 8}" y="${py(y) + 4}" text-anchor="end">${tick(y)}</text>`,
    )
  }
  for (let i = 0; i <= 5; i++) {
    const x = xMin + ((xMax - xMin) * i) / 5
    parts.push(
      `<text x="${px(x)}" y="${margin.top + plotH + 18}" text-anchor="middle">${tick(x)}</text>`,
    )
  }
  parts.push(
    `<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#333"/>`,
    `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${margin.top + plotH}" y2="${margin.top + plotH}" stroke="#333"/>`,
    `<text x="${margin.left + plotW / 2}" y="${height - 12}" text-anchor="middle">${xml(options.xLabel)}</text>`,
    `<text transform="translate(18 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${xml(options.yLabel)}</text>`,
  )
  if (options.reference !== undefined) {
    const y = py(options.reference.y)
    parts.push(
      `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y}" y2="${y}" stroke="#888" stroke-dasharray="2 4"/>`,
      `<text x="${margin.left + plotW - 4}" y="${y - 5}" text-anchor="end" fill="#666">${xml(options.reference.label)}</text>`,
    )
  }
  options.series.forEach((series, i) => {
    const colour = series.colour ?? colours[i % colours.length]!
    const points = [...series.points].sort((a, b) => a[0] - b[0])
    const path = points.map(
      ([x, y], j) => `${j === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`,
    )
    parts.push(
      `<path d="${path.join(' ')}" fill="none" stroke="${colour}" stroke-width="2"${series.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
      ...points.map(
        ([x, y]) =>
          `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3.5" fill="${colour}"/>`,
      ),
    )
    const ly = margin.top + 10 + i * 20
    const lx = margin.left + plotW + 16
    parts.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"${series.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${lx + 30}" y="${ly + 4}">${xml(series.name)}</text>`,
    )
  })
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

function niceCeiling(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value))
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude
  return 10 * magnitude
}

const tick = (value: number) =>
  Math.abs(value) >= 1000 ? `${Math.round(value / 100) / 10}k` : `${Math.round(value * 10) / 10}`

const xml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

type FigureLike = { median: number }

/**
 * The charts drawn from a run's figures (file name → SVG): the lag curve of section 3, and
 * memory against shard size of section 5. Works on a results JSON as well as on a live run.
 */
export function chartsOf(document: SuiteDocument): Record<string, string> {
  const charts: Record<string, string> = {}
  const figuresOf = (id: string) =>
    document.sections.find((section) => section.id === id)?.result?.figures as
      Record<string, any> | undefined
  const lag = figuresOf('lag')
  if (lag !== undefined) {
    const curves = new Map<string, { p50: [number, number][]; p99: [number, number][] }>()
    for (const [key, value] of Object.entries(lag)) {
      const match = /^(\d+ nodes) (\d+)\/s$/.exec(key)
      if (match === null) continue
      const curve = curves.get(match[1]!) ?? { p50: [], p99: [] }
      curves.set(match[1]!, curve)
      curve.p50.push([Number(match[2]), (value.p50 as FigureLike).median])
      curve.p99.push([Number(match[2]), (value.p99 as FigureLike).median])
    }
    const colours = ['#1f77b4', '#d62728', '#2ca02c']
    const series = [...curves].flatMap(([mesh, curve], i) => [
      { name: `${mesh} p99`, points: curve.p99, colour: colours[i % colours.length]! },
      {
        name: `${mesh} p50`,
        points: curve.p50,
        colour: colours[i % colours.length]!,
        dashed: true,
      },
    ])
    charts['lag.svg'] = lineChart({
      title: 'Replication lag vs steady write rate',
      xLabel: 'deposits per second over the mesh',
      yLabel: 'lag to another node, ms (median of runs, log scale)',
      series,
      logY: true,
      reference: { y: 50, label: 'target p99 50 ms' },
    })
  }
  const recovery = figuresOf('recovery')
  const sizes = (recovery?.sizes ?? []) as { encodedBytes: number; rss: FigureLike }[]
  if (sizes.length > 1) {
    const empty = sizes[0]!.rss.median / 1e6
    charts['recovery.svg'] = lineChart({
      title: 'Node memory vs shard document size',
      xLabel: 'shard document, MB encoded',
      yLabel: 'workerd resident memory, MB',
      series: [
        {
          name: 'workerd RSS',
          points: sizes.map((s) => [s.encodedBytes / 1e6, s.rss.median / 1e6]),
        },
        {
          name: 'target: empty + 4x',
          points: sizes.map((s) => [s.encodedBytes / 1e6, empty + (4 * s.encodedBytes) / 1e6]),
          dashed: true,
          colour: '#888',
        },
      ],
      reference: { y: 128, label: 'a deployed isolate: 128 MB (heap alone)' },
    })
  }
  return charts
}

export function markdownReport(document: SuiteDocument): {
  text: string
  charts: Record<string, string>
} {
  const lines = [
    `# clearmesh benchmarks: ${document.mode} run of ${document.startedAt}`,
    '',
    `Machine: ${Object.entries(document.machine)
      .map(([key, value]) => `${key} ${String(value)}`)
      .join('; ')}. Whole suite: ${document.seconds} s.`,
    '',
    'Every figure is the median of its runs with the spread (min–max) in brackets; every ratio is',
    'taken run by run between measurements made side by side in this invocation.',
  ]
  for (const section of document.sections) {
    lines.push('', `## ${section.title}`, '', `(${section.seconds} s)`)
    if (section.error !== undefined) {
      lines.push('', 'Failed:', '', '```', section.error, '```')
      continue
    }
    for (const table of section.result?.tables ?? []) {
      lines.push('', `${table.title}:`, '', markdownTable(table))
    }
    const findings = section.result?.findings ?? []
    if (findings.length > 0) lines.push('', ...findings.map((finding) => `- ${finding}`))
  }
  const charts = chartsOf(document)
  if (Object.keys(charts).length > 0) {
    lines.push('', '## Charts', '', ...Object.keys(charts).map((name) => `![${name}](${name})`))
  }
  return { text: lines.join('\n') + '\n', charts }
}
