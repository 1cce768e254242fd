// A stand-in for the autoscaler's websocket stat server (spec §3.3): decodes
// every binary frame as WireStatMessages and records it, records text frames
// apart (the real server logs and drops them), answers kubelet probes with
// 200, and can misbehave on demand: close every connection with a code
// (1012 = restarting), stop and restart on the same port, stop answering pings.

import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { WebSocketServer } from 'ws'
import { decodeWireStatMessages, type Stat, type WireStatMessage } from '@sluice/core/stat-proto'
import { freePort } from './process.ts'

/** One binary frame, decoded. */
export interface ReceivedFrame {
  /** performance.now() on receipt. */
  at: number
  /** Which accepted connection (1-based) it came on. */
  connection: number
  messages: WireStatMessage[]
}

/** One message with a stat (the stat server skips those without). */
export interface ReceivedStat {
  namespace: string
  name: string
  stat: Stat
  at: number
  /** Index of its frame in `frames`. */
  frame: number
}

export interface TestAutoscalerOptions {
  /** 0 (an ephemeral port) by default. */
  port?: number
  /** Called for every stat, e.g. by a local autoscaler. */
  onStat?: (s: ReceivedStat) => void
  /** Keep frames/messages in memory (default true; a long-lived user may not want to). */
  record?: boolean
}

// The parts of a ws server-side socket used here, declared locally because
// test/helpers/ws.d.ts describes only a subset of `ws`.
interface ServerSocket {
  readonly readyState: number
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): unknown
  on(event: 'ping', listener: (data: Buffer) => void): unknown
  on(event: 'close', listener: (code: number) => void): unknown
  on(event: 'error', listener: (err: Error) => void): unknown
  pong(data?: Buffer): void
  close(code?: number): void
  terminate(): void
}

interface Waiter {
  check: () => boolean
  resolve: () => void
}

const OPEN = 1

function isKubeletProbe(req: http.IncomingMessage): boolean {
  return (req.headers['user-agent'] ?? '').startsWith('kube-probe/') || !!req.headers['k-kubelet-probe']
}

export class TestAutoscaler {
  /** Decoded binary frames, in arrival order. */
  readonly frames: ReceivedFrame[] = []
  /** Every message with a stat, flattened across frames. */
  readonly messages: ReceivedStat[] = []
  /** Text frames (ignored by the real server). */
  readonly textFrames: string[] = []
  /** performance.now() of every ping received. */
  readonly pings: number[] = []
  /** Binary frames that did not decode. */
  decodeErrors = 0
  /** Kubelet probes answered. */
  probes = 0
  /** Websocket connections accepted so far (across restarts). */
  connectionsAccepted = 0
  /** Accepted connections that have since closed. */
  connectionsClosed = 0
  /** Every closed connection: its number, the close code seen, performance.now(). */
  readonly closes: Array<{ connection: number; code: number; at: number }> = []
  /** When false, pings get no pong (to exercise the client's pong timeout). */
  answerPings = true

  private readonly wss: WebSocketServer
  private readonly onStat: ((s: ReceivedStat) => void) | undefined
  private readonly record: boolean
  private server: http.Server | undefined
  private readonly rawSockets = new Set<net.Socket>()
  private readonly clients = new Set<ServerSocket>()
  private waiters: Waiter[] = []
  private boundPort: number

  constructor(opts: TestAutoscalerOptions = {}) {
    // Pongs are ours to send (answerPings). Options through a variable: the
    // ws.d.ts shim does not declare autoPong.
    const wssOptions = { noServer: true as const, autoPong: false }
    this.wss = new WebSocketServer(wssOptions)
    this.onStat = opts.onStat
    this.record = opts.record ?? true
    this.boundPort = opts.port ?? 0
  }

  get port(): number {
    return this.boundPort
  }

  /** ws://127.0.0.1:<port> (any path is served). */
  get url(): string {
    return `ws://127.0.0.1:${this.boundPort}`
  }

  get listening(): boolean {
    return this.server !== undefined
  }

  /** The close codes in `closes`. */
  get closeCodes(): number[] {
    return this.closes.map((c) => c.code)
  }

  /** Connections open right now. */
  get openConnections(): number {
    return this.clients.size
  }

