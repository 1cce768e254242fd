// One proxied request: the stages of Knative's chain below the Drainer —
// timeouts (pkg/http/handler/timeout.go, HEAD semantics), stats accounting
// and the breaker (pkg/queue/handler.go), and the reverse proxy
// (pkg/http/proxy.go) — kept on one object per request. It is the breaker
// waiter and the undici dispatch handler itself, and timers and events call
// module-level functions with it as argument: no per-request closures.

import type http from 'node:http'
import http2 from 'node:http2'
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { Acquire, type BreakerWaiter } from '@sluice/core/breaker'
import { Body } from '@sluice/core/constants'
import type { QueueContext } from './context.ts'
import { replyGoError } from './probe-handler.ts'
import { originFormTarget, type ScannedRequest } from './request-headers.ts'
import { responseHeaderList, responseHeaderObject } from './response-headers.ts'
import { upstreamErrorText } from './upstream-errors.ts'

type Req = http.IncomingMessage | http2.Http2ServerRequest
// The http2 compat response has the same runtime surface for what we use.
type Res = http.ServerResponse

const kExchange = Symbol('sluice.exchange')
interface Tagged { [kExchange]?: Exchange }

const { NGHTTP2_NO_ERROR } = http2.constants
const TIMEOUT_HEADERS = { 'content-type': 'text/plain; charset=utf-8', 'content-length': Body.requestTimeout.length }

export class Exchange implements ScannedRequest, BreakerWaiter, Dispatcher.DispatchHandler {
  readonly ctx: QueueContext
  readonly req: Req
  readonly res: Res
  readonly isH2: boolean
  readonly startedAt: number

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
  /** Response bytes written to the client. */
  size = 0
  /** Time the request got its execution slot / finished upstream (app metrics). */
  appStartedAt = 0
  appEndedAt = 0
  /** Breaker load when the app request started (revision_queue_depth). */
  queueDepthAtStart = 0
  isProbe = false

  private controller: Dispatcher.DispatchController | null = null
  private holdsSlot = false
  private counted = false
  private finished = false
  private upstreamDone = false
  private lastWriteAt = 0
  private totalTimer: NodeJS.Timeout | null = null
  private startTimer: NodeJS.Timeout | null = null
  private idleTimer: NodeJS.Timeout | null = null

  constructor(ctx: QueueContext, req: Req, res: Res, isH2: boolean, now: number) {
    this.ctx = ctx
    this.req = req
    this.res = res
    this.isH2 = isH2
    this.startedAt = now
    ;(res as Tagged)[kExchange] = this
    ctx.active++
    res.once('close', onResClose)
  }

