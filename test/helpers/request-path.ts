// Helpers for request-path tests: an app that holds requests and counts how
// many run at once, raw-socket exchanges, and in-flight accounting checks.

import http from 'node:http'
import net from 'node:net'
import { close, listen, waitFor, type RawResponse } from './servers.ts'

/** The part of startQueueProxy()'s result these helpers read. */
export interface RunningQueueProxy {
  qp: { ctx: { active: number; stats: { inFlight: number }; breaker: { inFlight: number; pending: number } | null } }
}

/** Polls until cond() holds; false if it did not within timeoutMs (2 s by default). */
export { waitFor }

/** What the queue-proxy still accounts for: requests/tunnels, stats concurrency, breaker slots. */
export function accounting(qp: RunningQueueProxy): { active: number; stats: number; running: number; waiting: number } {
  const ctx = qp.qp.ctx
  return { active: ctx.active, stats: ctx.stats.inFlight, running: ctx.breaker?.inFlight ?? 0, waiting: ctx.breaker?.pending ?? 0 }
}

/** Waits until nothing is in flight anywhere (no leaked count, slot or waiter). */
export function settled(qp: RunningQueueProxy, timeoutMs = 2000): Promise<boolean> {
  return waitFor(() => {
    const a = accounting(qp)
    return a.active === 0 && a.stats === 0 && a.running === 0 && a.waiting === 0
  }, timeoutMs)
}

/**
 * A user container that records every request and how many run at once.
 * `/wait/<ms>` answers after ms; any other path is held until released.
 */
export class HoldingApp {
  readonly server: http.Server
  port = 0
  current = 0
  max = 0
  /** Paths in arrival order. */
  readonly paths: string[] = []
  /** Requests that ended before the app answered them (client or proxy gave up). */
  readonly abandoned: string[] = []
  private readonly held: http.ServerResponse[] = []

  private constructor() {
    this.server = http.createServer((req, res) => this.onRequest(req, res))
  }

  static async start(): Promise<HoldingApp> {
    const app = new HoldingApp()
    app.port = await listen(app.server)
    return app
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = req.url ?? ''
    this.paths.push(path)
    if (++this.current > this.max) this.max = this.current
    res.on('close', () => {
      this.current--
      if (!res.writableFinished) this.abandoned.push(path)
    })
    req.resume()
    const m = /^\/wait\/(\d+)/.exec(path)
    if (m !== null) setTimeout(() => res.end(`done ${path}`), Number(m[1]))
    else this.held.push(res)
  }

  get heldCount(): number {
    return this.held.length
  }

  /** Answers the oldest held request; false if none is held. */
  releaseOne(): boolean {
    const res = this.held.shift()
    if (res === undefined) return false
    res.end('released')
    return true
  }

  releaseAll(): void {
    while (this.releaseOne());
  }

  stop(): Promise<void> {
    this.releaseAll()
    return close(this.server)
  }
}

/** A request that can be aborted before it completes. */
export interface OpenRequest {
  req: http.ClientRequest
  /** Resolves with the response, or with the error (aborts are expected here). */
  done: Promise<RawResponse | Error>
}

export function openRequest(url: string, opts: http.RequestOptions = {}): OpenRequest {
  let req!: http.ClientRequest
  const done = new Promise<RawResponse | Error>((resolve) => {
    req = http.request(url, { agent: false, ...opts }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', resolve)
    })
    req.on('error', resolve)
    req.end()
  })
  return { req, done }
}

export interface RawExchange {
  /** Everything the server sent. */
  text: string
  /** The server closed the connection (rather than the wait running out). */
  closed: boolean
}

/** Writes raw bytes on a fresh connection and reads until the server closes or timeoutMs passes. */
export function rawExchange(port: number, data: string | Buffer, timeoutMs = 2000): Promise<RawExchange> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let finished = false
    const end = (closed: boolean) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      sock.destroy()
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed })
    }
    const timer = setTimeout(end, timeoutMs, false)
    sock.on('data', (c: Buffer) => chunks.push(c))
    sock.on('end', () => end(true))
    sock.on('close', () => end(true))
    sock.on('error', () => end(true))
    sock.write(data)
  })
}

/** A loopback port nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const s = net.createServer()
  const port = await listen(s)
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

/** The status code of a raw HTTP/1.1 response text (0 if there is none). */
export function rawStatus(text: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text)
  return m === null ? 0 : Number(m[1])
}
