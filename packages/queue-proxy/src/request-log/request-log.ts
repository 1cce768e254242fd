// The request-log line renderer (spec §1.14, §5, quirk §7.13): compiles the
// config-observability template once and renders one line per request with
// the same template data Knative's Go queue-proxy has (.Request as a Go
// *http.Request, .Response, .Revision, .TraceID).
//
// Rendering is synchronous, so each renderer owns one set of view objects
// that are pointed at the current request for the duration of render():
// nothing is allocated unless the template reads it, and the header map,
// URL and trace id are only built when a template touches them.

import type { IncomingHttpHeaders } from 'node:http'
import { Buffer } from 'node:buffer'
import {
  formatFloat, goType, GoMap, GoTemplate,
  type GoFunc, type GoMapType, type GoStruct, type GoTypeInfo,
} from './go-template/index.ts'

export interface RequestLogRequest {
  method: string
  requestURI: string
  /** "HTTP/1.1" | "HTTP/2.0" */
  proto: string
  host: string
  /** "ip:port" */
  remoteAddr: string
  /** -1 if unknown */
  contentLength: number
  /** Lower-case keys, as Node gives them. */
  headers: IncomingHttpHeaders
  /** Node's req.rawHeaders; when given, .Request.Header keeps repeated headers as separate values, as Go does. */
  rawHeaders?: readonly string[]
}

export interface RequestLogResponse {
  code: number
  size: number
  latencySeconds: number
}

export interface RevisionInfo {
  name: string
  namespace: string
  service: string
  configuration: string
  podName: string
  podIP: string
}

export interface RequestLogRenderer {
  /** One log line; ends with "\n" (unless a trailing `-}}` trims the newline, as in Go). */
  render(req: RequestLogRequest, res: RequestLogResponse): string
}

/** Knative's default `logging.request-log-template` (HEAD: traceId from {{.TraceID}}). */
export const DEFAULT_REQUEST_LOG_TEMPLATE =
  '{"httpRequest": {"requestMethod": "{{.Request.Method}}", "requestUrl": "{{js .Request.RequestURI}}", ' +
  '"requestSize": "{{.Request.ContentLength}}", "status": {{.Response.Code}}, "responseSize": "{{.Response.Size}}", ' +
  '"userAgent": "{{js .Request.UserAgent}}", "remoteIp": "{{js .Request.RemoteAddr}}", "serverIp": "{{.Revision.PodIP}}", ' +
  '"referer": "{{js .Request.Referer}}", "latency": "{{.Response.Latency}}s", "protocol": "{{.Request.Proto}}"}, ' +
  '"traceId": "{{.TraceID}}"}'

// ------------------------------------------------------------ headers

/** textproto.CanonicalMIMEHeaderKey for a valid token: "x-b3-traceid" -> "X-B3-Traceid". */
export function canonicalHeaderKey(key: string): string {
  let out = ''
  let upper = true
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    // Go leaves keys holding a space or non-token byte untouched.
    if (c <= 0x20 || c >= 0x7f || '"(),/:;<=>?@[\\]{}'.includes(key[i]!)) return key
    if (upper && c >= 0x61 && c <= 0x7a) out += String.fromCharCode(c - 32)
    else if (!upper && c >= 0x41 && c <= 0x5a) out += String.fromCharCode(c + 32)
    else out += key[i]
    upper = c === 0x2d
  }
  return out
}

const NO_VALUES: readonly string[] = Object.freeze([])

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

/** Go keeps Host and Transfer-Encoding out of Request.Header; HTTP/2 pseudo-headers never appear. */
function skippedHeader(lower: string): boolean {
  return lower.charCodeAt(0) === 0x3a || lower === 'host' || lower === 'transfer-encoding'
}

function buildHeader(req: RequestLogRequest): GoMap {
  const m = new Map<string, string[]>()
  const raw = req.rawHeaders
  if (raw !== undefined) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!
      if (skippedHeader(name.toLowerCase())) continue
      const key = canonicalHeaderKey(name)
      const values = m.get(key)
      if (values) values.push(raw[i + 1]!)
      else m.set(key, [raw[i + 1]!])
    }
  } else {
    for (const name in req.headers) {
      const v = req.headers[name]
      if (v === undefined || skippedHeader(name)) continue
      m.set(canonicalHeaderKey(name), Array.isArray(v) ? v.slice() : [v])
    }
  }
  return new GoMap(HEADER_TYPE, m)
}

