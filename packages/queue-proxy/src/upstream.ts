// Keep-alive connection pools to the user container (spec §1.10): HTTP/1.1
// for HTTP/1 requests, h2c with prior knowledge for HTTP/2 ones, so the
// upstream protocol mirrors the inbound one. Revision timeouts bound requests,
// so undici's own header/body timeouts are off.

import { Pool } from 'undici'

export interface Upstreams {
  readonly h1: Pool
  readonly h2: Pool
  readonly origin: string
  close(): Promise<void>
}

export function createUpstreams(host: string, port: number): Upstreams {
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  const common = {
    headersTimeout: 0,
    bodyTimeout: 0,
    connect: { timeout: 10_000, keepAlive: true, keepAliveInitialDelay: 5_000, noDelay: true },
    // The user container may close idle connections after ~5 s (Node's default).
    keepAliveTimeout: 4_000,
    strictContentLength: false,
  }
  const h1 = new Pool(origin, { ...common, connections: null, pipelining: 1 })
  // Pool reads useH2c at the top level for its connector; clients read h2Options.
  const h2 = new Pool(origin, { ...common, connections: null, allowH2: true, useH2c: true, h2Options: { useH2c: true, maxConcurrentStreams: 1000 } } as Pool.Options)
  return {
    h1,
    h2,
    origin,
    async close() {
      await Promise.all([h1.close(), h2.close()])
    },
  }
}
