// What the app (or pod) answers an HTTP/1.1 Upgrade request, read by the raw
// tunnels of both components. As in Go's reverse proxy, only a "101 Switching
// Protocols" naming the requested protocol turns the connection into a raw
// tunnel; 1xx interim answers before it are relayed as they come (at most 5,
// Go's limit); any other final answer is an ordinary response, relayed as
// framed by its own headers with Connection: close, and nothing follows it.
// Heads are bounded (the 1 MiB header limit) and parsed strictly: a malformed
// one is a 502, never passed through.

const MAX_INTERIM = 5
// Go's limit on a chunk-size or trailer line.
const MAX_LINE = 4096

/** Why the answer cannot be relayed; the message is Go's wording, the 502 body. */
export class UpstreamHeadError extends Error {}

export interface UpstreamHead {
  status: number
  reason: string
  http11: boolean
  /** Flat [name, value, ...] as received. */
  headers: string[]
  /** The head as received, blank line included: how a 1xx or the 101 is relayed. */
  raw: Buffer
}

/** What UpgradeResponse.next() found. */
export type UpgradeStep = 'more' | 'interim' | 'switched' | 'refused'

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/

/** Controls other than HTAB (DEL included) are not allowed in a reason or a value. */
function badText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if ((c < 32 && c !== 9) || c === 127) return true
  }
  return false
}

export class UpgradeResponse {
  /** The head next() last found. */
  head: UpstreamHead | null = null
  private buf: Buffer = Buffer.alloc(0)
  private len = 0
  /** Where the search for the head's end resumes. */
  private scanned = 0
  private interims = 0
  private readonly maxHeaderBytes: number
  /** The protocol the request asked for (its Upgrade header). */
  private readonly protocol: string

  constructor(maxHeaderBytes: number, protocol: string) {
    this.maxHeaderBytes = maxHeaderBytes
    this.protocol = protocol
  }

  /** Bytes of an unfinished head are waiting (an EOF now is "unexpected"). */
  get partial(): boolean {
    return this.len > 0
  }

  append(chunk: Buffer): void {
    const need = this.len + chunk.length
    if (this.len === 0) {
      this.buf = chunk
    } else {
      // Doubling: a head dribbled a byte at a time costs linear copying, not quadratic.
      if (need > this.buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(need, 2 * this.len, 4096))
        this.buf.copy(grown, 0, 0, this.len)
        this.buf = grown
      }
      chunk.copy(this.buf, this.len)
    }
    this.len = need
  }

  /** The next step; throws UpstreamHeadError for a head to answer 502. */
  next(): UpgradeStep {
    const end = this.headEnd()
    if (end < 0 ? this.len >= this.maxHeaderBytes : end > this.maxHeaderBytes) {
      throw new UpstreamHeadError(`net/http: server response headers exceeded ${this.maxHeaderBytes} bytes; aborted`)
    }
    if (end < 0) return 'more'
    const head = parseHead(this.buf.subarray(0, end))
    this.head = head
    this.buf = this.buf.subarray(end, this.len)
    this.len -= end
    this.scanned = 0
    if (head.status === 101) {
      // Go's check: the 101 must name (Connection and Upgrade) what was asked for.
      const got = headerValue(head.headers, 'upgrade')
      if (!hasToken(head.headers, 'connection', 'upgrade') || got.toLowerCase() !== this.protocol.toLowerCase()) {
        throw new UpstreamHeadError(`backend tried to switch protocol ${JSON.stringify(got)} when ${JSON.stringify(this.protocol)} was requested`)
      }
      return 'switched'
    }
    if (head.status < 200) {
      if (++this.interims > MAX_INTERIM) throw new UpstreamHeadError('net/http: too many 1xx informational responses')
      return 'interim'
    }
    return 'refused'
  }

  /** Bytes after the last head: tunnel data after a 101, the body after a refusal. */
  rest(): Buffer {
    return this.buf.subarray(0, this.len)
  }

  /** Offset just past the blank line ending the head; -1 if it has not arrived. LF alone ends lines too (as in Go). */
  private headEnd(): number {
    const b = this.buf
    let i = this.scanned
    for (;;) {
      i = b.indexOf(10, i)
      if (i < 0 || i >= this.len) {
        this.scanned = this.len
        return -1
      }
      if (i + 1 >= this.len || (b[i + 1] === 13 && i + 2 >= this.len)) {
        this.scanned = i
        return -1
      }
      if (b[i + 1] === 10) return i + 2
      if (b[i + 1] === 13 && b[i + 2] === 10) return i + 3
      i++
    }
  }
}

