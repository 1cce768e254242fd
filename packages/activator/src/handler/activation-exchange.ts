// One request through the activator below revision identification (spec
// §2.3, §2.6, §2.9–2.11): counted by the concurrency reporter, bounded by the
// revision's timeouts (504 "activator request timeout"), admitted by the
// throttler (which may queue or shed it), then proxied to the chosen pod.
// The exchange is the throttler's waiter and undici's handler itself.
//
// While it waits, an HTTP/1.1 request's unread body stays in the kernel
// (waiting-uploads.ts); an early answer drops what still arrives, bounded
// (body-discard.ts). A failed attempt is retried on another pod only when
// that cannot run it twice (upstreamFailed).

import type http from 'node:http'
import type http2 from 'node:http2'
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { Body, Header } from '@sluice/core/constants'
import { ProxyExchange, type Req, type Res, type TimeoutKind } from '@sluice/core/http/proxy-exchange'
import { responseHeaderList, responseHeaderObject } from '@sluice/core/http/response-headers'
import { upstreamErrorText } from '@sluice/core/http/upstream-errors'
import type { ActivatorContext } from '../context.ts'
import { waitingBodyCharge } from '../net/revision-queue.ts'
import type { RejectReason, ThrottleWaiter } from '../net/throttler.ts'
import { revisionKey, type RevisionInfo } from '../revision.ts'
import { discardRestOfBody } from './body-discard.ts'
import type { UploadState, WaitingUpload } from './waiting-uploads.ts'
import type { ScannedActivatorRequest } from './request-headers.ts'
import type { RequestTrace } from '@sluice/core/tracing/tracer'

