// The Prometheus text format as GET /metrics writes it: HELP and TYPE lines, label escaping,
// cumulative histogram buckets ending in +Inf, _sum and _count; and histograms that add up.

import { describe, expect, it } from 'vitest'
import { escapeLabelValue, format, formatValue } from '../../src/api/metrics/exposition'
import * as histogram from '../../src/histogram'

describe('format', () => {
  it('writes HELP and TYPE once per family, then its samples', () => {
    const text = format([
      {
        name: 'jobs_total',
        help: 'Jobs done',
        type: 'counter',
        samples: [
          { labels: { queue: 'a' }, value: 3 },
          { labels: { queue: 'b' }, value: 0 },
        ],
      },
      { name: 'depth', help: 'Depth', type: 'gauge', samples: [{ labels: {}, value: 1.5 }] },
    ])
    expect(text).toBe(
      [
        '# HELP jobs_total Jobs done',
        '# TYPE jobs_total counter',
        'jobs_total{queue="a"} 3',
        'jobs_total{queue="b"} 0',
        '# HELP depth Depth',
        '# TYPE depth gauge',
        'depth 1.5',
        '',
      ].join('\n'),
    )
  })

  it('escapes backslash, double quote and line feed in label values, and HELP text', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd')
    const text = format([
      {
        name: 'm',
        help: 'line one\nback\\slash "quoted"',
        type: 'gauge',
        samples: [{ labels: { path: 'C:\\x"y"\nz' }, value: 1 }],
      },
    ])
    expect(text).toContain('# HELP m line one\\nback\\\\slash "quoted"\n')
    expect(text).toContain('m{path="C:\\\\x\\"y\\"\\nz"} 1\n')
    expect(text.split('\n')).toHaveLength(4)
  })

  it('writes cumulative buckets, +Inf, _sum and _count for a histogram', () => {
    const latency = histogram.create([1, 5, 10])
    for (const ms of [0.5, 1, 3, 7, 12, 40]) histogram.observe(latency, ms)
    const text = format([
      {
        name: 'req_ms',
        help: 'Latency',
        type: 'histogram',
        samples: [{ labels: { route: '/x/:id' }, histogram: latency }],
      },
    ])
    expect(text.split('\n')).toEqual([
      '# HELP req_ms Latency',
      '# TYPE req_ms histogram',
      'req_ms_bucket{route="/x/:id",le="1"} 2',
      'req_ms_bucket{route="/x/:id",le="5"} 3',
      'req_ms_bucket{route="/x/:id",le="10"} 4',
      'req_ms_bucket{route="/x/:id",le="+Inf"} 6',
      'req_ms_sum{route="/x/:id"} 63.5',
      'req_ms_count{route="/x/:id"} 6',
      '',
    ])
  })

  it('formats special values the way Prometheus reads them', () => {
    expect(formatValue(NaN)).toBe('NaN')
    expect(formatValue(Infinity)).toBe('+Inf')
    expect(formatValue(-Infinity)).toBe('-Inf')
    expect(formatValue(-2)).toBe('-2')
  })

  it('refuses invalid metric and label names, and a family named twice', () => {
    const gauge = (name: string, labels = {}) => ({
      name,
      help: 'h',
      type: 'gauge' as const,
      samples: [{ labels, value: 1 }],
    })
    expect(() => format([gauge('bad-name')])).toThrow(/metric name/)
    expect(() => format([gauge('ok', { 'bad-label': 'x' })])).toThrow(/label name/)
    expect(() => format([gauge('twice'), gauge('twice')])).toThrow(/appears once/)
    expect(format([])).toBe('')
  })
})

describe('histogram', () => {
  it('puts a value on a bound into that bucket and one above every bound into +Inf', () => {
    const h = histogram.create([1, 2])
    histogram.observe(h, 1)
    histogram.observe(h, 2.5)
    expect(h.counts).toEqual([1, 0, 1])
    expect(h).toMatchObject({ sum: 3.5, count: 2 })
  })

  it('adds histograms with the same bounds, and refuses others', () => {
    const a = histogram.create([1, 2])
    const b = histogram.create([1, 2])
    histogram.observe(a, 0.5)
    histogram.observe(b, 1.5)
    histogram.observe(b, 9)
    histogram.add(a, b)
    expect(a.counts).toEqual([1, 1, 1])
    expect(a).toMatchObject({ sum: 11, count: 3 })
    expect(() => histogram.add(a, histogram.create([1, 3]))).toThrow(/share their bounds/)
  })
})
