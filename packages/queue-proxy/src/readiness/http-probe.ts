// HTTP readiness probe (spec §1.7, quirk §7.12): GET with `User-Agent:
// kube-probe//` plus the probe's headers, a fresh connection per request,
// redirects followed like Go's http.Client, ready iff the final status is
// 200-399. With HTTP/2 auto-detection (HEAD semantics) the GET first goes over
// h2c prior knowledge and falls back to HTTP/1.1 on error or a non-ready status.
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http'
import { httpModule } from '@sluice/core/builtins'
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2'
import { UserAgent } from '@sluice/core/constants'
import type { HTTPGetAction } from './probe-spec.ts'
import { dialErrorText, joinHostPort } from './tcp-probe.ts'

/** Go's http.Client gives up when the 10th request answers with another redirect. */
const MAX_REQUESTS = 10
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])
/** Dropped when a redirect leaves the original host (Go does the same). */
const SENSITIVE_HEADERS = ['authorization', 'www-authenticate', 'cookie', 'cookie2'] as const
/** Connection-specific headers HTTP/2 forbids; Node throws on them. */
const H2_FORBIDDEN: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host'])

interface Target {
  secure: boolean
  hostname: string
  port: number
  /** Path plus query, always starting with `/`. */
  path: string
  url: string
}

interface Hop {
  status: number
  location: string
}

export interface HttpProbeOptions {
  /** Try h2c prior knowledge first (ENABLE_HTTP2_AUTO_DETECTION). HTTPS targets always use HTTP/1.1. */
  http2AutoDetect?: boolean
}

export function isReadyStatus(status: number): boolean {
  return status >= 200 && status < 400
}

function notReady(status: number): Error {
  return new Error(`HTTP probe did not respond Ready, got status code: ${status}`)
}

export class HttpProbe {
  private readonly target: Target
  private readonly headers: OutgoingHttpHeaders
  private readonly h2Headers: OutgoingHttpHeaders
  private readonly http2AutoDetect: boolean

  constructor(action: HTTPGetAction, opts: HttpProbeOptions = {}) {
    const secure = action.scheme === 'HTTPS'
    const path = action.path.startsWith('/') ? action.path : `/${action.path}`
    const url = `${secure ? 'https' : 'http'}://${joinHostPort(action.host, action.port)}${path}`
    this.target = { secure, hostname: action.host, port: action.port, path, url }
    this.headers = buildHeaders(action)
    this.h2Headers = {}
    for (const name of Object.keys(this.headers)) {
      if (!H2_FORBIDDEN.has(name)) this.h2Headers[name] = this.headers[name]
    }
    this.http2AutoDetect = opts.http2AutoDetect === true && !secure
  }

  /** Resolves when ready; rejects with a one-line reason otherwise. */
  async run(timeoutMs: number): Promise<void> {
    if (!this.http2AutoDetect) return this.runHttp1(timeoutMs)
    // Each protocol gets the full timeout, as Go uses one client per protocol.
    if (await this.h2cReady(timeoutMs)) return
    try {
      await this.runHttp1(timeoutMs)
    } catch (err) {
      throw new Error(`failed to run HTTP protocol probe with error: ${(err as Error).message}`, { cause: err })
    }
  }

  private async runHttp1(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let target = this.target
    let headers = this.headers
    for (let sent = 1; ; sent++) {
      const hop = await get(target, headers, deadline - Date.now())
      if (!REDIRECT_STATUSES.has(hop.status) || hop.location === '') {
        if (!isReadyStatus(hop.status)) throw notReady(hop.status)
        return
      }
      if (sent >= MAX_REQUESTS) throw new Error(`Get "${hop.location}": stopped after 10 redirects`)
      const next = redirectTarget(target, hop.location)
      headers = redirectHeaders(this.headers, this.target, target, next)
      target = next
    }
  }

