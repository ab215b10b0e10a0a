// The Prometheus text exposition format, version 0.0.4: one HELP and one TYPE line per metric
// family, then its samples; a histogram's buckets are cumulative and end with `le="+Inf"`, then
// `_sum` and `_count`. Pure: families in, text out.
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format

import { assert } from '../../domain/assert'
import type { Histogram } from '../../histogram'

export const contentType = 'text/plain; version=0.0.4; charset=utf-8'

export type Labels = Record<string, string>

export type Family =
  | {
      name: string
      help: string
      type: 'counter' | 'gauge'
      samples: { labels: Labels; value: number }[]
    }
  | {
      name: string
      help: string
      type: 'histogram'
      samples: { labels: Labels; histogram: Histogram }[]
    }

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/** A label value inside double quotes: backslash, double quote and line feed are escaped. */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

/** HELP text escapes only backslash and line feed. */
const escapeHelp = (help: string): string => help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels)
  if (pairs.length === 0) return ''
  for (const [name] of pairs) assert(labelName.test(name), `label name ${name} is valid`)
  return `{${pairs.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',')}}`
}

function histogramLines(name: string, labels: Labels, histogram: Histogram): string[] {
  const lines: string[] = []
  let cumulative = 0
  histogram.bounds.forEach((bound, i) => {
    cumulative += histogram.counts[i]!
    lines.push(`${name}_bucket${formatLabels({ ...labels, le: formatValue(bound) })} ${cumulative}`)
  })
  lines.push(`${name}_bucket${formatLabels({ ...labels, le: '+Inf' })} ${histogram.count}`)
  lines.push(`${name}_sum${formatLabels(labels)} ${formatValue(histogram.sum)}`)
  lines.push(`${name}_count${formatLabels(labels)} ${histogram.count}`)
  return lines
}

/** The exposition of every family, in order; each name may appear once. */
export function format(families: Family[]): string {
  const names = new Set<string>()
  const lines: string[] = []
  for (const family of families) {
    assert(metricName.test(family.name), `metric name ${family.name} is valid`)
    assert(!names.has(family.name), `metric ${family.name} appears once`)
    names.add(family.name)
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    lines.push(`# TYPE ${family.name} ${family.type}`)
    if (family.type === 'histogram') {
      for (const { labels, histogram } of family.samples)
        lines.push(...histogramLines(family.name, labels, histogram))
    } else {
      for (const { labels, value } of family.samples)
        lines.push(`${family.name}${formatLabels(labels)} ${formatValue(value)}`)
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`
}
