// One proxied request, shared by the queue-proxy and the activator: the
// timeout handler (pkg/http/handler/timeout.go, HEAD semantics) and the
// reverse proxy (pkg/http/proxy.go) on one object per request. The object is
// the undici dispatch handler itself, and timers and events call module-level
// functions with it as argument: no per-request closures. Subclasses add
// admission (breaker, throttler) and accounting.

import type http from 'node:http'
import type http2 from 'node:http2'
import { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } from './h2-codes.ts'
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { bodyBytes, uploadEnded, uploadStarted } from './body-memory.ts'
import { replyGoError } from './go-error.ts'
import { responseHeaderList, responseHeaderObject } from './response-headers.ts'

export type Req = http.IncomingMessage | http2.Http2ServerRequest
// The http2 compat response has the same runtime surface for what we use.
export type Res = http.ServerResponse

export interface Timeouts {
  totalMs: number
  /** 0 = off. */
  startMs: number
  /** 0 = off. */
  idleMs: number
  /** Body of the 504 (and what is appended to a started response). */
  message: string
}

export type TimeoutKind = 'total' | 'start' | 'idle'

const kExchange = Symbol('sluice.exchange')
interface Tagged { [kExchange]?: ProxyExchange }


export abstract class ProxyExchange implements Dispatcher.DispatchHandler {
  readonly req: Req
  readonly res: Res
  readonly isH2: boolean
  readonly startedAt: number
  /** Response bytes written to the client. */
  size = 0
  /** When the upstream call started / ended (app latency). */
  appStartedAt = 0
  appEndedAt = 0

  /** The response head declared a Content-Length: a cut-short body cannot be patched up. */
  protected lengthDeclared = false
  /** 100 Continue was sent (a retried dispatch must not send it twice). */
  private continued = false
  /** A request body is streaming (body-memory.ts watches while any is). */
  private uploading = false
  protected controller: Dispatcher.DispatchController | null = null
  protected finished = false
  protected upstreamDone = false
  private timeouts: Timeouts | null = null
  private lastWriteAt = 0
  private totalTimer: NodeJS.Timeout | null = null
  private startTimer: NodeJS.Timeout | null = null
  private idleTimer: NodeJS.Timeout | null = null

  constructor(req: Req, res: Res, isH2: boolean, now: number) {
    this.req = req
    this.res = res
    this.isH2 = isH2
    this.startedAt = now
    ;(res as Tagged)[kExchange] = this
    res.once('close', onResClose)
  }

  /** The client side is done (response sent, or connection gone): release what is held. */
  abstract closed(): void

  /** Upstream failed before the response started. Return the 502 body (without "\n"), or null if handled. */
  protected abstract upstreamFailed(err: Error): string | null

  /** Called when a timeout fires, before the reply is written (logging). */
  protected onTimeout(_kind: TimeoutKind): void {}

  protected startTimers(t: Timeouts): void {
    this.timeouts = t
    this.totalTimer = setTimeout(onTotalTimeout, t.totalMs, this)
    if (t.startMs > 0) this.startTimer = setTimeout(onStartTimeout, t.startMs, this)
    if (t.idleMs > 0) {
      this.lastWriteAt = this.startedAt
      this.idleTimer = setTimeout(onIdleTimeout, t.idleMs, this)
    }
  }

  /** Sends the request upstream, streaming the body if it has one. */
  protected dispatchTo(dispatcher: Dispatcher, origin: string | undefined, path: string, headers: string[], hasBody: boolean): void {
    this.appStartedAt = performance.now()
    const req = this.req
    const body = hasBody || this.isH2 && !(req as http2.Http2ServerRequest).stream.endAfterHeaders ? req : null
    if (body !== null && !this.isH2 && !this.continued && req.headers.expect !== undefined) {
      this.continued = true
      this.res.writeContinue()
    }
    if (body !== null && this.isH2) {
      const stream = (req as http2.Http2ServerRequest).stream
      stream.once('finish', onH2ResponseSent)
      stream.once('aborted', onH2ClientReset)
    }
    dispatcher.dispatch({ origin, path, method: req.method!, headers, body, idempotent: false, blocking: false, reset: false }, this)
    if (body !== null && !this.uploading) {
      this.uploading = true
      uploadStarted()
    }
  }

