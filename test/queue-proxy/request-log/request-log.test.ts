// Request-log rendering (spec §1.14, §5, quirk §7.13). Expected lines are what
// Knative's Go RequestLogHandler writes for the same request (checked against
// Go's text/template with a net/http request read off the wire).
import type { IncomingHttpHeaders } from 'node:http'
import t from 'tap'
import { GoTemplateParseError } from '@sluice/queue-proxy/request-log/go-template/index'
import {
  DEFAULT_REQUEST_LOG_TEMPLATE,
  compileRequestLog,
  type RequestLogRequest,
  type RequestLogResponse,
  type RevisionInfo,
} from '@sluice/queue-proxy/request-log/request-log'

const revision: RevisionInfo = {
  name: 'rev-1', namespace: 'ns', service: 'svc', configuration: 'cfg', podName: 'pod-1', podIP: '10.1.2.3',
}

/** Node's view of a request from header pairs: headers (lower-case, repeats joined) and rawHeaders. */
function request(pairs: [string, string][], over: Partial<RequestLogRequest> = {}): RequestLogRequest {
  const headers: IncomingHttpHeaders = {}
  const raw: string[] = []
  for (const [k, v] of pairs) {
    raw.push(k, v)
    const l = k.toLowerCase()
    const prev = headers[l]
    if (prev === undefined) headers[l] = v
    else if (l !== 'user-agent' && l !== 'referer' && l !== 'host' && l !== 'content-length') headers[l] = `${prev}, ${v}`
  }
  return {
    method: 'GET', requestURI: '/path?x=1&y="q"', proto: 'HTTP/1.1', host: 'svc.ns.example.com',
    remoteAddr: '10.0.0.1:5555', contentLength: 0, headers, rawHeaders: raw, ...over,
  }
}

const ok: RequestLogResponse = { code: 200, size: 12, latencySeconds: 0.001234567 }
const basePairs: [string, string][] = [['Host', 'svc.ns.example.com'], ['User-Agent', 'curl/8.0 "x" <é>'], ['Accept', '*/*']]
const traceparent: [string, string] = ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']
const b3: [string, string] = ['X-B3-TraceId', '80f198ee56343ba864fe8b2a57d3eff7']

t.test('DEFAULT_REQUEST_LOG_TEMPLATE is config-observability\'s HEAD default with {{.TraceID}}', async (t) => {
  t.equal(DEFAULT_REQUEST_LOG_TEMPLATE,
    '{"httpRequest": {"requestMethod": "{{.Request.Method}}", "requestUrl": "{{js .Request.RequestURI}}", ' +
    '"requestSize": "{{.Request.ContentLength}}", "status": {{.Response.Code}}, "responseSize": "{{.Response.Size}}", ' +
    '"userAgent": "{{js .Request.UserAgent}}", "remoteIp": "{{js .Request.RemoteAddr}}", "serverIp": "{{.Revision.PodIP}}", ' +
    '"referer": "{{js .Request.Referer}}", "latency": "{{.Response.Latency}}s", "protocol": "{{.Request.Proto}}"}, ' +
    '"traceId": "{{.TraceID}}"}')
})

t.test('default template renders the exact Go JSON line', async (t) => {
  const r = compileRequestLog(DEFAULT_REQUEST_LOG_TEMPLATE, revision)
  const req = request([
    ['Host', 'hello.default.example.com'], ['User-Agent', 'curl/8.5.0 <test>'], ['Referer', 'https://example.com/?a=b'],
    ['Content-Length', '42'], traceparent,
  ], { method: 'POST', requestURI: '/api/v1/items?id=7&name="x"', host: 'hello.default.example.com', remoteAddr: '10.244.0.17:51234', contentLength: 42 })
  t.equal(r.render(req, { code: 201, size: 1536, latencySeconds: 0.001234567 }),
    '{"httpRequest": {"requestMethod": "POST", "requestUrl": "/api/v1/items?id\\u003D7\\u0026name\\u003D\\"x\\"", ' +
    '"requestSize": "42", "status": 201, "responseSize": "1536", "userAgent": "curl/8.5.0 \\u003Ctest\\u003E", ' +
    '"remoteIp": "10.244.0.17:51234", "serverIp": "10.1.2.3", "referer": "https://example.com/?a\\u003Db", ' +
    '"latency": "0.001234567s", "protocol": "HTTP/1.1"}, "traceId": "4bf92f3577b34da6a3ce929d0e0e4736"}\n')

  const get = request([['Host', 'h'], b3], { requestURI: '/', remoteAddr: '10.244.0.17:51234' })
  t.equal(r.render(get, { code: 404, size: 0, latencySeconds: 2.5e-7 }),
    '{"httpRequest": {"requestMethod": "GET", "requestUrl": "/", "requestSize": "0", "status": 404, "responseSize": "0", ' +
    '"userAgent": "", "remoteIp": "10.244.0.17:51234", "serverIp": "10.1.2.3", "referer": "", "latency": "2.5e-07s", ' +
    '"protocol": "HTTP/1.1"}, "traceId": "80f198ee56343ba864fe8b2a57d3eff7"}\n', 'small latencies print in Go exponent form')
})