  /** Stats, timeouts, breaker, then the upstream call. */
  run(): void {
    const { ctx } = this
    const cfg = ctx.cfg
    // Kubelet probes bypass stats and breaker (they never get here in the full chain).
    if (!this.kubeletProbe) {
      ctx.stats.requestIn(this.startedAt, this.proxied)
      this.counted = true
    }
    this.totalTimer = setTimeout(onTotalTimeout, cfg.revisionTimeoutMs, this)
    if (cfg.responseStartTimeoutMs > 0) this.startTimer = setTimeout(onStartTimeout, cfg.responseStartTimeoutMs, this)
    if (cfg.idleTimeoutMs > 0) {
      this.lastWriteAt = this.startedAt
      this.idleTimer = setTimeout(onIdleTimeout, cfg.idleTimeoutMs, this)
    }
    const breaker = ctx.breaker
    if (breaker === null || this.kubeletProbe) {
      this.dispatch()
      return
    }
    const r = breaker.acquire(this)
    if (r === Acquire.acquired) {
      this.holdsSlot = true
      this.dispatch()
    } else if (r === Acquire.full) {
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
    this.appStartedAt = performance.now()
    if (ctx.breaker !== null) this.queueDepthAtStart = ctx.breaker.load
    if (ctx.observer !== null) ctx.observer.onAppStart(this)
    const req = this.req
    const pool = this.isH2 ? ctx.upstreams.h2 : ctx.upstreams.h1
    let path = this.isH2 ? (req as http2.Http2ServerRequest).url : (req as http.IncomingMessage).url!
    // Absolute-form ("http://h/p") and asterisk-form ("*") targets are rare: normalised here.
    if (path.charCodeAt(0) !== 47 /* '/' */) path = originFormTarget(this, path, (req.headers['k-original-host'] ?? '') !== '')
    const body = this.hasBody || this.isH2 && !(req as http2.Http2ServerRequest).stream.endAfterHeaders ? req : null
    if (body !== null && this.isH2) (req as http2.Http2ServerRequest).stream.once('finish', onH2ResponseSent)
    pool.dispatch({
      path,
      method: req.method!,
      headers: this.upstreamHeaders,
      body,
      idempotent: false,
      blocking: false,
      reset: false,
    }, this)
  }

  // ---- undici DispatchHandler ----

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.finished) controller.abort(new Error('request finished'))
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.finished || statusCode < 200) return
    const res = this.res
    if (this.startTimer !== null) {
      clearTimeout(this.startTimer)
      this.startTimer = null
    }
    this.touchIdle()
    if (this.isH2) res.writeHead(statusCode, responseHeaderObject(headers))
    else res.writeHead(statusCode, responseHeaderList(headers))
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.finished) return
    this.size += chunk.length
    this.touchIdle()
    if (!this.res.write(chunk)) {
      controller.pause()
      this.res.once('drain', onResDrain)
    }
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.upstreamDone = true
    this.appEndedAt = performance.now()
    if (this.finished) return
    for (const _ in trailers) {
      this.res.addTrailers(trailers as Record<string, string>)
      break
    }
    this.finish()
    this.res.end()
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.upstreamDone = true
    this.appEndedAt = performance.now()
    if (this.finished) return
    if (this.res.headersSent) {
      // Mid-body failure: the only honest signal left is a broken response.
      this.finish()
      destroyResponse(this.res)
      return
    }
    this.ctx.log.error({ err: err.message, code: (err as NodeJS.ErrnoException).code }, 'error reverse proxying request')
    this.replyError(502, upstreamErrorText(err, this.ctx.upstreams.origin) + '\n')
  }

  // ---- timeouts ----

  private touchIdle(): void {
    if (this.idleTimer !== null) this.lastWriteAt = performance.now()
  }

  timeout(kind: 'total' | 'start' | 'idle'): void {
    if (this.finished) return
    if (kind === 'start' && this.res.headersSent) return
    if (kind === 'idle') {
      const idle = this.ctx.cfg.idleTimeoutMs
      const since = performance.now() - this.lastWriteAt
      if (since < idle) {
        this.idleTimer = setTimeout(onIdleTimeout, idle - since, this)
        return
      }
    }
    this.ctx.log.warn({ kind, path: this.req.url }, 'request timeout')
    const res = this.res
    if (res.headersSent) {
      // HEAD semantics: the message is appended and the response ended.
      this.finish()
      res.end(Body.requestTimeout)
    } else {
      this.finish()
      res.writeHead(504, TIMEOUT_HEADERS)
      res.end(Body.requestTimeout)
    }
    this.size += Body.requestTimeout.length
  }

  // ---- completion ----

  private replyError(status: number, body: string): void {
    this.finish()
    const res = this.res
    if (res.headersSent) {
      destroyResponse(res)
      return
    }
    replyGoError(res, status, body)
    this.size += body.length
  }

  /** Stops timers and the upstream call; safe to call more than once. */
  private finish(): void {
    if (this.finished) return
    this.finished = true
    if (this.totalTimer !== null) clearTimeout(this.totalTimer)
    if (this.startTimer !== null) clearTimeout(this.startTimer)
    if (this.idleTimer !== null) clearTimeout(this.idleTimer)
    this.totalTimer = this.startTimer = this.idleTimer = null
    if (!this.upstreamDone && this.controller !== null && !this.controller.aborted) {
      this.controller.abort(new Error('request finished before the upstream response'))
    }
    if (this.breakerQueued === true) this.ctx.breaker!.cancel(this)
  }

  private releaseSlot(): void {
    if (this.holdsSlot) {
      this.holdsSlot = false
      this.ctx.breaker!.release()
    }
  }

  /** The client side is done (response sent, or connection gone). */
  closed(): void {
    this.finish()
    this.releaseSlot()
    const ctx = this.ctx
    if (this.counted) {
      this.counted = false
      ctx.stats.requestOut(performance.now(), this.proxied)
    }
    if (ctx.observer !== null) ctx.observer.onDone(this)
    if (--ctx.active === 0 && ctx.onIdle !== null) ctx.onIdle()
  }

  resumeUpstream(): void {
    if (this.controller !== null && !this.finished) this.controller.resume()
  }
}

function destroyResponse(res: Res): void {
  const h2 = res as unknown as http2.Http2ServerResponse
  if (h2.stream !== undefined) h2.stream.close(2 /* INTERNAL_ERROR */)
  else res.destroy()
}

function onResClose(this: Res): void {
  ;(this as Tagged)[kExchange]!.closed()
}

// A response that ends while the client is still sending its body (an early
// answer, a timeout) leaves the stream open in Node once the body was read, so
// the exchange would never close. Go's server resets such a stream with
// NO_ERROR (RFC 9113 §8.1): so do we.
function onH2ResponseSent(this: http2.ServerHttp2Stream): void {
  if (this.closed || this.readableEnded) return
  if (this.state.remoteClose === 0) this.close(NGHTTP2_NO_ERROR)
}

function onResDrain(this: Res): void {
  ;(this as Tagged)[kExchange]!.resumeUpstream()
}

function onTotalTimeout(ex: Exchange): void {
  ex.timeout('total')
}

function onStartTimeout(ex: Exchange): void {
  ex.timeout('start')
}

function onIdleTimeout(ex: Exchange): void {
  ex.timeout('idle')
}
