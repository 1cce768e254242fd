// `sluice load`: a small closed-loop load for the dev loop (no hey or ab
// needed): N workers over keep-alive connections, each sending its next
// request when the last is answered, for a duration; one line a second with
// the rate, latency percentiles and status codes, then a summary.

import http from 'node:http'

export interface LoadOptions {
  url: string
  /** Host header (a Service's host); the URL's own when empty. */
  host: string
  concurrency: number
  durationMs: number
  print: (line: string) => void
}

export interface LoadSummary {
  requests: number
  /** By status code, or the error's code/message. */
  outcomes: Record<string, number>
}

export async function runLoad(o: LoadOptions): Promise<LoadSummary> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency })
  const summary: LoadSummary = { requests: 0, outcomes: {} }
  let second: number[] = []
  let secondOutcomes: Record<string, number> = {}
  const deadline = performance.now() + o.durationMs
  const count = (what: string, ms: number): void => {
    summary.requests++
    summary.outcomes[what] = (summary.outcomes[what] ?? 0) + 1
    secondOutcomes[what] = (secondOutcomes[what] ?? 0) + 1
    second.push(ms)
  }
  const one = (): Promise<void> => new Promise((resolve) => {
    const started = performance.now()
    const req = http.get(o.url, { agent, headers: o.host === '' ? {} : { host: o.host } }, (res) => {
      res.resume()
      res.on('end', () => {
        count(String(res.statusCode), performance.now() - started)
        resolve()
      })
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      count(err.code ?? err.message, performance.now() - started)
      resolve()
    })
  })
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) await one()
  }
  const timer = setInterval(() => {
    const lat = second.sort((a, b) => a - b)
    const p = (q: number) => (lat.length === 0 ? '-' : lat[Math.min(lat.length - 1, Math.ceil(q * lat.length) - 1)]!.toFixed(0))
    o.print(`${lat.length} req/s  p50 ${p(0.5)} ms  p99 ${p(0.99)} ms  ${JSON.stringify(secondOutcomes)}`)
    second = []
    secondOutcomes = {}
  }, 1000)
  await Promise.all(Array.from({ length: o.concurrency }, worker))
  clearInterval(timer)
  agent.destroy()
  o.print(`${summary.requests} requests: ${JSON.stringify(summary.outcomes)}`)
  return summary
}