  // ---- undici DispatchHandler ----

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.finished) controller.abort(new Error('request finished'))
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.finished || statusCode < 200) return
    if (this.startTimer !== null) {
      clearTimeout(this.startTimer)
      this.startTimer = null
    }
    this.touchIdle()
    this.lengthDeclared = headers['content-length'] !== undefined
    this.writeResponseHead(statusCode, headers)
  }

  /** Subclasses may add headers (e.g. Server-Timing) here. */
  protected writeResponseHead(statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.isH2) this.res.writeHead(statusCode, responseHeaderObject(headers))
    else this.res.writeHead(statusCode, responseHeaderList(headers))
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.finished) return
    this.size += chunk.length
    bodyBytes(chunk.length)
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
    const text = this.upstreamFailed(err)
    if (text !== null) this.replyError(502, text + '\n')
  }

  // ---- timeouts ----

  private touchIdle(): void {
    if (this.idleTimer !== null) this.lastWriteAt = performance.now()
  }

  timeout(kind: TimeoutKind): void {
    if (this.finished) return
    const t = this.timeouts!
    if (kind === 'start' && this.res.headersSent) return
    if (kind === 'idle') {
      const since = performance.now() - this.lastWriteAt
      if (since < t.idleMs) {
        this.idleTimer = setTimeout(onIdleTimeout, t.idleMs - since, this)
        return
      }
    }
    this.onTimeout(kind)
    const res = this.res
    this.finish()
    if (!res.headersSent) {
      res.writeHead(504, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(t.message) })
      res.end(t.message)
    } else if (this.lengthDeclared) {
      // The client is owed the rest of the declared length: anything written on this
      // connection next would be read as that body (a desync behind a shared ingress
      // connection). End the connection (HTTP/1.1) or reset the stream (h2) instead.
      destroyResponse(res)
      return
    } else {
      // Chunked / h2 without a length, HEAD semantics: the message is appended and the response ended.
      res.end(t.message)
    }
    this.size += t.message.length
  }

  // ---- completion ----

  protected replyError(status: number, body: string, extraHeaders?: Record<string, string>): void {
    this.finish()
    const res = this.res
    if (res.headersSent) {
      destroyResponse(res)
      return
    }
    if (extraHeaders !== undefined) for (const k in extraHeaders) res.setHeader(k, extraHeaders[k]!)
    replyGoError(res, status, body)
    this.size += body.length
  }

  /** Stops timers and the upstream call; safe to call more than once. */
  protected finish(): void {
    if (this.finished) return
    this.finished = true
    if (this.totalTimer !== null) clearTimeout(this.totalTimer)
    if (this.startTimer !== null) clearTimeout(this.startTimer)
    if (this.idleTimer !== null) clearTimeout(this.idleTimer)
    this.totalTimer = this.startTimer = this.idleTimer = null
    if (this.uploading) {
      this.uploading = false
      uploadEnded()
    }
    if (!this.upstreamDone && this.controller !== null && !this.controller.aborted) {
      this.controller.abort(new Error('request finished before the upstream response'))
    }
  }

  resumeUpstream(): void {
    if (this.controller !== null && !this.finished) this.controller.resume()
  }
}

function destroyResponse(res: Res): void {
  const h2 = res as unknown as http2.Http2ServerResponse
  if (h2.stream !== undefined) h2.stream.close(NGHTTP2_INTERNAL_ERROR)
  else res.destroy()
}

function onResClose(this: Res): void {
  ;(this as Tagged)[kExchange]!.closed()
}

function onResDrain(this: Res): void {
  ;(this as Tagged)[kExchange]!.resumeUpstream()
}

// A response that ends while the client is still sending its body (an early
// answer, a timeout) leaves the stream open in Node once the body was read, so
// the exchange would never close. Go's server resets such a stream with
// NO_ERROR (RFC 9113 §8.1): so do we.
function onH2ResponseSent(this: http2.ServerHttp2Stream): void {
  if (this.closed || this.readableEnded) return
  if (this.state.remoteClose === 0) this.close(NGHTTP2_NO_ERROR)
}

// The client reset the stream while its body was being forwarded. Node closes
// such a stream only once that body has been read to its end, which never
// happens once the upstream call is gone: the exchange would never close.
function onH2ClientReset(this: http2.ServerHttp2Stream): void {
  process.nextTick(destroyStream, this)
}

function destroyStream(stream: http2.ServerHttp2Stream): void {
  if (!stream.destroyed) stream.destroy()
}

function onTotalTimeout(ex: ProxyExchange): void {
  ex.timeout('total')
}

function onStartTimeout(ex: ProxyExchange): void {
  ex.timeout('start')
}

function onIdleTimeout(ex: ProxyExchange): void {
  ex.timeout('idle')
}
