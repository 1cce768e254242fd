// One TCP port that speaks HTTP/1.1 and h2c with prior knowledge, as Go's
// h2c.NewHandler does (spec §1.4). The first bytes of each connection decide:
// the HTTP/2 connection preface goes to the http2 server, anything else to
// the HTTP/1 server. The choice is made once per connection, not per request.
//
// Hostile connections are bounded here, for both components (connection-limits.ts):
// every accepted connection gets TCP keep-alive; one that has not sent a
// complete request head (or the h2 preface) within the read-header timeout is
// closed, however slowly it dribbles; HTTP/1.1 requests run one at a time per
// connection and HTTP/2 handlers at most maxConcurrentStreams per session
// (connection-gate.ts).

import type http from 'node:http'
import type http2 from 'node:http2'
import type net from 'node:net'
import { createServer as createTcpServer } from 'node:net'
import { httpModule } from '../builtins.ts'
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from './connection-limits.ts'
import { createH1Gate, createH2Gate, type Handler, type UpgradeHandler } from './connection-gate.ts'
import { H2cSocket } from './h2c-socket.ts'

export type RequestHandler = Handler
export type { UpgradeHandler }

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')

export interface DualListenerOptions {
  /** Requests of both protocols. */
  onRequest: RequestHandler
  /** HTTP/1.1 Upgrade requests other than h2c (websockets). */
  onUpgrade?: UpgradeHandler
  limits?: Partial<ConnectionLimits>
}

export interface DualListener {
  readonly tcp: net.Server
  readonly h1: http.Server
  /** Created on the first HTTP/2 connection: node:http2 costs start-up time most pods never need. */
  readonly h2: http2.Http2Server
  /** Live HTTP/2 sessions, closed gracefully (GOAWAY) on shutdown. */
  readonly sessions: Set<http2.ServerHttp2Session>
  readonly limits: Readonly<ConnectionLimits>
  /** Serves a connection accepted elsewhere (TLS, after ALPN) with the same limits. */
  serve(socket: net.Socket, h2: boolean): void
}

const kListener = Symbol('sluice.listener')
const kSniffed = Symbol('sluice.sniffed')
const kDeadline = Symbol('sluice.headerDeadline')

interface ConnSocket extends net.Socket {
  [kListener]?: DualListener
  /** Bytes read while the protocol is undecided (at most the preface's 24). */
  [kSniffed]?: Buffer | null
  /** Closes the connection if no request head arrives in time; cleared by the first request. */
  [kDeadline]?: NodeJS.Timeout | null
}

export function createDualListener(opts: DualListenerOptions): DualListener {
  const limits: ConnectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.limits }
  const gate = createH1Gate({ onRequest: opts.onRequest, onUpgrade: opts.onUpgrade, maxPipelined: limits.maxPipelined, onFirstRequest: clearDeadline })
  const h1 = httpModule().createServer({
    // Revision timeouts bound requests, not Node's defaults (300 s request timeout).
    requestTimeout: 0,
    // Heads of later requests on a connection; the first one is bounded from accept (kDeadline).
    headersTimeout: limits.readHeaderTimeoutMs,
    // How often Node looks for expired heads: often enough that a dribbler is cut close to the timeout.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, limits.readHeaderTimeoutMs / 4)),
    // 0: Go's server keeps idle keep-alive connections open; ingress and the activator reuse them.
    keepAliveTimeout: limits.idleTimeoutMs,
    maxHeaderSize: limits.maxHeaderBytes,
    noDelay: true,
    // An h2c upgrade is answered over HTTP/1.1 (RFC 9113 lets a server ignore it);
    // other upgrades (websockets) are tunnelled.
    shouldUpgradeCallback: isTunnelledUpgrade,
  } as http.ServerOptions, gate.onRequest as http.RequestListener)
  h1.on('upgrade', gate.onUpgrade)
  // Expect: 100-continue is answered when the body is first needed (the exchange
  // dispatching upstream), as Go's server does, not on arrival: a request that
  // waits (breaker queue, activator buffer) leaves its body with the client.
  h1.on('checkContinue', gate.onRequest)
  h1.on('clientError', onClientError)

  const sessions = new Set<http2.ServerHttp2Session>()
  let h2: http2.Http2Server | null = null
  const createH2 = (): http2.Http2Server => {
    const s = process.getBuiltinModule('node:http2').createServer({
      maxSessionMemory: 32,
      // Header blocks as large as HTTP/1.1 allows, both ways (a 64 KiB cookie must pass).
      maxSendHeaderBlockLength: limits.maxHeaderBytes,
      settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderBytes },
    } as http2.ServerOptions, createH2Gate(opts.onRequest, limits.maxConcurrentStreams) as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void)
    s.on('session', (session: http2.ServerHttp2Session) => {
      sessions.add(session)
      session.once('close', () => sessions.delete(session))
      if (limits.idleTimeoutMs > 0) session.setTimeout(limits.idleTimeoutMs, closeIdleSession)
    })
    s.setTimeout(0)
    return s
  }

  const tcp = createTcpServer({ noDelay: true, pauseOnConnect: false })
  // The HTTP/1 server never listens itself: it must still track its connections
  // (closeIdleConnections on shutdown, the header-timeout checker), which Node
  // sets up when a server emits 'listening'.
  tcp.once('listening', () => h1.emit('listening'))
  tcp.once('close', () => h1.close())
  const listener: DualListener = {
    tcp,
    h1,
    get h2() {
      h2 ??= createH2()
      return h2
    },
    sessions,
    limits,
    serve(socket: ConnSocket, isH2: boolean) {
      socket[kListener] = listener
      if (isH2) {
        if (limits.tcpKeepAliveMs > 0) socket.setKeepAlive(true, limits.tcpKeepAliveMs)
        listener.h2.emit('connection', socket)
        return
      }
      acceptLimits(socket, limits)
      socket.on('close', onClose)
      h1.emit('connection', socket)
    },
  }
  tcp.on('connection', (socket: ConnSocket) => {
    socket[kListener] = listener
    socket[kSniffed] = null
    acceptLimits(socket, limits)
    socket.on('data', onSniffData)
    socket.on('error', swallow)
    socket.on('close', onClose)
  })
  return listener
}