/** Connection failures: the pod is dropped from the healthy set (passive removal). */
const CONNECTION_FAILURES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET'])
/** RFC 9110 §9.2.2: running these twice has the effect of running them once. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])
const MAX_ATTEMPTS = 3

export class ActivationExchange extends ProxyExchange implements ScannedActivatorRequest, ThrottleWaiter, WaitingUpload {
  readonly ctx: ActivatorContext

  // ScannedActivatorRequest
  userAgent = ''
  kubeletProbe = false
  networkProbe = ''
  networkHash = ''
  revisionNamespace = ''
  revisionName = ''
  host = ''
  contentLength = 0
  upstreamHeaders: string[] = []

  // ThrottleWaiter bookkeeping (owned by the throttler)
  queuedIn?: object | null
  queuePrev?: ThrottleWaiter | null
  queueNext?: ThrottleWaiter | null
  queueBytes?: number
  throttleRevision?: import('../net/throttler.ts').RevisionThrottler | null
  throttleTracker?: import('../net/lb-policy.ts').PodTracker | null
  throttleStart?: number

  // WaitingUpload bookkeeping (owned by ctx.uploads)
  upload: UploadState | null = null

  revision: RevisionInfo | null = null
  dest = ''
  /** How long the request waited for capacity, ms (Server-Timing, cold-start histogram). */
  waitedMs = 0
  /** Open spans while tracing is on: the server span, `throttler_try` while waiting, then `activator_proxy`. */
  spans: RequestTrace | null = null
  private key = ''
  private counted = false
  private holdsSlot = false
  private waiting = false
  private attempts = 0
  private closedOnce = false
  /** undici began writing the request to a pod: from here the pod may have run it. */
  private written = false

  constructor(ctx: ActivatorContext, req: Req, res: Res, isH2: boolean, now: number) {
    super(req, res, isH2, now)
    this.ctx = ctx
    ctx.active++
  }

  run(rev: RevisionInfo): void {
    const ctx = this.ctx
    this.revision = rev
    this.key = revisionKey(rev.namespace, rev.name)
    ctx.reporter.requestIn(rev.namespace, rev.name)
    this.counted = true
    const totalMs = rev.timeoutSeconds * 1000
    this.startTimers({ totalMs, startMs: rev.responseStartTimeoutSeconds * 1000, idleMs: rev.idleTimeoutSeconds * 1000, message: Body.activatorRequestTimeout })
    const tracer = ctx.tracing
    if (tracer !== null) {
      // Knative's activator: the server span, then `throttler_try` for the wait for capacity.
      this.spans = tracer.startRequest(this.req, this.host, this.userAgent, this.upstreamHeaders)
      this.spans.openWait('throttler_try')
    }
    this.admit(totalMs)
  }

  private admit(remainingMs: number): void {
    this.waiting = true
    const length = !this.hasBody() ? 0 : this.contentLength === 0 ? -1 : this.contentLength
    this.ctx.throttler.try(this.key, this, waitingBodyCharge(length), remainingMs)
    // Queued with its body still arriving: leave the body in the kernel until a pod is free.
    if (this.waiting && length !== 0 && !this.isH2 && !this.req.complete) this.ctx.uploads.hold(this, length)
  }

  /** ThrottleWaiter: a slot on `dest` is reserved for this request. */
  onDest(dest: string): void {
    this.waiting = false
    this.holdsSlot = true
    this.ctx.uploads.release(this)
    if (this.finished) {
      this.releaseSlot()
      return
    }
    this.dest = dest
    if (this.attempts === 0) {
      this.waitedMs = performance.now() - this.startedAt
      this.ctx.metrics.recordCapacityWait(this.revision!, this.waitedMs / 1000)
    }
    this.attempts++
    if (this.spans !== null && this.attempts === 1) {
      this.spans.closeWait()
      this.spans.openInner('activator_proxy', this.upstreamHeaders)
    }
    const req = this.req
    const path = this.isH2 ? (req as http2.Http2ServerRequest).url : (req as http.IncomingMessage).url!
    const ups = this.ctx.upstreams
    // enable-mesh-pod-addressability: Host is the private Service, as Knative's handler sets it,
    // so the mesh routes the pod-addressed request (once: a retry keeps it).
    if (this.ctx.throttler.passthroughLb && this.attempts === 1) this.upstreamHeaders.push('host', `${this.revision!.name}-private.${this.revision!.namespace}`)
    // system-internal-tls: the pod's TLS port, verified; never plain text.
    if (ups.tls !== null) this.dispatchTo(ups.tls.dispatcher(this.revision!.namespace, this.isH2), ups.tls.origin(dest), path, this.upstreamHeaders, this.contentLength !== 0)
    else this.dispatchTo(this.isH2 ? ups.h2 : ups.h1, `http://${dest}`, path, this.upstreamHeaders, this.contentLength !== 0)
  }

  /** ThrottleWaiter: shed (queue full, deadline unreachable, revision gone). */
  onReject(reason: RejectReason, retryAfterSec: number): void {
    this.waiting = false
    const rev = this.revision!
    this.ctx.metrics.shed.inc({ namespace_name: rev.namespace, revision_name: rev.name, reason })
    if (this.spans !== null) this.spans.closeWait('activator.throttler.error', reason)
    if (reason === 'no-revision') {
      this.replyError(404, `Error getting active endpoint: revision.serving.knative.dev "${rev.name}" not found\n`)
      return
    }
    const headers = retryAfterSec > 0 ? { [Header.retryAfter]: String(retryAfterSec) } : undefined
    this.replyError(503, reason === 'full' ? Body.queueFull : Body.deadlineExceeded, headers)
  }

  protected override writeResponseHead(statusCode: number, headers: IncomingHttpHeaders): void {
    // Cold-start visibility (knative/serving#13459): time spent waiting for capacity.
    const timing = `activator-wait;dur=${this.waitedMs.toFixed(1)}`
    const prior = headers['server-timing']
    headers['server-timing'] = prior === undefined ? timing : `${prior}, ${timing}`
    if (this.isH2) this.res.writeHead(statusCode, responseHeaderObject(headers))
    else this.res.writeHead(statusCode, responseHeaderList(headers))
  }

  // undici calls this once connected, just before it writes the request: an
  // error before it (refused, connect timeout) means the pod got nothing.
  override onRequestStart(controller: Dispatcher.DispatchController): void {
    this.written = true
    super.onRequestStart(controller)
  }

  protected upstreamFailed(err: Error): string | null {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    const ctx = this.ctx
    const connectionFailed = CONNECTION_FAILURES.has(code)
    // Passive removal: a pod whose connections fail stops receiving traffic at once.
    if (connectionFailed) ctx.throttler.reportFailure(this.key, this.dest)
    // Another pod may run it only if this one cannot have (nothing was written; the
    // body, untouched, can still be sent) or running it twice is harmless.
    if (connectionFailed && this.attempts < MAX_ATTEMPTS && this.size === 0 && this.replayable()) {
      this.releaseSlot()
      this.upstreamDone = false
      this.controller = null
      const remaining = this.revision!.timeoutSeconds * 1000 - (performance.now() - this.startedAt)
      if (remaining > 0) {
        ctx.log.warn({ dest: this.dest, code, revision: this.key, written: this.written }, 'pod connection failed; retrying on another pod')
        this.admit(remaining)
        return null
      }
    }
    ctx.log.error({ err: err.message, code, dest: this.dest, revision: this.key }, 'error reverse proxying request')
    return upstreamErrorText(err, `http://${this.dest}`)
  }

  /** Safe to send again: never written to a pod, or idempotent without a body. */
  private replayable(): boolean {
    return !this.written || (IDEMPOTENT.has(this.req.method!) && !this.hasBody())
  }

  private hasBody(): boolean {
    return this.contentLength !== 0 || (this.isH2 && !(this.req as http2.Http2ServerRequest).stream.endAfterHeaders)
  }

  protected override onTimeout(kind: TimeoutKind): void {
    this.ctx.log.warn({ kind, revision: this.key, waiting: this.waiting }, 'activator request timeout')
  }

  protected override finish(): void {
    if (this.finished) return
    super.finish()
    if (this.waiting) {
      this.waiting = false
      this.ctx.throttler.cancel(this)
    }
  }

  private releaseSlot(): void {
    if (this.holdsSlot) {
      this.holdsSlot = false
      this.ctx.throttler.release(this)
    }
  }

  closed(): void {
    if (this.closedOnce) return
    this.closedOnce = true
    this.finish()
    this.releaseSlot()
    const ctx = this.ctx
    ctx.uploads.release(this)
    // Answered here (shed, timeout) while the client still sends: drop the rest, bounded.
    if (!this.isH2 && !this.written && this.res.writableFinished) discardRestOfBody(this.req as http.IncomingMessage)
    const rev = this.revision
    if (rev !== null) {
      if (this.counted) ctx.reporter.requestOut(rev.namespace, rev.name)
      ctx.metrics.recordRequest(rev, this.res.statusCode, performance.now() - this.startedAt)
    }
    if (this.spans !== null) {
      this.spans.end(this.res.statusCode)
      this.spans = null
    }
    if (--ctx.active === 0 && ctx.onIdle !== null) ctx.onIdle()
  }
}
