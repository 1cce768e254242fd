// Connection pools to queue-proxies, one pool per pod (undici Agent):
// HTTP/1.1 for HTTP/1 requests, h2c for HTTP/2 ones (mirroring the inbound
// protocol, as Knative's auto transport). Revision timeouts bound requests,
// so undici's own timeouts are off. With system-internal-tls, requests go
// through `tls` instead (tls/internal-tls.ts).

import { createRequire } from 'node:module'
import type { Agent as AgentType } from 'undici'
import type { Upstreams } from './context.ts'

// undici's index loads fetch, websockets, caches... (~60 ms); only Agent is needed.
const Agent = createRequire(import.meta.url)('undici/lib/dispatcher/agent.js') as typeof AgentType

const COMMON = {
  headersTimeout: 0,
  bodyTimeout: 0,
  keepAliveTimeout: 30_000,
  strictContentLength: false,
  connect: { timeout: 10_000, keepAlive: true, keepAliveInitialDelay: 5_000, noDelay: true },
}

/** `maxHeaderBytes`: the largest response head a pod may send (as large as a request head may be). */
export function createUpstreams(maxHeaderBytes: number): Upstreams {
  const h1 = new Agent({ ...COMMON, pipelining: 1, maxHeaderSize: maxHeaderBytes })
  let h2: AgentType | null = null
  return {
    h1,
    tls: null,
    get h2() {
      h2 ??= new Agent({ ...COMMON, maxHeaderSize: maxHeaderBytes, allowH2: true, useH2c: true, h2Options: { useH2c: true, maxConcurrentStreams: 1000 } } as AgentType.Options)
      return h2
    },
    async close() {
      await Promise.all([h1.close(), h2?.close(), this.tls?.close()])
    },
  }
}
