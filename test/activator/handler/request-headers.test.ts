// The activator's single pass over the inbound headers (spec §2.3, §2.9):
// what it picks out for probes and routing, and the header list it sends to
// the queue-proxy.
import t from 'tap'
import { scanActivatorRequest, type ScannedActivatorRequest } from '@sluice/activator/handler/request-headers'

function scan(raw: string[], remoteIp = '10.1.2.3'): ScannedActivatorRequest {
  const target: ScannedActivatorRequest = {
    userAgent: '', kubeletProbe: false, networkProbe: '', networkHash: '', revisionNamespace: '',
    revisionName: '', host: '', contentLength: 0, upstreamHeaders: [],
  }
  scanActivatorRequest(raw, remoteIp, target)
  return target
}

/** The upstream list as [name, value] pairs. */
function pairs(s: ScannedActivatorRequest): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = 0; i < s.upstreamHeaders.length; i += 2) out.push([s.upstreamHeaders[i]!, s.upstreamHeaders[i + 1]!])
  return out
}

t.test('routing and probe fields are picked out; revision headers and K-Network-Hash are not forwarded', async (t) => {
  const s = scan([
    'Host', 'hello.default.example.com', 'User-Agent', 'curl/8', 'Knative-Serving-Namespace', 'default',
    'Knative-Serving-Revision', 'hello-00001', 'K-Network-Probe', 'probe', 'K-Network-Hash', 'h1', 'Accept', '*/*',
  ])
  t.match(s, { userAgent: 'curl/8', networkProbe: 'probe', networkHash: 'h1', revisionNamespace: 'default', revisionName: 'hello-00001', host: 'hello.default.example.com', kubeletProbe: false, contentLength: 0 })
  t.same(pairs(s), [
    ['User-Agent', 'curl/8'], ['K-Network-Probe', 'probe'], ['Accept', '*/*'],
    ['k-original-host', 'hello.default.example.com'], ['k-proxy-request', 'activator'], ['x-forwarded-for', '10.1.2.3'],
  ], 'Host moved to K-Original-Host, K-Proxy-Request added, client IP in X-Forwarded-For; names keep their case')
})

t.test('K-Kubelet-Probe: any non-empty value marks a kubelet probe', async (t) => {
  t.equal(scan(['K-Kubelet-Probe', 'activator']).kubeletProbe, true)
  t.equal(scan(['K-Kubelet-Probe', '']).kubeletProbe, false)
})

t.test('an existing K-Original-Host is kept and not duplicated', async (t) => {
  const s = scan(['Host', 'outer.example.com', 'K-Original-Host', 'first.example.com'])
  t.same(pairs(s).filter(([n]) => n.toLowerCase() === 'k-original-host'), [['K-Original-Host', 'first.example.com']])
  t.equal(s.host, 'outer.example.com', 'routing still uses the Host')
})

t.test('HTTP/2 :authority is the Host; other pseudo-headers are not forwarded', async (t) => {
  const s = scan([':method', 'GET', ':path', '/', ':authority', 'grpc.example.com', ':scheme', 'http'])
  t.equal(s.host, 'grpc.example.com')
  t.same(pairs(s), [['k-original-host', 'grpc.example.com'], ['k-proxy-request', 'activator'], ['x-forwarded-for', '10.1.2.3']])
})

t.test('no Host: no K-Original-Host; no remote IP and no X-Forwarded-For: none sent', async (t) => {
  t.same(pairs(scan([], '')), [['k-proxy-request', 'activator']])
})

t.test('X-Forwarded-For: every inbound value joined, then the client IP appended', async (t) => {
  const s = scan(['X-Forwarded-For', '203.0.113.7', 'x-forwarded-for', '198.51.100.1, 192.0.2.9'])
  t.same(pairs(s).filter(([n]) => n === 'x-forwarded-for'), [['x-forwarded-for', '203.0.113.7, 198.51.100.1, 192.0.2.9, 10.1.2.3']])
})

t.test('a client cannot set K-Proxy-Request itself: exactly one, the activator\'s', async (t) => {
  const s = scan(['K-Proxy-Request', 'spoofed'])
  t.same(pairs(s).filter(([n]) => n.toLowerCase() === 'k-proxy-request'), [['k-proxy-request', 'activator']])
})

t.test('body framing: Content-Length, chunked (-1), none (0)', async (t) => {
  t.equal(scan(['Content-Length', '42']).contentLength, 42)
  t.equal(scan(['Content-Length', '0']).contentLength, 0)
  const chunked = scan(['Transfer-Encoding', 'chunked'])
  t.equal(chunked.contentLength, -1)
  t.notOk(chunked.upstreamHeaders.some((h) => h.toLowerCase() === 'transfer-encoding'), 'Transfer-Encoding is hop-by-hop')
  t.ok(pairs(scan(['Content-Length', '42'])).some(([n, v]) => n === 'Content-Length' && v === '42'), 'Content-Length is forwarded')
})

t.test('hop-by-hop headers and those listed in Connection are dropped; TE survives only as "trailers"', async (t) => {
  const s = scan([
    'Connection', 'keep-alive, X-Hop', 'Keep-Alive', 'timeout=5', 'Proxy-Connection', 'keep-alive', 'Upgrade', 'h2c',
    'HTTP2-Settings', 'AAMAAABkAAQAAP__', 'Proxy-Authorization', 'Basic x', 'Expect', '100-continue', 'Trailer', 'X-T',
    'X-Hop', 'gone', 'X-Keep', 'kept', 'TE', 'trailers, deflate',
  ])
  t.same(pairs(s), [['X-Keep', 'kept'], ['te', 'trailers'], ['k-proxy-request', 'activator'], ['x-forwarded-for', '10.1.2.3']])
  t.notOk(scan(['TE', 'gzip']).upstreamHeaders.some((h) => h.toLowerCase() === 'te'), 'TE without trailers is dropped')
})
