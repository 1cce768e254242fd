// HTTP/1.1 Upgrade requests (websockets) tunnelled to the user container as
// raw TCP (Go's reverse proxy hijacks the same way, spec §1.10). The tunnel
// counts as one in-flight request (stats and breaker slot) until it closes,
// and the revision timeouts bound it: total and response-start cut the
// session (Knative's timeout writer never sees the hijacked 101, so its
// response-start timer keeps running, spec §1.9); idle is measured on traffic.
// Until the app's answer the client gets Go-like 502/504 answers.
//
// The bytes are the relay's (core/http/upgrade-relay.ts): only a 101 for the
// requested protocol opens a raw tunnel; any other answer is one ordinary
// response, after which the connection is served as HTTP again.
//
// Traced as any request (request-tracing.ts): the server span, `queue_wait`
// in the breaker, `queue_proxy` around the upstream, whose context goes in the
// upgrade head. They end when the tunnel does (Go's handler returns when the
// hijacked connection closes) with the answer's status: 101, the refusal's,
// or the tunnel's own error.

import type http from 'node:http'
import type net from 'node:net'
import { Acquire, type BreakerWaiter } from '@sluice/core/breaker'
import { Body } from '@sluice/core/constants'
import type { QueueContext } from './context.ts'
import { clientIp } from '@sluice/core/http/client-ip'
import { UpstreamHeadError } from '@sluice/core/http/upgrade-response'
import { clientKeepsAlive, UpgradeRelay, type UpgradeOwner } from '@sluice/core/http/upgrade-relay'
import { originFormTarget, scanRequestHeaders, type ScannedRequest } from './request-headers.ts'
import { upstreamErrorText } from '@sluice/core/http/upstream-errors'
import type { RequestTrace } from '@sluice/core/tracing/tracer'

export class Tunnel implements ScannedRequest, BreakerWaiter, UpgradeOwner {
  userAgent = ''
  networkProbe = ''
  kubeletProbe = false
  proxied = false
  routeTag = ''
  defaultRoute = ''
  hasBody = false
  host = ''
  upstreamHeaders: string[] = []
  breakerQueued?: boolean
  /** Open spans while tracing is on. */
  spans: RequestTrace | null = null

  readonly req: http.IncomingMessage
  private readonly ctx: QueueContext
  private readonly client: net.Socket
  private readonly tunnels: Set<Tunnel>
  private readonly relay: UpgradeRelay
  private holdsSlot = false
  private done = false
  private dialed = false
  /** The status of an answer the tunnel wrote itself (502, 503, 504); 0 when none. */
  private ownStatus = 0
  private totalTimer: NodeJS.Timeout
  private idleTimer: NodeJS.Timeout | null = null

  constructor(ctx: QueueContext, req: http.IncomingMessage, client: net.Socket, head: Buffer, tunnels: Set<Tunnel>) {
    this.ctx = ctx
    this.req = req
    this.client = client
    this.tunnels = tunnels
    tunnels.add(this)
    ctx.active++
    ctx.drainer.touch()
    scanRequestHeaders(req.rawHeaders, clientIp(client.remoteAddress), this)
    // Node's parser rejects a bad or repeated Content-Length; chunked bodies are not forwarded (no Transfer-Encoding goes upstream).
    const bodyLength = req.headers['transfer-encoding'] === undefined ? Number(req.headers['content-length'] ?? 0) : 0
    this.relay = new UpgradeRelay(this, client, head, {
      method: req.method!,
      protocol: req.headers.upgrade ?? '',
      bodyLength,
      keepAlive: clientKeepsAlive(req.httpVersion, req.headers.connection),
      maxHeaderBytes: ctx.cfg.maxHeaderBytes,
    })
    ctx.stats.requestIn(this.relay.lastTrafficAt, this.proxied)
    const { revisionTimeoutMs, responseStartTimeoutMs } = ctx.cfg
    const limit = responseStartTimeoutMs > 0 && responseStartTimeoutMs < revisionTimeoutMs ? responseStartTimeoutMs : revisionTimeoutMs
    this.totalTimer = setTimeout(onTunnelTimeout, limit, this)
    if (ctx.cfg.idleTimeoutMs > 0) this.idleTimer = setTimeout(onTunnelIdle, ctx.cfg.idleTimeoutMs, this)
  }

