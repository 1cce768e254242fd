// One TCP port that speaks HTTP/1.1 and h2c with prior knowledge, as Go's
// h2c.NewHandler does (spec §1.4). The first bytes of each connection decide:
// the HTTP/2 connection preface goes to the http2 server, anything else to
// the HTTP/1 server. The choice is made once per connection, not per request.

import http from 'node:http'
import type http2 from 'node:http2'
import net from 'node:net'
import { H2cSocket } from './h2c-socket.ts'

export type RequestHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void
export type UpgradeHandler = (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')

export interface DualListenerOptions {
  /** Requests of both protocols. */
  onRequest: RequestHandler
  /** HTTP/1.1 Upgrade requests other than h2c (websockets). */
  onUpgrade?: UpgradeHandler
  /** Go's ReadHeaderTimeout: 1 minute. */
  headersTimeoutMs?: number
  maxHeaderSize?: number
}

export interface DualListener {
  readonly tcp: net.Server
  readonly h1: http.Server
  /** Created on the first HTTP/2 connection: node:http2 costs start-up time most pods never need. */
  readonly h2: http2.Http2Server
  /** Live HTTP/2 sessions, closed gracefully (GOAWAY) on shutdown. */
  readonly sessions: Set<http2.ServerHttp2Session>
}

interface SniffSocket extends net.Socket {
  sluiceListener?: DualListener
}

export function createDualListener(opts: DualListenerOptions): DualListener {
  const headersTimeout = opts.headersTimeoutMs ?? 60_000
  const h1 = http.createServer({
    // Revision timeouts bound requests, not Node's defaults (300 s request timeout).
    requestTimeout: 0,
    headersTimeout,
    // Go's server keeps idle keep-alive connections open; ingress and the activator reuse them.
    keepAliveTimeout: 0,
    maxHeaderSize: opts.maxHeaderSize ?? 16384,
    noDelay: true,
    // An h2c upgrade is answered over HTTP/1.1 (RFC 9113 lets a server ignore it);
    // other upgrades (websockets) are tunnelled.
    shouldUpgradeCallback: isTunnelledUpgrade,
  } as http.ServerOptions, opts.onRequest as http.RequestListener)
  if (opts.onUpgrade) h1.on('upgrade', opts.onUpgrade)
  h1.on('clientError', onClientError)

  const sessions = new Set<http2.ServerHttp2Session>()
  let h2: http2.Http2Server | null = null
  const createH2 = (): http2.Http2Server => {
    const s = process.getBuiltinModule('node:http2').createServer({ maxSessionMemory: 32 }, opts.onRequest as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void)
    s.on('session', (session: http2.ServerHttp2Session) => {
      sessions.add(session)
      session.once('close', () => sessions.delete(session))
    })
    s.setTimeout(0)
    return s
  }

  const tcp = net.createServer({ noDelay: true, pauseOnConnect: false }, onConnection)
  // The HTTP/1 server never listens itself: it must still track its connections
  // (closeIdleConnections on shutdown, the header-timeout checker), which Node
  // sets up when a server emits 'listening'.
  tcp.once('listening', () => h1.emit('listening'))
  const listener: DualListener = {
    tcp,
    h1,
    get h2() {
      h2 ??= createH2()
      return h2
    },
    sessions,
  }
  tcp.on('connection', (s: SniffSocket) => { s.sluiceListener = listener })
  return listener
}

function isTunnelledUpgrade(req: http.IncomingMessage): boolean {
  const up = req.headers.upgrade
  return up !== undefined && up.toLowerCase() !== 'h2c'
}

function onConnection(this: net.Server, socket: SniffSocket): void {
  socket.once('data', onFirstData)
  socket.on('error', swallow)
}

function onFirstData(this: SniffSocket, chunk: Buffer): void {
  const l = this.sluiceListener!
  // A short first read that is still a prefix of the preface: wait for more.
  if (chunk.length < PREFACE.length && PREFACE.subarray(0, chunk.length).equals(chunk)) {
    this.pause()
    this.unshift(chunk)
    this.once('readable', onMoreData)
    return
  }
  dispatch(this, l, chunk)
}

function onMoreData(this: SniffSocket): void {
  const chunk = this.read() as Buffer | null
  if (chunk === null) {
    this.once('readable', onMoreData)
    return
  }
  if (chunk.length < PREFACE.length && PREFACE.subarray(0, chunk.length).equals(chunk)) {
    this.unshift(chunk)
    this.once('readable', onMoreData)
    return
  }
  dispatch(this, this.sluiceListener!, chunk)
}

function dispatch(socket: SniffSocket, l: DualListener, chunk: Buffer): void {
  socket.removeListener('error', swallow)
  if (chunk.length >= PREFACE.length && chunk.subarray(0, PREFACE.length).equals(PREFACE)) {
    l.h2.emit('connection', new H2cSocket(socket, chunk))
    return
  }
  socket.pause()
  socket.unshift(chunk)
  l.h1.emit('connection', socket)
  socket.resume()
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
