// Helpers for the upgrade-hardening tests: an app (or fake pod) that answers
// upgrade requests in scripted ways on the raw socket and records every byte
// it receives after each upgrade head, and a raw client connection.

import http from 'node:http'
import net from 'node:net'
import { close, listen } from './servers.ts'
import { waitFor } from './request-path.ts'

/** One upgrade request as the app received it, and what came after its head on that connection. */
export interface SeenUpgrade {
  url: string
  headers: http.IncomingHttpHeaders
  /** Bytes after the head, as latin1 text, in arrival order. */
  after: string
  /** Bytes after the head that arrived before the app answered. */
  beforeAnswer: string
  closed: boolean
}

export interface UpgradeApp {
  server: http.Server
  port: number
  /** Plain (non-upgrade) requests, probes excluded. */
  requests: Array<{ url: string; headers: http.IncomingHttpHeaders }>
  upgrades: SeenUpgrade[]
  stop(): Promise<void>
}

const SWITCH = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'

/**
 * Answers an upgrade by its path, keeping the connection open unless said:
 * `/refuse` 403 with a Content-Length body; `/refuse-chunked` 403 with a
 * chunked body and a trailer; `/refuse-until-close` 403 whose body ends at close; `/refuse-body` 403 echoing the request's
 * Content-Length body; `/continue` 100 Continue, then 101 and echo;
 * `/late` 101 and echo after 300 ms; `/wrong-protocol` a 101 to h2c;
 * `/half-head` part of a head, then closes; `/huge-head` a 5000-byte header;
 * `/never` nothing; anything else 101 and echo ("echo:" + bytes).
 * Plain requests get 200 "queue" (what the activator's probe wants).
 */
export async function startUpgradeApp(): Promise<UpgradeApp> {
  const requests: UpgradeApp['requests'] = []
  const upgrades: SeenUpgrade[] = []
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    if (req.headers['k-network-probe'] === undefined) requests.push({ url: req.url ?? '', headers: req.headers })
    res.end('queue')
  })
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    sockets.add(socket)
    const seen: SeenUpgrade = { url: req.url ?? '', headers: req.headers, after: head.toString('latin1'), beforeAnswer: '', closed: false }
    upgrades.push(seen)
    let answered = false
    let echo = false
    socket.on('data', (d: Buffer) => {
      seen.after += d.toString('latin1')
      if (echo) socket.write(`echo:${d.toString('latin1')}`)
    })
    socket.on('error', () => {})
    // Node's HTTP server allows half-open sockets: the proxy's EOF shows as 'end'.
    socket.on('end', () => {
      seen.closed = true
      socket.end()
    })
    socket.on('close', () => {
      seen.closed = true
      sockets.delete(socket)
    })
    const answer = (text: string, thenEcho = false): void => {
      if (!answered) seen.beforeAnswer = seen.after
      answered = true
      socket.write(text)
      echo = thenEcho
    }
    switch (req.url) {
      case '/refuse':
        return answer('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nforbidden\n')
      case '/refuse-chunked':
        return answer('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Why\r\n\r\n5\r\nforbi\r\n5;ext=1\r\ndden\n\r\n0\r\nX-Why: policy\r\n\r\n')
      case '/refuse-body': {
        const want = Number(req.headers['content-length'])
        const check = (): void => {
          if (answered || seen.after.length < want) return
          const body = seen.after.slice(0, want)
          answer(`HTTP/1.1 403 Forbidden\r\nContent-Length: ${4 + body.length}\r\n\r\ngot ${body}`)
        }
        socket.on('data', check)
        return check()
      }
      case '/continue':
        answer('HTTP/1.1 100 Continue\r\n\r\n')
        setTimeout(() => answer(SWITCH, true), 20)
        return
      case '/late':
        setTimeout(() => answer(SWITCH, true), 300)
        return
      case '/wrong-protocol':
        return answer('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n')
      case '/refuse-until-close':
        answer('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nforbidden\n')
        socket.end()
        return
      case '/half-head':
        answer('HTTP/1.1 403 Forb')
        socket.end()
        return
      case '/huge-head':
        return answer(`HTTP/1.1 403 Forbidden\r\nX-Big: ${'a'.repeat(5000)}\r\nContent-Length: 0\r\n\r\n`)
      case '/never':
        return
      default:
        return answer(SWITCH, true)
    }
  })
  const port = await listen(server)
  return {
    server,
    port,
    requests,
    upgrades,
    stop: async () => {
      for (const s of sockets) s.destroy()
      await close(server)
    },
  }
}

/** A websocket-style upgrade request head for `path` (extra headers appended). */
export function upgradeRequest(path: string, extra: Record<string, string> = {}): string {
  let head = `GET ${path} HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n`
  for (const [k, v] of Object.entries(extra)) head += `${k}: ${v}\r\n`
  return head + '\r\n'
}

export const SECOND = 'GET /second HTTP/1.1\r\nHost: app.example.com\r\n\r\n'

/** GET /second with extra headers (the activator's routing headers). */
export function second(extra: Record<string, string> = {}): string {
  let head = 'GET /second HTTP/1.1\r\nHost: app.example.com\r\n'
  for (const [k, v] of Object.entries(extra)) head += `${k}: ${v}\r\n`
  return head + '\r\n'
}

/** The number of HTTP/1.1 responses in a raw client's text. */
export function responses(text: string): number {
  return text.split('HTTP/1.1 ').length - 1
}

/** A raw client connection: everything received, and whether the server closed it. */
export class RawClient {
  readonly socket: net.Socket
  text = ''
  closed = false
  private readonly done: Promise<void>

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1')
    this.socket.on('data', (d: Buffer) => { this.text += d.toString('latin1') })
    this.socket.on('error', () => {})
    this.done = new Promise((resolve) => this.socket.on('close', () => {
      this.closed = true
      resolve()
    }))
  }

  write(s: string): void {
    this.socket.write(s)
  }

  /** Waits until the text received contains `s`; false after timeoutMs. */
  received(s: string, timeoutMs = 5000): Promise<boolean> {
    return waitFor(() => this.text.includes(s), timeoutMs)
  }

  /** Resolves true once the server closed the connection, false after timeoutMs. */
  async closedWithin(timeoutMs = 5000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const r = await Promise.race([this.done.then(() => true), new Promise<boolean>((resolve) => { timer = setTimeout(resolve, timeoutMs, false) })])
    clearTimeout(timer)
    return r
  }

  destroy(): void {
    this.socket.destroy()
  }
}