/**
 * Gives an HTTP/1.1 connection back to its listener's HTTP server after an
 * upgrade that did not switch protocols: `unread` (bytes the client sent
 * after the upgrade request) is parsed first. False if the socket is not one
 * of a listener's.
 */
export function serveAgain(socket: net.Socket, unread: Buffer): boolean {
  const l = (socket as ConnSocket)[kListener]
  if (l === undefined || socket.destroyed) return false
  socket.pause()
  if (unread.length > 0) socket.unshift(unread)
  l.h1.emit('connection', socket)
  socket.resume()
  return true
}

function acceptLimits(socket: ConnSocket, limits: ConnectionLimits): void {
  if (limits.tcpKeepAliveMs > 0) socket.setKeepAlive(true, limits.tcpKeepAliveMs)
  socket[kDeadline] = setTimeout(onHeaderDeadline, limits.readHeaderTimeoutMs, socket)
}

function isTunnelledUpgrade(req: http.IncomingMessage): boolean {
  const up = req.headers.upgrade
  return up !== undefined && up.toLowerCase() !== 'h2c'
}

// Bytes are collected until they either are the whole preface or stop being a
// prefix of it. (Waiting on 'readable' with the bytes pushed back made the
// stream report them again at once: a busy loop on one byte.)
function onSniffData(this: ConnSocket, chunk: Buffer): void {
  const prior = this[kSniffed]
  const seen = prior === null || prior === undefined ? chunk : Buffer.concat([prior, chunk])
  const n = Math.min(seen.length, PREFACE.length)
  if (seen.compare(PREFACE, 0, n, 0, n) === 0 && seen.length < PREFACE.length) {
    this[kSniffed] = seen
    return
  }
  this[kSniffed] = null
  this.removeListener('data', onSniffData)
  dispatch(this, this[kListener]!, seen)
}

function dispatch(socket: ConnSocket, l: DualListener, seen: Buffer): void {
  socket.removeListener('error', swallow)
  if (seen.length >= PREFACE.length && seen.compare(PREFACE, 0, PREFACE.length, 0, PREFACE.length) === 0) {
    // h2 sessions have no read-header timeout in Go either; keep-alive still applies.
    clearDeadline(socket)
    l.h2.emit('connection', new H2cSocket(socket, seen))
    return
  }
  socket.pause()
  socket.unshift(seen)
  l.h1.emit('connection', socket)
  socket.resume()
}

function clearDeadline(socket: ConnSocket): void {
  const t = socket[kDeadline]
  if (t !== undefined && t !== null) {
    clearTimeout(t)
    socket[kDeadline] = null
  }
}

function onHeaderDeadline(socket: ConnSocket): void {
  socket[kDeadline] = null
  socket.destroy()
}

function onClose(this: ConnSocket): void {
  clearDeadline(this)
}

function closeIdleSession(this: http2.ServerHttp2Session): void {
  this.close()
}

function swallow(): void {
  // Errors before the protocol is known (client reset): nothing to answer.
}

function onClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
  if (!socket.writable || (err as { code?: string }).code === 'ECONNRESET') {
    socket.destroy()
    return
  }
  const code = (err as { code?: string }).code
  const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
  const reason = status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: ${reason.length + 1}\r\n\r\n${reason}\n`)
}