  /** One GET over h2c prior knowledge; true iff it answered 200-299 (3xx is left to HTTP/1.1, which follows redirects). */
  private h2cReady(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = this.target
      let session: ClientHttp2Session
      try {
        // Loaded on first use: most revisions never probe over h2c (start-up cost).
        session = process.getBuiltinModule('node:http2').connect(`http://${joinHostPort(t.hostname, t.port)}`)
      } catch {
        resolve(false)
        return
      }
      const finish = (ok: boolean): void => {
        clearTimeout(timer)
        session.destroy()
        resolve(ok)
      }
      const timer = setTimeout(finish, timeoutMs, false)
      session.on('error', () => finish(false))
      try {
        const stream = session.request({ ...this.h2Headers, ':method': 'GET', ':path': t.path })
        stream.on('error', () => finish(false))
        stream.on('response', (h: IncomingHttpHeaders) => {
          const status = Number(h[':status'])
          stream.resume()
          // Let the body drain before closing the session; the timer bounds it.
          stream.on('end', () => finish(status >= 200 && status < 300))
        })
        stream.end()
      } catch {
        finish(false)
      }
    })
  }
}

/** UA first so that a user-supplied User-Agent replaces it; repeated names become multi-valued. */
function buildHeaders(action: HTTPGetAction): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {}
  let userAgentSet = false
  for (const { name, value } of action.httpHeaders) {
    const key = name.toLowerCase()
    if (key === 'user-agent' && !userAgentSet) {
      userAgentSet = true
      headers[key] = value
      continue
    }
    const prev = headers[key]
    if (prev === undefined) headers[key] = value
    else if (Array.isArray(prev)) prev.push(value)
    else headers[key] = [String(prev), value]
  }
  if (!userAgentSet) headers['user-agent'] = UserAgent.queueHttpProbe
  return headers
}

function redirectTarget(from: Target, location: string): Target {
  let u: URL
  try {
    u = new URL(location, from.url)
  } catch {
    throw new Error(`Get "${location}": invalid redirect location`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new Error(`Get "${location}": unsupported protocol scheme "${u.protocol.slice(0, -1)}"`)
  }
  const secure = u.protocol === 'https:'
  const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname
  const port = u.port === '' ? (secure ? 443 : 80) : Number(u.port)
  return { secure, hostname, port, path: `${u.pathname}${u.search}`, url: u.href }
}

/** Original headers, minus credentials when the host changed, plus Referer (not on https → http). */
function redirectHeaders(original: OutgoingHttpHeaders, first: Target, prev: Target, next: Target): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { ...original }
  if (next.hostname !== first.hostname) {
    for (const name of SENSITIVE_HEADERS) delete headers[name]
  }
  if (!(prev.secure && !next.secure) && headers['referer'] === undefined) headers['referer'] = prev.url
  return headers
}

/** One HTTP/1.1 GET on its own connection; resolves on the response head, drains the body in the background. */
function get(target: Target, headers: OutgoingHttpHeaders, timeoutMs: number): Promise<Hop> {
  return new Promise((resolve, reject) => {
    const timeoutError = (): Error =>
      new Error(`Get "${target.url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`)
    if (timeoutMs <= 0) {
      reject(timeoutError())
      return
    }
    let req: ClientRequest
    try {
      const send = target.secure ? process.getBuiltinModule('node:https').request : httpModule().request
      req = send({ host: target.hostname, port: target.port, path: target.path, method: 'GET', headers, agent: false })
    } catch (err) {
      reject(new Error(`Get "${target.url}": ${(err as Error).message}`))
      return
    }
    // Also bounds the body drain after the head arrived (rejecting then is a no-op).
    const timer = setTimeout(() => {
      reject(timeoutError())
      req.destroy()
    }, timeoutMs)
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      const address = joinHostPort(target.hostname, target.port)
      reject(new Error(`Get "${target.url}": ${dialErrorText(err, address) ?? err.message}`))
    })
    req.on('response', (res: IncomingMessage) => {
      res.on('error', ignore)
      res.on('close', () => clearTimeout(timer))
      res.resume()
      resolve({ status: res.statusCode ?? 0, location: headerValue(res.headers.location) })
    })
    req.end()
  })
}

function headerValue(v: string | string[] | undefined): string {
  return (Array.isArray(v) ? v[0] : v) ?? ''
}

function ignore(): void {}
