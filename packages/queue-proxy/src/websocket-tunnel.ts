// HTTP/1.1 Upgrade requests (websockets) tunnelled to the user container as
// raw TCP (Go's reverse proxy hijacks the same way, spec §1.10). The tunnel
// counts as one in-flight request (stats and breaker slot) until it closes,
// and the revision timeouts bound it: total and response-start cut the
// session (Knative's timeout writer never sees the hijacked 101, so its
// response-start timer keeps running, spec §1.9); idle is measured on traffic.
// Until the app's first byte the client gets Go-like 502/504 answers.

import type http from 'node:http'
import net from 'node:net'
import { Acquire, type BreakerWaiter } from '@sluice/core/breaker'
import { Body } from '@sluice/core/constants'
import type { QueueContext } from './context.ts'
import { clientIp } from '@sluice/core/http/client-ip'
import { originFormTarget, scanRequestHeaders, type ScannedRequest } from './request-headers.ts'
import { upstreamErrorText } from '@sluice/core/http/upstream-errors'

const kTunnel = Symbol('sluice.tunnel')
interface Tagged { [kTunnel]?: Tunnel }

export class Tunnel implements ScannedRequest, BreakerWaiter {
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

  private readonly ctx: QueueContext
  private readonly req: http.IncomingMessage
  private readonly client: net.Socket
  private readonly head: Buffer
  private upstream: net.Socket | null = null
  private holdsSlot = false
  private done = false
  /** The app sent its first byte (the upgrade response); only then are the sides spliced. */
  private responded = false
  private lastTrafficAt: number
  private totalTimer: NodeJS.Timeout
  private idleTimer: NodeJS.Timeout | null = null

  constructor(ctx: QueueContext, req: http.IncomingMessage, client: net.Socket, head: Buffer) {
    this.ctx = ctx
    this.req = req
    this.client = client
    this.head = head
    this.lastTrafficAt = performance.now()
    ;(client as Tagged)[kTunnel] = this
    ctx.active++
    ctx.drainer.touch()
    scanRequestHeaders(req.rawHeaders, clientIp(client.remoteAddress), this)
    ctx.stats.requestIn(this.lastTrafficAt, this.proxied)
    const { revisionTimeoutMs, responseStartTimeoutMs } = ctx.cfg
    const limit = responseStartTimeoutMs > 0 && responseStartTimeoutMs < revisionTimeoutMs ? responseStartTimeoutMs : revisionTimeoutMs
    this.totalTimer = setTimeout(onTunnelTimeout, limit, this)
    if (ctx.cfg.idleTimeoutMs > 0) this.idleTimer = setTimeout(onTunnelIdle, ctx.cfg.idleTimeoutMs, this)
    client.on('close', onClientClose)
    client.on('error', onSocketError)
  }

  start(): void {
    const breaker = this.ctx.breaker
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
    if (this.done) return this.close()
    this.connect()
  }

  private connect(): void {
    const { cfg } = this.ctx
    const up = net.connect({ host: cfg.userHost, port: cfg.userPort, noDelay: true })
    ;(up as Tagged)[kTunnel] = this
    this.upstream = up
    up.on('connect', onUpstreamConnect)
    up.on('error', onUpstreamError)
    up.on('close', onUpstreamClose)
  }

