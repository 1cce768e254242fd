// The autoscaler's websocket stat server (spec §3.3; Knative
// pkg/autoscaler/statserver): activators connect and send one binary frame of
// WireStatMessages per batch. Each message with a stat is handed on, its
// timestamp set to the receipt second when it is 0. Text frames and frames
// that do not decode are logged and dropped; kubelet probes get 200; on
// shutdown every connection is closed with 1012 (service restart) so that
// activators reconnect at once.

import http from 'node:http'
import type net from 'node:net'
import { once } from 'node:events'
import { WebSocketServer, type WebSocket, type RawData } from 'ws'
import { decodeWireStatMessages, type Stat } from '@sluice/core/stat-proto'
import { Header, UserAgent } from '@sluice/core/constants'

/** Close code sent to every connection on shutdown. */
export const CLOSE_SERVICE_RESTART = 1012

export interface StatServerOptions {
  /** Called for every message that carries a stat. */
  onStat: (namespace: string, name: string, stat: Stat) => void
  /** 127.0.0.1: only local activators. */
  host?: string
  /** 0 (any free port) by default. */
  port?: number
  log?: (line: string) => void
  /** Clock for stamping stats (ms). */
  now?: () => number
  /** Frames larger than this close the connection (1009); 1 MiB. */
  maxPayloadBytes?: number
}

function isKubeletProbe(req: http.IncomingMessage): boolean {
  return (req.headers[Header.userAgent] ?? '').startsWith(UserAgent.kubeProbePrefix) || !!req.headers[Header.kubeletProbe]
}

/** gorilla's default CheckOrigin: an Origin, when sent, must name the Host. */
function sameOrigin(req: http.IncomingMessage): boolean {
  const origin = req.headers.origin
  if (origin === undefined || origin === '') return true
  try {
    return new URL(origin).host.toLowerCase() === (req.headers.host ?? '').toLowerCase()
  } catch {
    return false
  }
}

export class StatServer {
  /** Binary frames received. */
  frames = 0
  /** Stats handed on. */
  stats = 0
  decodeErrors = 0
  textFrames = 0
  probes = 0
  connectionsAccepted = 0

  private readonly opts: StatServerOptions
  private readonly log: (line: string) => void
  private readonly now: () => number
  private readonly wss: WebSocketServer
  private readonly clients = new Set<WebSocket>()
  private readonly sockets = new Set<net.Socket>()
  private server: http.Server | undefined
  private boundPort = 0

  constructor(opts: StatServerOptions) {
    this.opts = opts
    this.log = opts.log ?? (() => {})
    this.now = opts.now ?? Date.now
    // No compression, as gorilla's default upgrader.
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: opts.maxPayloadBytes ?? 1 << 20 })
  }

  get port(): number {
    return this.boundPort
  }

  /** ws://host:port: what the activator's SLUICE_AUTOSCALER_URL should be. */
  get url(): string {
    return `ws://${this.opts.host ?? '127.0.0.1'}:${this.boundPort}`
  }

  /** Open websocket connections. */
  get connections(): number {
    return this.clients.size
  }

  async start(): Promise<number> {
    if (this.server !== undefined) return this.boundPort
    const server = http.createServer((req, res) => this.plainRequest(req, res))
    // Knative: ReadHeaderTimeout 1 minute, TCP keep-alive 3 minutes.
    server.headersTimeout = 60_000
    server.on('connection', (s: net.Socket) => {
      s.setKeepAlive(true, 180_000)
      this.sockets.add(s)
      s.once('close', () => this.sockets.delete(s))
    })
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.upgrade(req, socket, head))
    server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1')
    await once(server, 'listening')
    this.server = server
    this.boundPort = (server.address() as net.AddressInfo).port
    return this.boundPort
  }

  /** Closes every connection with 1012, then stops listening. */
  async stop(timeoutMs = 1000): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    const clients = [...this.clients]
    const closed = clients.map((ws) => (ws.readyState === ws.CLOSED ? Promise.resolve() : once(ws, 'close').then(() => {})))
    for (const ws of clients) ws.close(CLOSE_SERVICE_RESTART, 'autoscaler shutting down')
    const force = setTimeout(() => {
      for (const ws of clients) ws.terminate()
    }, timeoutMs)
    await Promise.all(closed)
    clearTimeout(force)
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private plainRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (isKubeletProbe(req)) {
      this.probes++
      res.writeHead(200).end()
      return
    }
    // What gorilla's Upgrade answers a request that is not a websocket handshake.
    res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('Bad Request\n')
  }

  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    if (!sameOrigin(req)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nForbidden\n')
      return
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accepted(ws, req))
  }

  private accepted(ws: WebSocket, req: http.IncomingMessage): void {
    this.connectionsAccepted++
    this.clients.add(ws)
    const peer = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`
    ws.on('message', (data: RawData, isBinary: boolean) => this.message(data, isBinary, peer))
    ws.on('error', (err) => this.log(`autoscaler: stat connection from ${peer}: ${err.message}`))
    ws.once('close', () => this.clients.delete(ws))
  }

  private message(data: RawData, isBinary: boolean, peer: string): void {
    if (!isBinary) {
      this.textFrames++
      this.log(`autoscaler: dropping a text frame from ${peer}: stats come as binary WireStatMessages`)
      return
    }
    this.frames++
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
    let messages
    try {
      messages = decodeWireStatMessages(buf)
    } catch (err) {
      this.decodeErrors++
      this.log(`autoscaler: dropping a frame from ${peer} that is not WireStatMessages: ${(err as Error).message}`)
      return
    }
    let stampSeconds = -1
    for (const m of messages) {
      const stat = m.stat
      if (stat === undefined) continue
      if (stat.timestamp === 0) {
        if (stampSeconds < 0) stampSeconds = Math.floor(this.now() / 1000)
        stat.timestamp = stampSeconds
      }
      this.stats++
      try {
        this.opts.onStat(m.namespace, m.name, stat)
      } catch (err) {
        this.log(`autoscaler: handling a stat for ${m.namespace}/${m.name} failed: ${(err as Error).message}`)
      }
    }
  }
}