t.test('traceId: traceparent second part first, then X-B3-Traceid, else empty', async (t) => {
  const r = compileRequestLog('{{.TraceID}}|', revision)
  t.equal(r.render(request([traceparent, b3]), ok), '4bf92f3577b34da6a3ce929d0e0e4736|\n')
  t.equal(r.render(request([b3]), ok), '80f198ee56343ba864fe8b2a57d3eff7|\n')
  t.equal(r.render(request([]), ok), '|\n')
  t.equal(r.render(request([['traceparent', 'invalid'], b3]), ok), '80f198ee56343ba864fe8b2a57d3eff7|\n', 'no dash: B3 is used')
  t.equal(r.render(request([['traceparent', 'a-'], b3]), ok), '|\n', 'a dash with nothing after it wins over B3, as in Go')
  t.equal(r.render(request([['traceparent', 'a-b']]), ok), 'b|\n')
  t.equal(r.render(request([['X-B3-TraceId', 'x'], ['X-B3-TraceId', 'y']]), ok), 'x|\n', 'first of repeated headers')
  const noRaw = request([traceparent])
  delete noRaw.rawHeaders
  t.equal(r.render(noRaw, ok), '4bf92f3577b34da6a3ce929d0e0e4736|\n', 'works from headers alone')
})

t.test('1.12 template: index .Request.Header "X-B3-Traceid" renders [id] or [] (quirk 7.13)', async (t) => {
  const r = compileRequestLog('{"traceId": "{{index .Request.Header "X-B3-Traceid"}}"}', revision)
  t.equal(r.render(request([['X-B3-TraceId', 'abc']]), ok), '{"traceId": "[abc]"}\n')
  t.equal(r.render(request([]), ok), '{"traceId": "[]"}\n')
})

t.test('execution error writes only the fallback line (HEAD, no partial output)', async (t) => {
  const r = compileRequestLog('partial {{.Response.Nope}}', revision)
  t.equal(r.render(request(basePairs), { code: 200, size: 12, latencySeconds: 0.5 }),
    'Invalid request log template: method: GET, response code: 200, latency: 0.5, url: /path?x=1&y="q"\n')
  const bad = compileRequestLog('{{.Request.Foo}}', revision)
  t.equal(bad.render(request([], { method: 'POST', requestURI: '/x' }), { code: 503, size: 0, latencySeconds: 1e-6 }),
    'Invalid request log template: method: POST, response code: 503, latency: 1e-06, url: /x\n')
  // The renderer is still usable after a failure.
  t.equal(compileRequestLog('{{.Request.Method}}', revision).render(request([]), ok), 'GET\n')
})

t.test('a newline is appended to the template only when missing', async (t) => {
  t.equal(compileRequestLog('has newline\n', revision).render(request([]), ok), 'has newline\n')
  t.equal(compileRequestLog('two\n\n', revision).render(request([]), ok), 'two\n\n')
  t.equal(compileRequestLog('no newline {{.Request.Method}}', revision).render(request([]), ok), 'no newline GET\n')
  // Go appends to the template text, so a trailing "-}}" trims that newline too.
  t.equal(compileRequestLog('no newline {{.Request.Method -}}', revision).render(request([]), ok), 'no newline GET')
  t.equal(compileRequestLog('{{.Request.Method}}\n{{- /* c */ -}}\n', revision).render(request([]), ok), 'GET')
})

t.test('template parse errors throw with Go\'s message', async (t) => {
  t.throws(() => compileRequestLog('{{.Request.Method', revision), new GoTemplateParseError('template: requestLog:2: unclosed action started at requestLog:1'))
  t.throws(() => compileRequestLog('{{nope .Request}}', revision), new GoTemplateParseError('template: requestLog:1: function "nope" not defined'))
})

t.test('.Request.Header: Go-canonical keys, []string values, no Host/Transfer-Encoding', async (t) => {
  const req = request([...basePairs, ['X-Multi', 'a'], ['x-multi', 'b'], ['content-type', 'text/plain'], ['Transfer-Encoding', 'chunked']], { method: 'POST' })
  t.equal(compileRequestLog('{{.Request.Header}}', revision).render(req, ok),
    'map[Accept:[*/*] Content-Type:[text/plain] User-Agent:[curl/8.0 "x" <é>] X-Multi:[a b]]\n')
  const methods = compileRequestLog('{{.Request.Header.Get "user-agent"}}|{{.Request.Header.Values "x-multi"}}|{{index .Request.Header "Nope"}}|{{.Request.Header.Nope}}|{{len .Request.Header}}', revision)
  t.equal(methods.render(request([...basePairs, ['X-Multi', 'a'], ['x-multi', 'b']]), ok), 'curl/8.0 "x" <é>|[a b]|[]|<no value>|3\n')
  const ranged = compileRequestLog('{{if .Request.Header.X}}x{{else}}none{{end}} {{with .Request.UserAgent}}{{.}}{{end}} {{range $k, $v := .Request.Header}}{{$k}}={{$v}};{{end}}', revision)
  t.equal(ranged.render(request(basePairs), ok), 'none curl/8.0 "x" <é> Accept=[*/*];User-Agent=[curl/8.0 "x" <é>];\n')
  // Without rawHeaders, Node has already joined repeats into one value.
  const joined = request([['X-Multi', 'a'], ['x-multi', 'b'], [':authority', 'h2']])
  delete joined.rawHeaders
  t.equal(compileRequestLog('{{.Request.Header}}', revision).render(joined, ok), 'map[X-Multi:[a, b]]\n')
})