function valuesOf(self: unknown, key: string): readonly string[] {
  return ((self as GoMap).entries.get(key) as string[] | undefined) ?? NO_VALUES
}

/** http.Header / url.Values Get and Values (keys canonicalised for Header only). */
function mapMethods(canonical: boolean): ReadonlyMap<string, GoFunc> {
  const key = (a: unknown[]): string => (canonical ? canonicalHeaderKey(a[0] as string) : (a[0] as string))
  return new Map<string, GoFunc>([
    ['Get', { params: ['string'], call: (a, self) => valuesOf(self, key(a))[0] ?? '' }],
    ['Values', { params: ['string'], call: (a, self) => valuesOf(self, key(a)) }],
    ['Has', { params: ['string'], call: (a, self) => (self as GoMap).entries.has(key(a)) }],
  ])
}

const HEADER_TYPE: GoMapType = { name: 'http.Header', zero: NO_VALUES, methods: mapMethods(true) }
const VALUES_TYPE: GoMapType = { name: 'url.Values', zero: NO_VALUES, methods: mapMethods(false) }

/** The first value of a header, read from rawHeaders when given (Node joins repeats with ", "). */
function headerValue(req: RequestLogRequest, lower: string): string | undefined {
  const raw = req.rawHeaders
  if (raw === undefined) return firstHeader(req.headers[lower])
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === lower.length && name.toLowerCase() === lower) return raw[i + 1]
  }
  return undefined
}

/** Go's http ExtractTraceID: traceparent's second dash-separated part, else X-B3-Traceid. */
export function extractTraceId(req: RequestLogRequest): string {
  const tp = headerValue(req, 'traceparent')
  if (tp) {
    const a = tp.indexOf('-')
    if (a >= 0) {
      const b = tp.indexOf('-', a + 1)
      return b < 0 ? tp.slice(a + 1) : tp.slice(a + 1, b)
    }
  }
  return headerValue(req, 'x-b3-traceid') ?? ''
}

// ------------------------------------------------------------ URL

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  return -1
}

/** url's unescape; null when an escape is malformed. */
function unescape(s: string, plusIsSpace: boolean): string | null {
  if (!s.includes('%') && !(plusIsSpace && s.includes('+'))) return s
  const bytes: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x25) {
      const h = hexVal(s.charCodeAt(i + 1))
      const l = hexVal(s.charCodeAt(i + 2))
      if (h < 0 || l < 0) return null
      bytes.push(h * 16 + l)
      i += 2
    } else if (c === 0x2b && plusIsSpace) bytes.push(0x20)
    else if (c < 0x80) bytes.push(c)
    else for (const b of Buffer.from(s[i]!, 'utf8')) bytes.push(b)
  }
  return Buffer.from(bytes).toString('utf8')
}

/** url.ParseQuery, skipping malformed pairs as Go does. */
function parseQuery(raw: string): GoMap {
  const m = new Map<string, string[]>()
  for (const part of raw.split('&')) {
    if (part === '' || part.includes(';')) continue
    const eq = part.indexOf('=')
    const k = unescape(eq < 0 ? part : part.slice(0, eq), true)
    const v = unescape(eq < 0 ? '' : part.slice(eq + 1), true)
    if (k === null || v === null) continue
    const values = m.get(k)
    if (values) values.push(v)
    else m.set(k, [v])
  }
  return new GoMap(VALUES_TYPE, m)
}

/** The server-side *url.URL of url.ParseRequestURI(RequestURI). */
class UrlView {
  readonly requestURI: string
  readonly scheme: string
  readonly host: string
  readonly rawPath: string
  readonly rawQuery: string
  readonly forceQuery: boolean

  constructor(uri: string) {
    this.requestURI = uri
    let rest = uri
    let scheme = ''
    let host = ''
    const colon = uri.indexOf('://')
    if (uri[0] !== '/' && colon > 0) {
      scheme = uri.slice(0, colon).toLowerCase()
      rest = uri.slice(colon + 3)
      const slash = rest.search(/[/?]/)
      host = slash < 0 ? rest : rest.slice(0, slash)
      rest = slash < 0 ? '' : rest.slice(slash)
    }
    const q = rest.indexOf('?')
    this.scheme = scheme
    this.host = host
    this.rawPath = q < 0 ? rest : rest.slice(0, q)
    this.rawQuery = q < 0 ? '' : rest.slice(q + 1)
    this.forceQuery = q >= 0 && this.rawQuery === ''
  }

