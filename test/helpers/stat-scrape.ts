// Reading the autoscaler endpoint (:9090/metrics) the way the autoscaler
// does, and waiting for the reporter's 1 s tick so tests can line traffic up
// with a reporting window.

import http from 'node:http'
import { decodeStat, type Stat } from '@sluice/core/stat-proto'
import { sleep } from './servers.ts'

export interface BinaryResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** A request whose body is kept as bytes (protobuf). */
export function getBinary(url: string, opts: http.RequestOptions = {}): Promise<BinaryResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...opts }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The Stat currently served on the metrics port. */
export async function scrapeStat(metricsPort: number): Promise<Stat> {
  return decodeStat((await getBinary(`http://127.0.0.1:${metricsPort}/metrics`)).body)
}

/**
 * Resolves with the Stat of the window that ends at the next reporter tick.
 * The reported body always changes between ticks (process_uptime grows), so
 * a changed body marks the tick; polling every 5 ms keeps the detection
 * within a few ms of it.
 */
export async function nextStat(metricsPort: number, timeoutMs = 2500): Promise<Stat> {
  const url = `http://127.0.0.1:${metricsPort}/metrics`
  const before = (await getBinary(url)).body
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    await sleep(5)
    const now = (await getBinary(url)).body
    if (!now.equals(before)) return decodeStat(now)
  }
  throw new Error(`no stats report within ${timeoutMs} ms`)
}

/**
 * Records every Stat the reporter publishes until stop() (polling every 5 ms),
 * so a test can sum over windows instead of betting on which window its
 * traffic fell into on a busy machine.
 */
export function collectStats(metricsPort: number): { stats: Stat[]; stop(): Promise<Stat[]> } {
  const url = `http://127.0.0.1:${metricsPort}/metrics`
  const stats: Stat[] = []
  let running = true
  const loop = (async () => {
    let last = (await getBinary(url)).body
    while (running) {
      await sleep(5)
      const now = (await getBinary(url)).body
      if (!now.equals(last)) stats.push(decodeStat(now))
      last = now
    }
  })()
  return {
    stats,
    async stop() {
      running = false
      await loop
      return stats
    },
  }
}