t.test('the header map is built only when the template reads .Header', async (t) => {
  let enumerations = 0
  const headers = new Proxy({ 'user-agent': 'ua', traceparent: traceparent[1] } as IncomingHttpHeaders, {
    ownKeys(target) {
      enumerations++
      return Reflect.ownKeys(target)
    },
  })
  const req: RequestLogRequest = { ...request([]), headers }
  delete req.rawHeaders
  compileRequestLog(DEFAULT_REQUEST_LOG_TEMPLATE, revision).render(req, ok)
  t.equal(enumerations, 0, 'default template never walks the headers')
  compileRequestLog('{{if false}}{{.Request.Header}}{{end}}', revision).render(req, ok)
  t.equal(enumerations, 0, 'an untaken branch does not either')
  compileRequestLog('{{.Request.Header}}', revision).render(req, ok)
  t.equal(enumerations, 1)
})

t.test('.Request.URL prints as the request URI; Path, RawQuery, Query work as net/url', async (t) => {
  const r = compileRequestLog('{{.Request.URL}}|{{.Request.URL.Path}}|{{.Request.URL.RawQuery}}|{{.Request.URL.String}}|{{.Request.URL.RawPath}}|{{.Request.URL.Query}}|{{.Request.URL.Query.Get "y"}}|{{.Request.URL.RequestURI}}|{{.Request.URL.Host}}|{{.Request.URL.Scheme}}', revision)
  t.equal(r.render(request([], { requestURI: '/a%20b/c%2Fd?y=%22q%22&y=2&z&w=a+b' }), ok),
    '/a%20b/c%2Fd?y=%22q%22&y=2&z&w=a+b|/a b/c/d|y=%22q%22&y=2&z&w=a+b|/a%20b/c%2Fd?y=%22q%22&y=2&z&w=a+b|/a%20b/c%2Fd|map[w:[a b] y:["q" 2] z:[]]|"q"|/a%20b/c%2Fd?y=%22q%22&y=2&z&w=a+b||\n')
  const abs = compileRequestLog('{{.Request.URL.Path}}|{{.Request.URL.Host}}|{{.Request.URL.Scheme}}|{{.Request.URL.Hostname}}|{{.Request.URL.Port}}|{{.Request.URL.IsAbs}}|{{.Request.URL}}', revision)
  t.equal(abs.render(request([], { requestURI: 'http://example.com:8080/p?q=1' }), ok), '/p|example.com:8080|http|example.com|8080|true|http://example.com:8080/p?q=1\n')
  t.equal(compileRequestLog('{{.Request.URL.User}}|', revision).render(request([]), ok), '|\n')
})

t.test('.Request scalars, .Revision and .Response fields', async (t) => {
  const r = compileRequestLog('{{.Request.Host}} {{.Request.ProtoMajor}}.{{.Request.ProtoMinor}} {{.Request.RemoteAddr}} {{.Request.ContentLength}} {{.Request.RequestURI}}', revision)
  t.equal(r.render(request(basePairs), ok), 'svc.ns.example.com 1.1 10.0.0.1:5555 0 /path?x=1&y="q"\n')
  t.equal(r.render(request([], { proto: 'HTTP/2.0', contentLength: -1 }), ok), 'svc.ns.example.com 2.0 10.0.0.1:5555 -1 /path?x=1&y="q"\n')
  const rev = compileRequestLog('{{.Revision}} {{.Revision.Name}} {{.Revision.Namespace}} {{.Revision.Service}} {{.Revision.Configuration}} {{.Revision.PodName}}', revision)
  t.equal(rev.render(request([]), ok), '{rev-1 ns svc cfg pod-1 10.1.2.3} rev-1 ns svc cfg pod-1\n')
  const res = compileRequestLog('{{.Response}} {{.Response.Latency}} {{printf "%.3f" .Response.Latency}} {{printf "%+v" .Response}}', revision)
  t.equal(res.render(request([]), ok), '{200 12 0.001234567} 0.001234567 0.001 &{Code:200 Size:12 Latency:0.001234567}\n')
})

t.test('one renderer serves many requests without leaking state between them', async (t) => {
  const r = compileRequestLog('{{.Request.Method}} {{.TraceID}} {{.Request.URL.Path}} {{index .Request.Header "X-A"}}', revision)
  t.equal(r.render(request([traceparent, ['X-A', '1']], { requestURI: '/one' }), ok), 'GET 4bf92f3577b34da6a3ce929d0e0e4736 /one [1]\n')
  t.equal(r.render(request([], { method: 'PUT', requestURI: '/two' }), ok), 'PUT  /two []\n')
})