  get path(): string {
    return unescape(this.rawPath, false) ?? this.rawPath
  }

  get [goType](): GoTypeInfo {
    return URL_TYPE
  }
}

function hostPort(host: string): [string, string] {
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    const port = host.slice(end + 1)
    return [host.slice(1, end), port.startsWith(':') ? port.slice(1) : '']
  }
  const c = host.lastIndexOf(':')
  return c < 0 ? [host, ''] : [host.slice(0, c), host.slice(c + 1)]
}

function urlRequestURI(u: UrlView): string {
  let r = u.rawPath === '' ? '/' : u.rawPath
  if (u.forceQuery || u.rawQuery !== '') r += '?' + u.rawQuery
  return r
}

/** A nil *url.Userinfo: its String method is nil-safe and prints "". */
const NIL_USERINFO: GoStruct = {
  [goType]: {
    name: '*url.Userinfo',
    string: () => '',
    methods: new Map<string, GoFunc>([['Username', { params: [], call: () => '' }], ['String', { params: [], call: () => '' }]]),
  },
}

const URL_TYPE: GoTypeInfo = {
  name: '*url.URL',
  fields: new Map<string, (u: UrlView) => unknown>([
    ['Scheme', (u) => u.scheme],
    ['Opaque', () => ''],
    ['User', () => NIL_USERINFO],
    ['Host', (u) => u.host],
    ['Path', (u) => u.path],
    ['RawPath', (u) => (u.path === u.rawPath ? '' : u.rawPath)],
    ['OmitHost', () => false],
    ['ForceQuery', (u) => u.forceQuery],
    ['RawQuery', (u) => u.rawQuery],
    ['Fragment', () => ''],
    ['RawFragment', () => ''],
  ]),
  methods: new Map<string, GoFunc>([
    ['String', { params: [], call: (_a, u) => (u as UrlView).requestURI }],
    ['EscapedPath', { params: [], call: (_a, u) => (u as UrlView).rawPath }],
    ['Query', { params: [], call: (_a, u) => parseQuery((u as UrlView).rawQuery) }],
    ['RequestURI', { params: [], call: (_a, u) => urlRequestURI(u as UrlView) }],
    ['Hostname', { params: [], call: (_a, u) => hostPort((u as UrlView).host)[0] }],
    ['Port', { params: [], call: (_a, u) => hostPort((u as UrlView).host)[1] }],
    ['IsAbs', { params: [], call: (_a, u) => (u as UrlView).scheme !== '' }],
  ]),
  string: (u: UrlView) => u.requestURI,
}

// ------------------------------------------------------------ template data

/** The per-renderer template input; views read the request being rendered. */
class LogInput implements GoStruct {
  req: RequestLogRequest | null = null
  res: RequestLogResponse | null = null
  header: GoMap | null = null
  url: UrlView | null = null
  traceId: string | null = null
  readonly request: RequestView
  readonly response: ResponseView
  readonly revision: RevisionView

  constructor(revision: RevisionInfo) {
    this.request = new RequestView(this)
    this.response = new ResponseView(this)
    this.revision = new RevisionView(revision)
  }

  begin(req: RequestLogRequest, res: RequestLogResponse): void {
    this.req = req
    this.res = res
  }

  end(): void {
    this.req = null
    this.res = null
    this.header = null
    this.url = null
    this.traceId = null
  }

  get [goType](): GoTypeInfo {
    return INPUT_TYPE
  }
}

class RequestView implements GoStruct {
  readonly input: LogInput
  constructor(input: LogInput) {
    this.input = input
  }

  get req(): RequestLogRequest {
    return this.input.req!
  }

  get [goType](): GoTypeInfo {
    return REQUEST_TYPE
  }
}

class ResponseView implements GoStruct {
  readonly input: LogInput
  constructor(input: LogInput) {
    this.input = input
  }

  get res(): RequestLogResponse {
    return this.input.res!
  }

  get [goType](): GoTypeInfo {
    return RESPONSE_TYPE
  }
}