  /** Listens (again, on the same port after a stop). */
  async start(): Promise<void> {
    if (this.server !== undefined) return
    const server = http.createServer((req, res) => this.plainRequest(req, res))
    server.on('connection', (s: net.Socket) => {
      this.rawSockets.add(s)
      s.once('close', () => this.rawSockets.delete(s))
    })
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.upgrade(req, socket, head))
    // A fixed port outside the ephemeral range: a restart must get it back
    // while the activator keeps dialling it.
    if (this.boundPort === 0) this.boundPort = await freePort()
    server.listen(this.boundPort, '127.0.0.1')
    await once(server, 'listening')
    this.boundPort = (server.address() as net.AddressInfo).port
    this.server = server
  }

  /** Stop then start on the same port. */
  async restart(opts: { closeCode?: number } = {}): Promise<void> {
    await this.stop(opts)
    await this.start()
  }

  /**
   * Stops listening. Open connections are cut without a close frame (a crash,
   * an unreachable autoscaler) unless `closeCode` is given (1012 is what the
   * real one sends when shutting down).
   */
  async stop(opts: { closeCode?: number } = {}): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    if (opts.closeCode !== undefined) await this.closeAll(opts.closeCode)
    for (const c of this.clients) c.terminate()
    for (const s of this.rawSockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    this.notify()
  }

  /** Sends a close frame with `code` on every connection; resolves once they are all closed. */
  async closeAll(code = 1012, timeoutMs = 1000): Promise<void> {
    const clients = [...this.clients]
    for (const c of clients) c.close(code)
    const done = this.waitFor(() => clients.every((c) => !this.clients.has(c)), timeoutMs, 'connections to close')
      .catch(() => {
        for (const c of clients) c.terminate()
      })
    await done
  }

  /** Forgets what was recorded (frames, messages, text frames, pings). */
  clear(): void {
    this.frames.length = 0
    this.messages.length = 0
    this.textFrames.length = 0
    this.pings.length = 0
  }

  /**
   * Resolves once `predicate` holds: checked now, after every server event,
   * and every 10 ms (for state outside this server, e.g. a client's).
   */
  waitFor(predicate: () => boolean, timeoutMs = 2000, description = 'condition'): Promise<void> {
    if (predicate()) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        check: predicate,
        resolve: () => {
          clearTimeout(timer)
          clearInterval(poll)
          resolve()
        },
      }
      const timer = setTimeout(() => {
        clearInterval(poll)
        this.waiters = this.waiters.filter((w) => w !== waiter)
        reject(new Error(`test autoscaler: timed out after ${timeoutMs} ms waiting for ${description}`))
      }, timeoutMs)
      const poll = setInterval(() => this.notify(), 10)
      this.waiters.push(waiter)
    })
  }

  /** The first recorded stat (old or new) that matches. */
  async waitForStat(match: (s: ReceivedStat) => boolean, timeoutMs = 2000): Promise<ReceivedStat> {
    let found: ReceivedStat | undefined
    await this.waitFor(() => (found = this.messages.find(match)) !== undefined, timeoutMs, 'a matching stat')
    return found!
  }

  /** Resolves with the frames once at least `count` have arrived. */
  async waitForFrames(count: number, timeoutMs = 2000): Promise<ReceivedFrame[]> {
    await this.waitFor(() => this.frames.length >= count, timeoutMs, `${count} frame(s)`)
    return this.frames
  }

  private notify(): void {
    if (this.waiters.length === 0) return
    const ready = this.waiters.filter((w) => w.check())
    if (ready.length === 0) return
    this.waiters = this.waiters.filter((w) => !ready.includes(w))
    for (const w of ready) w.resolve()
  }

  private plainRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (isKubeletProbe(req)) {
      this.probes++
      res.writeHead(200).end()
      return
    }
    // What gorilla's Upgrader answers a request that is not a websocket upgrade.
    res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('Bad Request\n')
  }

  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    if (isKubeletProbe(req)) {
      this.probes++
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
      return
    }
    // gorilla's default CheckOrigin: an Origin, if sent, must match the Host.
    const origin = req.headers.origin
    if (origin !== undefined) {
      let originHost = ''
      try {
        originHost = new URL(origin).host
      } catch { /* an unparsable origin is refused below */ }
      if (originHost.toLowerCase() !== (req.headers.host ?? '').toLowerCase()) {
        socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
        return
      }
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws as unknown as ServerSocket))
  }

  private accept(ws: ServerSocket): void {
    const connection = ++this.connectionsAccepted
    this.clients.add(ws)
    ws.on('message', (data, isBinary) => this.received(connection, data, isBinary))
    ws.on('ping', (data) => {
      this.pings.push(performance.now())
      if (this.answerPings && ws.readyState === OPEN) ws.pong(data)
      this.notify()
    })
    ws.on('error', () => { /* a read error ends the connection, as in the real server */ })
    ws.on('close', (code) => {
      this.clients.delete(ws)
      this.connectionsClosed++
      this.closes.push({ connection, code, at: performance.now() })
      this.notify()
    })
    this.notify()
  }

  private received(connection: number, data: Buffer, isBinary: boolean): void {
    const at = performance.now()
    if (!isBinary) {
      if (this.record) this.textFrames.push(data.toString('utf8'))
      this.notify()
      return
    }
    let messages: WireStatMessage[]
    try {
      messages = decodeWireStatMessages(data)
    } catch {
      this.decodeErrors++
      this.notify()
      return
    }
    const frame = this.frames.length
    if (this.record) this.frames.push({ at, connection, messages })
    for (const m of messages) {
      if (m.stat === undefined) continue
      const s: ReceivedStat = { namespace: m.namespace, name: m.name, stat: m.stat, at, frame }
      if (this.record) this.messages.push(s)
      this.onStat?.(s)
    }
    this.notify()
  }
}

/** A started test autoscaler on 127.0.0.1 (port 0 unless given). */
export async function startTestAutoscaler(opts: TestAutoscalerOptions = {}): Promise<TestAutoscaler> {
  const a = new TestAutoscaler(opts)
  await a.start()
  return a
}
