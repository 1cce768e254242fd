// Upstream response headers as sent to the client: hop-by-hop headers removed
// (they are per connection, and HTTP/2 forbids them), everything else kept,
// duplicates (Set-Cookie) preserved.

import type { IncomingHttpHeaders } from 'node:http'

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te'])

/** Flat [name, value, ...] for http1 writeHead. */
export function responseHeaderList(headers: IncomingHttpHeaders): string[] {
  const out: string[] = []
  for (const name in headers) {
    const v = headers[name]
    if (v === undefined || HOP_BY_HOP.has(name)) continue
    if (typeof v === 'string') out.push(name, v)
    else for (let i = 0; i < v.length; i++) out.push(name, v[i]!)
  }
  return out
}

/** Object form for the http2 compat API (which takes header objects). */
export function responseHeaderObject(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const name in headers) {
    const v = headers[name]
    if (v === undefined || HOP_BY_HOP.has(name)) continue
    out[name] = v
  }
  return out
}
