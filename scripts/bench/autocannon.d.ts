// The part of autocannon 8's programmatic API the suite uses (the package ships no types).
declare module 'autocannon' {
  namespace autocannon {
    type Request = {
      setupRequest?: (request: Record<string, unknown>, context: Record<string, unknown>) => unknown
      onResponse?: (status: number, body: string, context: Record<string, unknown>) => void
    }
    type Options = {
      url: string
      connections?: number
      pipelining?: number
      timeout?: number
      duration?: number
      amount?: number
      requests?: Request[]
    }
    type Histogram = {
      average: number
      max: number
      p50: number
      p90: number
      p99: number
    }
    type Result = {
      duration: number
      errors: number
      timeouts: number
      latency: Histogram
    }
  }
  function autocannon(options: autocannon.Options): Promise<autocannon.Result>
  export default autocannon
}
