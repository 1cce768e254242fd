// Per-connection admission in front of the request handler, so that one
// connection cannot become many concurrent upstream requests.
//
// HTTP/1.1: Node parses pipelined requests ahead and would run them all at
// once; Go's server (Knative) serves them one after another. A request that
// arrives while another runs on the same connection waits here, unstarted and
// uncounted, and the socket stops being read (TCP backpressure) until the one
// ahead has finished: pipelined requests reach the handler one at a time, in
// order (RFC 9112 §9.3.2). Past `maxPipelined` waiting requests the next one
// is answered 503 with Connection: close, in its turn, and the connection ends.
// Upgrade requests wait the same way: a tunnel never starts under a response
// still being written.
//
// HTTP/2: at most `maxConcurrentStreams` handlers run per session (the SETTINGS
// value nghttp2 enforces once acknowledged; streams opened before that, or
// beyond it, are refused with REFUSED_STREAM, which a client may safely retry).

import type http from 'node:http'
import type http2 from 'node:http2'
import { NGHTTP2_REFUSED_STREAM } from './h2-codes.ts'
import type net from 'node:net'

export type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void
export type UpgradeHandler = (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void

const kGate = Symbol('sluice.gate')

const PIPELINE_FULL = 'too many pipelined requests\n'

/** One HTTP/1.1 connection's state: the running request and those parsed behind it. */
class H1Gate {
  readonly socket: net.Socket
  busy = false
  /** After the overflow answer: the connection ends, later requests are dropped. */
  closing = false
  /** Waiting requests, oldest first: [req, res] or [req, head] (upgrades). */
  readonly pending: Array<[http.IncomingMessage, http.ServerResponse | Buffer]> = []

  constructor(socket: net.Socket) {
    this.socket = socket
  }
}

interface Gated { [kGate]?: H1Gate }
interface GatedSession { [kGate]?: number }
interface GatedResponse { [kGate]?: GatedSession }

export interface H1GateOptions {
  onRequest: Handler
  onUpgrade: UpgradeHandler | undefined
  maxPipelined: number
  /** Called once per connection, on its first request (ends the accept-to-headers deadline). */
  onFirstRequest: (socket: net.Socket) => void
}

/** The HTTP/1.1 server's 'request' and 'upgrade' listeners, serialising each connection. */
export function createH1Gate(o: H1GateOptions) {
  const startRequest = (g: H1Gate, req: http.IncomingMessage, res: http.ServerResponse): void => {
    g.busy = true
    ;(res as Gated)[kGate] = g
    res.on('close', onGatedClose)
    o.onRequest(req, res)
  }

  const startUpgrade = (req: http.IncomingMessage, socket: net.Socket, head: Buffer): void => {
    if (o.onUpgrade !== undefined) o.onUpgrade(req, socket, head)
    else socket.destroy()
  }

  function onGatedClose(this: http.ServerResponse): void {
    const g = (this as Gated)[kGate]!
    g.busy = false
    const socket = g.socket
    if (socket.destroyed) {
      g.pending.length = 0
      return
    }
    const next = g.pending.shift()
    if (next !== undefined) {
      const [req, second] = next
      if (Buffer.isBuffer(second)) {
        // The upgrade's turn: the socket is the tunnel's from here on.
        g.pending.length = 0
        startUpgrade(req, socket, second)
        return
      }
      startRequest(g, req, second)
    }
    if (g.pending.length === 0 && !g.closing) socket.resume()
  }

  const gateOf = (socket: net.Socket): H1Gate => {
    let g = (socket as Gated)[kGate]
    if (g === undefined) {
      g = new H1Gate(socket)
      ;(socket as Gated)[kGate] = g
      o.onFirstRequest(socket)
    }
    return g
  }

  return {
    onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
      const g = gateOf(req.socket)
      if (!g.busy) return startRequest(g, req, res)
      if (g.closing) return
      if (g.pending.length >= o.maxPipelined) {
        g.closing = true
        replyPipelineFull(res)
        return
      }
      g.pending.push([req, res])
      req.socket.pause()
    },
    onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
      const g = gateOf(socket)
      if (!g.busy) return startUpgrade(req, socket, head)
      if (g.closing || g.pending.length >= o.maxPipelined) {
        socket.destroy()
        return
      }
      g.pending.push([req, head])
      socket.pause()
    },
  }
}

function replyPipelineFull(res: http.ServerResponse): void {
  res.shouldKeepAlive = false
  res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', 'content-length': PIPELINE_FULL.length, connection: 'close' })
  res.end(PIPELINE_FULL)
}

/** The HTTP/2 server's 'request' listener: at most `max` running handlers per session. */
export function createH2Gate(onRequest: Handler, max: number) {
  // The stream (and its session field) may already be torn down when the response closes.
  function onStreamDone(this: http2.Http2ServerResponse & GatedResponse): void {
    this[kGate]![kGate]!--
  }
  return function onH2Request(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void {
    const session = req.stream.session as (http2.ServerHttp2Session & GatedSession) | undefined
    if (session === undefined) return
    const running = session[kGate] ?? 0
    if (running >= max) {
      req.stream.close(NGHTTP2_REFUSED_STREAM)
      return
    }
    session[kGate] = running + 1
    ;(res as GatedResponse)[kGate] = session
    res.on('close', onStreamDone)
    onRequest(req, res)
  }
}
