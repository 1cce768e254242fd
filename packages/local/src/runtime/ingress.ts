// The local ingress: routes by Host (`{service}.{namespace}.{domain}`,
// `{tag}-{service}...`, or plain localhost) to a revision chosen by the
// route's traffic split, and sends the request to the activator with the
// Knative-Serving-Namespace/-Revision headers a Knative ingress adds.

import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import type { Pool as PoolType } from 'undici'
import { clientIp } from '@sluice/core/http/client-ip'
import { ProxyExchange } from '@sluice/core/http/proxy-exchange'
import { upstreamErrorText } from '@sluice/core/http/upstream-errors'

const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof PoolType

export interface RouteTarget {
  namespace: string
  revision: string
  timeoutSeconds: number
}

export interface IngressOptions {
  /** Picks the revision for a Host, or null (404). */
  route: (host: string) => RouteTarget | null
  activatorPort: number
  onRequest?: (target: RouteTarget) => void
  /** A request finished (answered or failed): the dashboard's rate and latency. */
  onResponse?: (target: RouteTarget, ms: number, status: number) => void
}

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect', 'host', 'x-forwarded-for', 'knative-serving-namespace', 'knative-serving-revision'])

class IngressExchange extends ProxyExchange {
  private readonly origin: string
  private readonly done: (ex: IngressExchange) => void
  target: RouteTarget | null = null
  constructor(req: http.IncomingMessage, res: http.ServerResponse, origin: string, done: (ex: IngressExchange) => void) {
    super(req, res, false, performance.now())
    this.origin = origin
    this.done = done
  }

  send(pool: PoolType, target: RouteTarget): void {
    this.target = target
    const req = this.req as http.IncomingMessage
    const raw = req.rawHeaders
    const headers: string[] = []
    let hasBody = false
    let xff = ''
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!.toLowerCase()
      if (n === 'content-length' && raw[i + 1] !== '0') hasBody = true
      if (n === 'transfer-encoding') hasBody = true
      if (n === 'x-forwarded-for') xff = xff === '' ? raw[i + 1]! : `${xff}, ${raw[i + 1]}`
      if (!HOP.has(n)) headers.push(raw[i]!, raw[i + 1]!)
    }
    const ip = clientIp(req.socket.remoteAddress)
    headers.push('host', req.headers.host ?? '', 'x-forwarded-for', xff === '' ? ip : `${xff}, ${ip}`,
      'knative-serving-namespace', target.namespace, 'knative-serving-revision', target.revision)
    // The activator bounds the request by the revision timeout; this is a backstop.
    this.startTimers({ totalMs: (target.timeoutSeconds + 5) * 1000, startMs: 0, idleMs: 0, message: 'upstream request timeout' })
    this.dispatchTo(pool, undefined, req.url!, headers, hasBody)
  }

  protected upstreamFailed(err: Error): string {
    return upstreamErrorText(err, this.origin)
  }

  closed(): void {
    this.finish()
    this.done(this)
  }
}

export class Ingress {
  private server: http.Server | null = null
  private readonly pool: PoolType
  private readonly origin: string
  private readonly opts: IngressOptions
  active = 0

  constructor(opts: IngressOptions) {
    this.opts = opts
    this.origin = `http://127.0.0.1:${opts.activatorPort}`
    this.pool = new Pool(this.origin, { headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 30_000, connections: null })
  }

  async listen(port: number, host: string): Promise<number> {
    const onResponse = this.opts.onResponse
    const done = (ex: IngressExchange): void => {
      this.active--
      if (onResponse !== undefined && ex.target !== null) onResponse(ex.target, performance.now() - ex.startedAt, (ex.res as http.ServerResponse).statusCode)
    }
    this.server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 5000 }, (req, res) => {
      const target = this.opts.route(req.headers.host ?? '')
      if (target === null) {
        res.writeHead(404, { 'content-length': 0 })
        res.end()
        return
      }
      this.active++
      this.opts.onRequest?.(target)
      new IngressExchange(req, res, this.origin, done).send(this.pool, target)
    })
    this.server.listen(port, host)
    await once(this.server, 'listening')
    return (this.server.address() as net.AddressInfo).port
  }

  async close(): Promise<void> {
    if (this.server !== null) {
      this.server.closeAllConnections()
      await new Promise<void>((r) => this.server!.close(() => r()))
    }
    await this.pool.close()
  }
}