function parseHead(raw: Buffer): UpstreamHead {
  const lines = raw.toString('latin1').split('\n')
  // The blank line and what follows its LF.
  lines.length -= 2
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!
    lines[i] = l.charCodeAt(l.length - 1) === 13 ? l.slice(0, -1) : l
  }
  const m = STATUS_LINE.exec(lines[0]!)
  if (m === null || badText(m[3] ?? '')) throw new UpstreamHeadError(`malformed HTTP response ${quote(lines[0]!)}`)
  const status = Number(m[2])
  if (status < 100) throw new UpstreamHeadError(`malformed HTTP status code ${quote(m[2]!)}`)
  const headers: string[] = []
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!
    const colon = l.indexOf(':')
    // Obs-fold and stray CRs included: RFC 9112 §5.2 lets a proxy answer 502.
    const name = colon < 0 ? '' : l.slice(0, colon)
    const value = l.slice(colon + 1).trim()
    if (!TOKEN.test(name) || badText(value)) throw new UpstreamHeadError(`malformed MIME header line: ${quote(l)}`)
    headers.push(name, value)
  }
  return { status, reason: m[3] ?? '', http11: m[1] === '1', headers, raw }
}

function quote(s: string): string {
  return JSON.stringify(s.length > 100 ? s.slice(0, 100) : s)
}

/** The first value of `name` (lower-case), '' if absent. */
function headerValue(h: string[], name: string): string {
  for (let i = 0; i < h.length; i += 2) if (h[i]!.toLowerCase() === name) return h[i + 1]!
  return ''
}

function hasToken(h: string[], name: string, token: string): boolean {
  for (let i = 0; i < h.length; i += 2) {
    if (h[i]!.toLowerCase() !== name) continue
    for (const t of h[i + 1]!.split(',')) if (t.trim().toLowerCase() === token) return true
  }
  return false
}

// Per connection, or about how this response is framed: never relayed.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te'])

/**
 * A refused upgrade's final response: the head to send the client (HTTP/1.1,
 * hop-by-hop headers dropped; the caller adds Connection: close where it
 * ends the connection) and how its body ends. The body is relayed byte for
 * byte, so its framing headers are kept.
 */
export function refusedResponse(head: UpstreamHead, headRequest: boolean): { head: string; body: ResponseBody } {
  const h = head.headers
  const listed = new Set<string>()
  let te = ''
  let length = -1
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!.toLowerCase()
    const v = h[i + 1]!
    if (name === 'connection') for (const t of v.split(',')) listed.add(t.trim().toLowerCase())
    else if (name === 'transfer-encoding') te = te === '' ? v : `${te},${v}`
    else if (name === 'content-length') length = contentLength(v, length)
  }
  // Go ignores Transfer-Encoding from HTTP/1.0 and supports only "chunked".
  if (!head.http11) te = ''
  else if (te !== '' && te.trim().toLowerCase() !== 'chunked') throw new UpstreamHeadError(`unsupported transfer encoding: ${quote(te)}`)
  let out = `HTTP/1.1 ${head.status} ${head.reason}\r\n`
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!.toLowerCase()
    if (name === 'transfer-encoding' ? te === '' : name === 'content-length' ? te !== '' : HOP.has(name) || listed.has(name)) continue
    out += `${h[i]}: ${h[i + 1]}\r\n`
  }
  out += '\r\n'
  const none = headRequest || head.status === 204 || head.status === 304
  return { head: out, body: new ResponseBody(none ? 0 : te !== '' ? CHUNKED : length < 0 ? UNTIL_CLOSE : length) }
}

