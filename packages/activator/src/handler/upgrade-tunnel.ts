// Upgrade requests (websockets) through the activator: identified and
// admitted like any request (reporter + throttler), then tunnelled as raw TCP
// to the chosen queue-proxy with the activator's headers. The tunnel holds its
// pod slot until either side closes; the revision timeout bounds it.
//
// The bytes are the relay's (core/http/upgrade-relay.ts): only the pod's 101
// for the requested protocol opens a raw tunnel; any other answer is one
// ordinary response, after which the connection is served as HTTP again, so a
// later request on it is identified, counted and throttled like any other.
//
// Traced as any request (activation-exchange.ts): the server span,
// `throttler_try` for the wait for capacity, then `activator_proxy`, whose
// context goes in the upgrade head. They end when the tunnel does (Go's
// handler returns when the hijacked connection closes) with the answer's
// status: 101, the pod's refusal, or the tunnel's own error.

import type http from 'node:http'
import type net from 'node:net'
import { clientIp } from '@sluice/core/http/client-ip'
import { UpstreamHeadError } from '@sluice/core/http/upgrade-response'
import { clientKeepsAlive, UpgradeRelay, type UpgradeOwner } from '@sluice/core/http/upgrade-relay'
import { upstreamErrorText } from '@sluice/core/http/upstream-errors'
import type { RequestTrace } from '@sluice/core/tracing/tracer'
import type { ActivatorContext } from '../context.ts'
import type { RejectReason, ThrottleWaiter } from '../net/throttler.ts'
import { revisionKey, type RevisionInfo } from '../revision.ts'
import { identifyRevision } from './context-handler.ts'
import { scanActivatorRequest, type ScannedActivatorRequest } from './request-headers.ts'

class UpgradeTunnel implements ScannedActivatorRequest, ThrottleWaiter, UpgradeOwner {
  userAgent = ''
  kubeletProbe = false
  networkProbe = ''
  networkHash = ''
  revisionNamespace = ''
  revisionName = ''
  host = ''
  contentLength = 0
  upstreamHeaders: string[] = []
  queuedIn?: object | null
  throttleStart?: number
  /** Open spans while tracing is on (the tracer in force when the tunnel started). */
  spans: RequestTrace | null = null

  private readonly ctx: ActivatorContext
  private readonly req: http.IncomingMessage
  private readonly client: net.Socket
  private readonly relay: UpgradeRelay
  private rev: RevisionInfo | null = null
  private dest = ''
  private timer: NodeJS.Timeout | null = null
  private waiting = false
  private holdsSlot = false
  private done = false
  /** The status of an answer the tunnel wrote itself; 0 when none. */
  private ownStatus = 0

  constructor(ctx: ActivatorContext, req: http.IncomingMessage, client: net.Socket, head: Buffer) {
    this.ctx = ctx
    this.req = req
    this.client = client
    ctx.active++
    scanActivatorRequest(req.rawHeaders, clientIp(client.remoteAddress), this)
    this.relay = new UpgradeRelay(this, client, head, {
      method: req.method!,
      protocol: req.headers.upgrade ?? '',
      // Chunked bodies are not forwarded: no Transfer-Encoding goes to the pod.
      bodyLength: this.contentLength > 0 ? this.contentLength : 0,
      keepAlive: clientKeepsAlive(req.httpVersion, req.headers.connection),
      maxHeaderBytes: ctx.cfg.maxHeaderBytes,
    })
  }

  start(): void {
    const found = identifyRevision(this.ctx.source, this.revisionNamespace, this.revisionName, this.host, this.ctx.clusterDomain)
    if (!found.ok) return this.reply(found.status, found.body)
    const rev = found.revision
    this.rev = rev
    this.ctx.reporter.requestIn(rev.namespace, rev.name)
    this.timer = setTimeout(onTunnelTimeout, rev.timeoutSeconds * 1000, this)
    const tracer = this.ctx.tracing
    if (tracer !== null) {
      this.spans = tracer.startRequest(this.req, this.host, this.userAgent, this.upstreamHeaders)
      this.spans.openWait('throttler_try')
    }
    this.waiting = true
    this.ctx.throttler.try(revisionKey(rev.namespace, rev.name), this, 0, rev.timeoutSeconds * 1000)
  }

