// Keep-alive connection pools to the user container (spec §1.10): HTTP/1.1
// for HTTP/1 requests, h2c with prior knowledge for HTTP/2 ones, so the
// upstream protocol mirrors the inbound one. Revision timeouts bound requests,
// so undici's own header/body timeouts are off.

import { createRequire } from 'node:module'
import type { Pool as PoolType } from 'undici'

// undici's index loads fetch, websockets, caches... (~60 ms); the queue-proxy
// needs only Pool (~20 ms), so it loads that module alone.
const { Pool } = { Pool: createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType }

export interface Upstreams {
  readonly h1: PoolType
  /** Created on the first HTTP/2 request. */
  readonly h2: PoolType
  readonly origin: string
  close(): Promise<void>
}

const COMMON = {
  headersTimeout: 0,
  bodyTimeout: 0,
  // The user container may close idle connections after ~5 s (Node's default).
  keepAliveTimeout: 4_000,
  strictContentLength: false,
}

/** `maxHeaderBytes`: the largest response head the app may send (as large as a request head may be). */
export function createUpstreams(host: string, port: number, maxHeaderBytes: number): Upstreams {
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  const connect = { timeout: 10_000, keepAlive: true, keepAliveInitialDelay: 5_000, noDelay: true }
  const h1 = new Pool(origin, { ...COMMON, connect, connections: null, pipelining: 1, maxHeaderSize: maxHeaderBytes })
  let h2: PoolType | null = null
  return {
    h1,
    get h2() {
      // Pool reads useH2c at the top level for its connector; clients read h2Options.
      h2 ??= new Pool(origin, { ...COMMON, connect, connections: null, maxHeaderSize: maxHeaderBytes, allowH2: true, useH2c: true, h2Options: { useH2c: true, maxConcurrentStreams: 1000 } } as PoolType.Options)
      return h2
    },
    origin,
    async close() {
      await Promise.all([h1.close(), h2?.close()])
    },
  }
}