  start(): void {
    const breaker = this.ctx.breaker
    const tracing = this.ctx.tracing
    if (tracing !== null) tracing.start(this, breaker !== null)
    if (breaker === null) return this.connect()
    const r = breaker.acquire(this)
    if (r === Acquire.acquired) {
      this.holdsSlot = true
      this.connect()
    } else if (r === Acquire.full) {
      this.replyAndClose(503, Body.queueFull)
    }
  }

  onAcquire(): void {
    this.holdsSlot = true
    if (this.done) return this.finish()
    this.connect()
  }

  private connect(): void {
    if (this.spans !== null) this.spans.closeWait()
    this.dialed = true
    const req = this.req
    let target = req.url!
    if (target.charCodeAt(0) !== 47 /* '/' */) target = originFormTarget(this, target, (req.headers['k-original-host'] ?? '') !== '')
    let head = `${req.method} ${target} HTTP/1.1\r\n`
    const h = this.upstreamHeaders
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`
    head += `connection: upgrade\r\nupgrade: ${req.headers.upgrade}\r\n\r\n`
    this.relay.connect({ host: this.ctx.cfg.userHost, port: this.ctx.cfg.userPort }, head)
  }

  upstreamFailed(err: Error): void {
    this.ctx.log.error({ err: err.message }, 'error reverse proxying upgrade request')
    const text = err instanceof UpstreamHeadError ? err.message : upstreamErrorText(err, `http://${this.ctx.cfg.userHost}:${this.ctx.cfg.userPort}`)
    this.replyAndClose(502, text + '\n')
  }

  relayEnded(): void {
    this.finish()
  }

  /** @internal */
  timeout(idle: boolean): void {
    if (this.done) return
    if (idle) {
      const since = performance.now() - this.relay.lastTrafficAt
      const limit = this.ctx.cfg.idleTimeoutMs
      if (since < limit) {
        this.idleTimer = setTimeout(onTunnelIdle, limit - since, this)
        return
      }
    }
    if (this.relay.waiting) return this.replyAndClose(504, Body.requestTimeout)
    this.relay.close()
  }

  private replyAndClose(status: number, body: string): void {
    this.ownStatus = status
    const reason = status === 503 ? 'Service Unavailable' : status === 504 ? 'Gateway Timeout' : 'Bad Gateway'
    // 502 and 503 come from Go's http.Error (nosniff); the timeout handler's 504 does not.
    const nosniff = status === 504 ? '' : 'x-content-type-options: nosniff\r\n'
    if (this.client.writable) {
      this.client.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\n${nosniff}connection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    }
    this.relay.close()
  }

  /** Accounts the tunnel as finished; idempotent. */
  private finish(): void {
    if (this.breakerQueued === true) this.ctx.breaker!.cancel(this)
    if (this.holdsSlot) {
      this.holdsSlot = false
      this.ctx.breaker!.release()
    }
    if (this.done) return
    this.done = true
    this.tunnels.delete(this)
    clearTimeout(this.totalTimer)
    if (this.idleTimer !== null) clearTimeout(this.idleTimer)
    const ctx = this.ctx
    ctx.stats.requestOut(performance.now(), this.proxied)
    if (this.spans !== null) {
      this.spans.end(this.spanStatus())
      this.spans = null
    }
    if (--ctx.active === 0 && ctx.onIdle !== null) ctx.onIdle()
  }

  /**
   * The status the spans record: the tunnel's own answer, else the upstream's
   * (101 or a refusal); with neither (the client left first), what Go's
   * handler would have answered: 502 from the proxy, 500 from the breaker wait.
   */
  private spanStatus(): number {
    if (this.ownStatus !== 0) return this.ownStatus
    const answered = this.relay.answerStatus
    if (answered !== 0) return answered
    return this.dialed ? 502 : 500
  }

  /** Shutdown: cut the tunnel now. */
  destroy(): void {
    this.relay.destroy()
  }
}

function onTunnelTimeout(t: Tunnel): void { t.timeout(false) }
function onTunnelIdle(t: Tunnel): void { t.timeout(true) }

export function createUpgradeHandler(ctx: QueueContext, tunnels: Set<Tunnel>) {
  return function onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    new Tunnel(ctx, req, socket, head, tunnels).start()
  }
}