function contentLength(v: string, prior: number): number {
  const t = v.trim()
  const n = /^\d{1,15}$/.test(t) ? Number(t) : -1
  if (n < 0) throw new UpstreamHeadError(`bad Content-Length ${quote(v)}`)
  if (prior >= 0 && prior !== n) throw new UpstreamHeadError('http: message cannot contain multiple Content-Length headers')
  return n
}

const CHUNKED = -1
const UNTIL_CLOSE = -2

// Chunked-body scanner states: the body is relayed as is, only its end is found.
const SIZE = 0
const EXT = 1
const SIZE_LF = 2
const DATA = 3
const DATA_CR = 4
const DATA_LF = 5
const TRAILER = 6
const TRAILER_LINE = 7
const END_LF = 8

/** Where a relayed response body ends: Content-Length, chunked, or the upstream's EOF. */
export class ResponseBody {
  /** The whole body has been taken. */
  done = false
  /** Ends when the upstream closes. */
  readonly untilClose: boolean
  private left: number
  private readonly chunked: boolean
  private state = SIZE
  private digits = 0
  private line = 0

  constructor(framing: number) {
    this.chunked = framing === CHUNKED
    this.untilClose = framing === UNTIL_CLOSE
    this.left = framing >= 0 ? framing : 0
    this.done = framing === 0
  }

  /** How many leading bytes of `chunk` belong to the body; throws UpstreamHeadError on broken chunked framing. */
  take(chunk: Buffer): number {
    if (this.done) return 0
    if (this.untilClose) return chunk.length
    if (!this.chunked) {
      const n = Math.min(this.left, chunk.length)
      this.left -= n
      this.done = this.left === 0
      return n
    }
    let i = 0
    while (i < chunk.length && !this.done) {
      if (this.state === DATA) {
        const n = Math.min(this.left, chunk.length - i)
        i += n
        this.left -= n
        if (this.left === 0) this.state = DATA_CR
        continue
      }
      this.step(chunk[i++]!)
    }
    return i
  }

  private step(c: number): void {
    switch (this.state) {
      case SIZE: {
        const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1
        if (d >= 0 && this.digits < 12) {
          this.left = this.left * 16 + d
          this.digits++
          return
        }
        if (this.digits > 0 && d < 0) {
          if (c === 13) this.state = SIZE_LF
          else if (c === 10) this.sizeLineDone()
          else if (c === 59 || c === 32 || c === 9) this.state = EXT
          else break
          return
        }
        break
      }
      case EXT:
        if (c === 10) this.sizeLineDone()
        else if (++this.line > MAX_LINE) break
        return
      case SIZE_LF:
        if (c !== 10) break
        return this.sizeLineDone()
      case DATA_CR:
        if (c === 13) this.state = DATA_LF
        else if (c === 10) this.state = SIZE
        else break
        return
      case DATA_LF:
        if (c !== 10) break
        this.state = SIZE
        return
      case TRAILER:
        this.line = 0
        if (c === 10) this.done = true
        else if (c === 13) this.state = END_LF
        else this.state = TRAILER_LINE
        return
      case TRAILER_LINE:
        if (c === 10) this.state = TRAILER
        else if (++this.line > MAX_LINE) break
        return
      case END_LF:
        if (c !== 10) break
        this.done = true
        return
    }
    throw new UpstreamHeadError('net/http: malformed chunked encoding')
  }

  private sizeLineDone(): void {
    this.state = this.left === 0 ? TRAILER : DATA
    this.digits = 0
    this.line = 0
  }
}