class RevisionView implements GoStruct {
  readonly rev: RevisionInfo
  constructor(rev: RevisionInfo) {
    this.rev = { ...rev }
  }

  get [goType](): GoTypeInfo {
    return REVISION_TYPE
  }
}

function protoVersion(proto: string, minor: boolean): bigint {
  const m = /^HTTP\/(\d+)\.(\d+)$/.exec(proto)
  return m ? BigInt(m[minor ? 2 : 1]!) : 0n
}

const INPUT_TYPE: GoTypeInfo = {
  name: '*http.RequestLogTemplateInput',
  fields: new Map<string, (i: LogInput) => unknown>([
    ['Request', (i) => i.request],
    ['Response', (i) => i.response],
    ['Revision', (i) => i.revision],
    ['TraceID', (i) => (i.traceId ??= extractTraceId(i.req!))],
  ]),
}

const REQUEST_TYPE: GoTypeInfo = {
  name: '*http.Request',
  fields: new Map<string, (r: RequestView) => unknown>([
    ['Method', (r) => r.req.method],
    ['URL', (r) => (r.input.url ??= new UrlView(r.req.requestURI))],
    ['Proto', (r) => r.req.proto],
    ['ProtoMajor', (r) => protoVersion(r.req.proto, false)],
    ['ProtoMinor', (r) => protoVersion(r.req.proto, true)],
    ['Header', (r) => (r.input.header ??= buildHeader(r.req))],
    ['ContentLength', (r) => BigInt(r.req.contentLength)],
    ['Host', (r) => r.req.host],
    ['RemoteAddr', (r) => r.req.remoteAddr],
    ['RequestURI', (r) => r.req.requestURI],
  ]),
  methods: new Map<string, GoFunc>([
    ['UserAgent', { params: [], call: (_a, r) => firstHeader((r as RequestView).req.headers['user-agent']) ?? '' }],
    ['Referer', { params: [], call: (_a, r) => firstHeader((r as RequestView).req.headers['referer']) ?? '' }],
  ]),
}

const RESPONSE_TYPE: GoTypeInfo = {
  name: '*http.RequestLogResponse',
  fields: new Map<string, (r: ResponseView) => unknown>([
    ['Code', (r) => BigInt(r.res.code)],
    ['Size', (r) => BigInt(r.res.size)],
    ['Latency', (r) => r.res.latencySeconds],
  ]),
}

const REVISION_TYPE: GoTypeInfo = {
  name: '*http.RequestLogRevision',
  fields: new Map<string, (r: RevisionView) => unknown>([
    ['Name', (r) => r.rev.name],
    ['Namespace', (r) => r.rev.namespace],
    ['Service', (r) => r.rev.service],
    ['Configuration', (r) => r.rev.configuration],
    ['PodName', (r) => r.rev.podName],
    ['PodIP', (r) => r.rev.podIP],
  ]),
}

// ------------------------------------------------------------ renderer

/** HEAD's line for a template that fails to execute (no partial output, §5). */
export function fallbackLine(req: RequestLogRequest, res: RequestLogResponse): string {
  return `Invalid request log template: method: ${req.method}, response code: ${res.code}, ` +
    `latency: ${formatFloat(res.latencySeconds)}, url: ${req.requestURI}\n`
}

class CompiledRequestLog implements RequestLogRenderer {
  private readonly template: GoTemplate
  private readonly input: LogInput

  constructor(template: GoTemplate, revision: RevisionInfo) {
    this.template = template
    this.input = new LogInput(revision)
  }

  render(req: RequestLogRequest, res: RequestLogResponse): string {
    this.input.begin(req, res)
    try {
      return this.template.execute(this.input)
    } catch {
      return fallbackLine(req, res)
    } finally {
      this.input.end()
    }
  }
}

/**
 * Compiles a request-log template as Go's RequestLogHandler does: a "\n" is
 * appended to the template text when missing, then it is parsed as
 * "requestLog". Throws GoTemplateParseError. An empty template means request
 * logging is off; that decision is the caller's.
 */
export function compileRequestLog(template: string, revision: RevisionInfo): RequestLogRenderer {
  const source = template.endsWith('\n') ? template : template + '\n'
  return new CompiledRequestLog(new GoTemplate(source, 'requestLog'), revision)
}