  /** @internal */
  upstreamConnected(): void {
    const up = this.upstream!
    const req = this.req
    let target = req.url!
    if (target.charCodeAt(0) !== 47 /* '/' */) target = originFormTarget(this, target, (req.headers['k-original-host'] ?? '') !== '')
    let head = `${req.method} ${target} HTTP/1.1\r\n`
    const h = this.upstreamHeaders
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`
    head += `connection: upgrade\r\nupgrade: ${req.headers.upgrade}\r\n\r\n`
    up.write(head)
    if (this.head.length > 0) up.write(this.head)
    up.once('data', onFirstUpstreamData)
    up.on('data', onTraffic)
    this.client.on('data', onTraffic)
    this.client.pipe(up)
  }

  /** @internal The upgrade response started: from here on bytes flow as they come. */
  upstreamResponded(chunk: Buffer): void {
    if (this.done) return
    this.responded = true
    this.client.write(chunk)
    this.upstream!.pipe(this.client)
  }

  /** @internal */
  upstreamClosed(): void {
    // Closed before answering: Go's transport reports EOF.
    if (!this.responded && !this.done) return this.replyAndClose(502, 'EOF\n')
    this.close()
  }

  /** @internal */
  upstreamFailed(err: Error): void {
    if (this.responded) return this.close()
    this.ctx.log.error({ err: err.message }, 'error reverse proxying upgrade request')
    this.replyAndClose(502, upstreamErrorText(err, `http://${this.ctx.cfg.userHost}:${this.ctx.cfg.userPort}`) + '\n')
  }

  /** @internal */
  traffic(): void {
    this.lastTrafficAt = performance.now()
  }

  /** @internal */
  timeout(idle: boolean): void {
    if (this.done) return
    if (idle) {
      const since = performance.now() - this.lastTrafficAt
      const limit = this.ctx.cfg.idleTimeoutMs
      if (since < limit) {
        this.idleTimer = setTimeout(onTunnelIdle, limit - since, this)
        return
      }
    }
    if (!this.responded) return this.replyAndClose(504, Body.requestTimeout)
    this.close()
  }

  private replyAndClose(status: number, body: string): void {
    const reason = status === 503 ? 'Service Unavailable' : status === 504 ? 'Gateway Timeout' : 'Bad Gateway'
    // 502 and 503 come from Go's http.Error (nosniff); the timeout handler's 504 does not.
    const nosniff = status === 504 ? '' : 'x-content-type-options: nosniff\r\n'
    if (this.client.writable) {
      this.client.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\n${nosniff}connection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    }
    this.close()
  }

  /** Ends both sides and accounts the tunnel as finished; idempotent. */
  close(): void {
    if (this.breakerQueued === true) this.ctx.breaker!.cancel(this)
    if (this.holdsSlot) {
      this.holdsSlot = false
      this.ctx.breaker!.release()
    }
    if (this.done) return
    this.done = true
    clearTimeout(this.totalTimer)
    if (this.idleTimer !== null) clearTimeout(this.idleTimer)
    if (this.upstream !== null) this.upstream.destroy()
    if (!this.client.writableEnded) this.client.end()
    this.client.destroySoon()
    const ctx = this.ctx
    ctx.stats.requestOut(performance.now(), this.proxied)
    if (--ctx.active === 0 && ctx.onIdle !== null) ctx.onIdle()
  }

  /** Shutdown: cut the tunnel now. */
  destroy(): void {
    this.close()
    this.client.destroy()
  }
}

function tunnelOf(s: net.Socket): Tunnel {
  return (s as Tagged)[kTunnel]!
}
function onClientClose(this: net.Socket): void { tunnelOf(this).close() }
function onUpstreamClose(this: net.Socket): void { tunnelOf(this).upstreamClosed() }
function onFirstUpstreamData(this: net.Socket, chunk: Buffer): void { tunnelOf(this).upstreamResponded(chunk) }
function onUpstreamConnect(this: net.Socket): void { tunnelOf(this).upstreamConnected() }
function onUpstreamError(this: net.Socket, err: Error): void { tunnelOf(this).upstreamFailed(err) }
function onSocketError(this: net.Socket): void { tunnelOf(this).close() }
function onTraffic(this: net.Socket): void { tunnelOf(this).traffic() }
function onTunnelTimeout(t: Tunnel): void { t.timeout(false) }
function onTunnelIdle(t: Tunnel): void { t.timeout(true) }

export function createUpgradeHandler(ctx: QueueContext, tunnels: Set<Tunnel>) {
  return function onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const t = new Tunnel(ctx, req, socket, head)
    tunnels.add(t)
    socket.once('close', () => tunnels.delete(t))
    t.start()
  }
}
