// One request through the queue-proxy's chain below the Drainer: stats
// accounting and the breaker (pkg/queue/handler.go) on top of the shared
// timeout + reverse-proxy exchange. The exchange is its own breaker waiter.

import type http from 'node:http'
import type http2 from 'node:http2'
import { Acquire, type BreakerWaiter } from '@sluice/core/breaker'
import { Body } from '@sluice/core/constants'
import { ProxyExchange, type Req, type Res, type TimeoutKind } from '@sluice/core/http/proxy-exchange'
import { upstreamErrorText } from '@sluice/core/http/upstream-errors'
import type { QueueContext } from './context.ts'
import { originFormTarget, type ScannedRequest } from './request-headers.ts'
import type { RequestTrace } from '@sluice/core/tracing/tracer'

export class Exchange extends ProxyExchange implements ScannedRequest, BreakerWaiter {
  readonly ctx: QueueContext

  // ScannedRequest
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
  /** Breaker load when the app request started (revision_queue_depth). */
  queueDepthAtStart = 0
  isProbe = false
  /** Open spans while tracing is on (request-tracing.ts). */
  spans: RequestTrace | null = null
  /** Answered 503 because the breaker's queue was full (metrics). */
  breakerRejected = false

  private holdsSlot = false
  private counted = false
  private closedOnce = false

  constructor(ctx: QueueContext, req: Req, res: Res, isH2: boolean, now: number) {
    super(req, res, isH2, now)
    this.ctx = ctx
    ctx.active++
  }

  /** Stats, timeouts, breaker, then the upstream call. */
  run(): void {
    const { ctx } = this
    // Kubelet probes bypass stats and breaker (they never get here in the full chain).
    if (!this.kubeletProbe) {
      ctx.stats.requestIn(this.startedAt, this.proxied)
      this.counted = true
    }
    this.startTimers(ctx.timeouts)
    const breaker = ctx.breaker
    const tracing = ctx.tracing
    if (breaker === null || this.kubeletProbe) {
      if (tracing !== null) tracing.start(this, false)
      this.dispatch()
      return
    }
    if (tracing !== null) tracing.start(this, true)
    const r = breaker.acquire(this)
    if (r === Acquire.acquired) {
      this.holdsSlot = true
      this.dispatch()
    } else if (r === Acquire.full) {
      if (this.spans !== null) this.spans.closeWait()
      this.breakerRejected = true
      this.replyError(503, Body.queueFull)
    }
  }

  /** BreakerWaiter: a slot became free. */
  onAcquire(): void {
    this.holdsSlot = true
    if (this.finished) {
      // Gave up while queued but was woken in the same tick: pass the slot on.
      this.releaseSlot()
      return
    }
    this.dispatch()
  }

  private dispatch(): void {
    const ctx = this.ctx
    if (this.spans !== null) this.spans.closeWait()
    if (ctx.breaker !== null) this.queueDepthAtStart = ctx.breaker.load
    if (ctx.observer !== null) ctx.observer.onAppStart(this)
    const req = this.req
    let path = this.isH2 ? (req as http2.Http2ServerRequest).url : (req as http.IncomingMessage).url!
    // Absolute-form ("http://h/p") and asterisk-form ("*") targets are rare: normalised here.
    if (path.charCodeAt(0) !== 47 /* '/' */) path = originFormTarget(this, path, (req.headers['k-original-host'] ?? '') !== '')
    this.dispatchTo(this.isH2 ? ctx.upstreams.h2 : ctx.upstreams.h1, undefined, path, this.upstreamHeaders, this.hasBody)
  }

  protected upstreamFailed(err: Error): string {
    this.ctx.log.error({ err: err.message, code: (err as NodeJS.ErrnoException).code }, 'error reverse proxying request')
    return upstreamErrorText(err, this.ctx.upstreams.origin, this.ctx.cfg.maxHeaderBytes)
  }

  protected override onTimeout(kind: TimeoutKind): void {
    this.ctx.log.warn({ kind, path: this.req.url }, 'request timeout')
  }

  protected override finish(): void {
    if (this.finished) return
    super.finish()
    if (this.breakerQueued === true) this.ctx.breaker!.cancel(this)
  }

  private releaseSlot(): void {
    if (this.holdsSlot) {
      this.holdsSlot = false
      this.ctx.breaker!.release()
    }
  }

  closed(): void {
    if (this.closedOnce) return
    this.closedOnce = true
    this.finish()
    this.releaseSlot()
    const ctx = this.ctx
    if (this.counted) {
      this.counted = false
      ctx.stats.requestOut(performance.now(), this.proxied)
    }
    if (ctx.observer !== null) ctx.observer.onDone(this)
    if (this.spans !== null) {
      this.spans.end(this.res.statusCode)
      this.spans = null
    }
    if (--ctx.active === 0 && ctx.onIdle !== null) ctx.onIdle()
  }
}