  onDest(dest: string): void {
    this.waiting = false
    this.holdsSlot = true
    if (this.done) return this.finish()
    this.dest = dest
    if (this.spans !== null) {
      this.spans.closeWait()
      this.spans.openInner('activator_proxy', this.upstreamHeaders)
    }
    const req = this.req
    let head = `${req.method} ${req.url} HTTP/1.1\r\nhost: ${dest}\r\n`
    const h = this.upstreamHeaders
    for (let j = 0; j < h.length; j += 2) head += `${h[j]}: ${h[j + 1]}\r\n`
    head += `connection: upgrade\r\nupgrade: ${req.headers.upgrade}\r\n\r\n`
    const i = dest.lastIndexOf(':')
    const host = dest.slice(0, i).replace(/^\[|\]$/g, '')
    // system-internal-tls: the pod's TLS port, verified as requests are; never plain text.
    const secure = this.ctx.upstreams.tls
    if (secure !== null) this.relay.connect(secure.tunnelOptions(this.rev!.namespace, host), head, secure.dial)
    else this.relay.connect({ host, port: Number(dest.slice(i + 1)) }, head)
  }

  onReject(reason: RejectReason, retryAfterSec: number): void {
    this.waiting = false
    if (this.spans !== null) this.spans.closeWait('activator.throttler.error', reason)
    this.reply(reason === 'no-revision' ? 404 : 503, reason === 'full' ? 'pending request queue full\n' : 'context deadline exceeded\n', retryAfterSec)
  }

  upstreamFailed(err: Error, bytesRead: number): void {
    if (err instanceof UpstreamHeadError) return this.reply(502, `${err.message}\n`)
    // Passive removal when nothing came from the pod: a dial or reset failure.
    if (bytesRead === 0) this.ctx.throttler.reportFailure(revisionKey(this.rev!.namespace, this.rev!.name), this.dest)
    // Go's error text, as for any request (spec §2.9).
    this.reply(502, `${upstreamErrorText(err, this.dest)}\n`)
  }

  relayEnded(): void {
    this.finish()
  }

  /** @internal The revision timeout: 504 if the pod has not answered, else the session ends. */
  timeout(): void {
    if (this.relay.waiting) this.reply(504, 'activator request timeout')
    else this.relay.close()
  }

  private reply(status: number, body: string, retryAfterSec = 0): void {
    this.ownStatus = status
    if (this.client.writable && this.relay.waiting) {
      const extra = retryAfterSec > 0 ? `retry-after: ${retryAfterSec}\r\n` : ''
      this.client.end(`HTTP/1.1 ${status} ${reasonPhrase(status)}\r\ncontent-type: text/plain; charset=utf-8\r\n${extra}connection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    }
    this.relay.close()
  }

  /** Accounts the tunnel as finished (throttler slot, reporter, active count); idempotent. */
  private finish(): void {
    const ctx = this.ctx
    if (this.holdsSlot) {
      this.holdsSlot = false
      ctx.throttler.release(this)
    }
    if (this.done) return
    this.done = true
    if (this.timer !== null) clearTimeout(this.timer)
    if (this.waiting) {
      this.waiting = false
      ctx.throttler.cancel(this)
    }
    if (this.rev !== null) ctx.reporter.requestOut(this.rev.namespace, this.rev.name)
    if (this.spans !== null) {
      this.spans.end(this.spanStatus())
      this.spans = null
    }
    if (--ctx.active === 0 && ctx.onIdle !== null) ctx.onIdle()
  }

  /**
   * The status the spans record: the tunnel's own answer, else the pod's (101
   * or a refusal); with neither (the client left first), what Go's handler
   * would have answered: 502 from the proxy, 500 from the throttler wait.
   */
  private spanStatus(): number {
    if (this.ownStatus !== 0) return this.ownStatus
    const answered = this.relay.answerStatus
    if (answered !== 0) return answered
    return this.dest !== '' ? 502 : 500
  }
}

function reasonPhrase(status: number): string {
  return status === 404 ? 'Not Found' : status === 502 ? 'Bad Gateway' : status === 503 ? 'Service Unavailable' : status === 504 ? 'Gateway Timeout' : 'Error'
}

function onTunnelTimeout(t: UpgradeTunnel): void { t.timeout() }

export function createUpgradeHandler(ctx: ActivatorContext) {
  return function onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    new UpgradeTunnel(ctx, req, socket, head).start()
  }
}
