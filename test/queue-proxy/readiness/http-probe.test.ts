import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Server } from 'node:net'
import t, { type Test } from 'tap'
import { HttpProbe } from '@sluice/queue-proxy/readiness/http-probe'
import type { HTTPGetAction } from '@sluice/queue-proxy/readiness/probe-spec'

interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  httpVersion: string
}

/** Starts `server` on 127.0.0.1:0, records every request, closes it at teardown. */
async function listen(t: Test, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    ;(server as Server & { closeAllConnections?: () => void }).closeAllConnections?.()
    server.close()
  })
  return (server.address() as AddressInfo).port
}

async function http1(t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = []
  const srv = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, httpVersion: req.httpVersion })
    handler(req, res)
  })
  return { port: await listen(t, srv), seen }
}

async function closedPort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address() as AddressInfo
  srv.close()
  await once(srv, 'close')
  return port
}

function action(port: number, extra: Partial<HTTPGetAction> = {}): HTTPGetAction {
  return { path: '/', port, host: '127.0.0.1', scheme: 'HTTP', httpHeaders: [], ...extra }
}

function status(code: number, body = '') {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    res.statusCode = code
    res.end(body)
  }
}

t.test('200: passes with one GET carrying UA kube-probe//, the probe headers and Connection: close', async (t) => {
  const { port, seen } = await http1(t, status(200, 'ok'))
  const probe = new HttpProbe(
    action(port, {
      path: '/healthz?x=1',
      httpHeaders: [
        { name: 'K-Kubelet-Probe', value: 'queue' },
        { name: 'X-Multi', value: 'a' },
        { name: 'X-Multi', value: 'b' },
      ],
    }),
  )
  await probe.run(1000)
  t.equal(seen.length, 1)
  const req = seen[0]!
  t.equal(req.method, 'GET')
  t.equal(req.url, '/healthz?x=1')
  t.equal(req.httpVersion, '1.1')
  t.equal(req.headers['user-agent'], 'kube-probe//')
  t.equal(req.headers['k-kubelet-probe'], 'queue')
  t.equal(req.headers['x-multi'], 'a, b', 'repeated header names send every value')
  t.equal(req.headers['connection'], 'close', 'no keep-alive')
  t.equal(req.headers['host'], `127.0.0.1:${port}`)
})

t.test('path without a leading slash gets one; empty path means /', async (t) => {
  const { port, seen } = await http1(t, status(204))
  await new HttpProbe(action(port, { path: 'ready' })).run(1000)
  await new HttpProbe(action(port, { path: '' })).run(1000)
  t.same(seen.map((s) => s.url), ['/ready', '/'])
})

t.test('a user-supplied User-Agent header replaces kube-probe//', async (t) => {
  const { port, seen } = await http1(t, status(200))
  await new HttpProbe(action(port, { httpHeaders: [{ name: 'user-agent', value: 'custom/1' }] })).run(1000)
  t.equal(seen[0]!.headers['user-agent'], 'custom/1')
})

t.test('302 -> 200: follows the redirect with the probe headers and a Referer, and passes', async (t) => {
  const { port, seen } = await http1(t, (req, res) => {
    if (req.url === '/start') {
      res.writeHead(302, { location: '/final' }).end()
    } else {
      res.writeHead(200).end()
    }
  })
  await new HttpProbe(action(port, { path: '/start', httpHeaders: [{ name: 'X-Probe', value: 'v' }] })).run(1000)
  t.same(seen.map((s) => s.url), ['/start', '/final'])
  t.equal(seen[1]!.headers['x-probe'], 'v')
  t.equal(seen[1]!.headers['user-agent'], 'kube-probe//')
  t.equal(seen[1]!.headers['referer'], `http://127.0.0.1:${port}/start`)
})

t.test('a redirect to a failing page fails with that page status', async (t) => {
  const { port } = await http1(t, (req, res) => {
    if (req.url === '/start') res.writeHead(301, { location: '/gone' }).end()
    else res.writeHead(404).end()
  })
  await t.rejects(new HttpProbe(action(port, { path: '/start' })).run(1000), {
    message: 'HTTP probe did not respond Ready, got status code: 404',
  })
})

t.test('like Go, 9 redirects are followed but a 10th stops the probe', async (t) => {
  // /r/N redirects to /r/N-1; /r/0 answers 200.
  const { port, seen } = await http1(t, (req, res) => {
    const n = Number(req.url!.slice(3))
    if (n === 0) res.writeHead(200).end()
    else res.writeHead(307, { location: `/r/${n - 1}` }).end()
  })
  await new HttpProbe(action(port, { path: '/r/9' })).run(2000)
  t.equal(seen.length, 10, '9 redirects: 10 requests, passes')
  seen.length = 0
  await t.rejects(new HttpProbe(action(port, { path: '/r/10' })).run(2000), {
    message: 'Get "/r/0": stopped after 10 redirects',
  })
  t.equal(seen.length, 10, 'gave up after 10 requests')
})

t.test('a 3xx without Location is a final answer, and 3xx counts as ready', async (t) => {
  const { port } = await http1(t, status(302))
  await new HttpProbe(action(port)).run(1000)
  t.pass('302 without Location passed')
})

t.test('404 and 500 fail with the status code; 399 still counts as ready', async (t) => {
  for (const code of [404, 500]) {
    const { port } = await http1(t, status(code, 'nope'))
    await t.rejects(new HttpProbe(action(port)).run(1000), {
      message: `HTTP probe did not respond Ready, got status code: ${code}`,
    })
  }
  const { port } = await http1(t, status(399))
  await new HttpProbe(action(port)).run(1000)
  t.pass('399 passed')
})

t.test('a server that never answers fails at the timeout with a deadline message', async (t) => {
  const { port } = await http1(t, () => {})
  const started = Date.now()
  await t.rejects(new HttpProbe(action(port)).run(150), {
    message: `Get "http://127.0.0.1:${port}/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
  })
  const took = Date.now() - started
  t.ok(took >= 140 && took < 1000, `gave up after the timeout (${took} ms)`)
})

t.test('connection refused fails with a Go-style dial error', async (t) => {
  const port = await closedPort()
  await t.rejects(new HttpProbe(action(port)).run(1000), {
    message: `Get "http://127.0.0.1:${port}/": dial tcp 127.0.0.1:${port}: connect: connection refused`,
  })
})

t.test('the response body is drained: a large body is read to the end', async (t) => {
  let finished = false
  const { port } = await http1(t, (_req, res) => {
    res.on('finish', () => {
      finished = true
    })
    res.writeHead(200)
    res.end(Buffer.alloc(4 * 1024 * 1024, 'x'))
  })
  await new HttpProbe(action(port)).run(2000)
  for (let i = 0; i < 100 && !finished; i++) await new Promise((r) => setTimeout(r, 10))
  t.ok(finished, 'the server finished writing the whole body')
})

t.test('HTTPS verifies the certificate: a self-signed server fails', async (t) => {
  const srv = createHttpsServer({ key: TEST_KEY, cert: TEST_CERT }, (_req, res) => res.end('ok'))
  const port = await listen(t, srv)
  await t.rejects(new HttpProbe(action(port, { scheme: 'HTTPS' })).run(1000), {
    message: new RegExp(`^Get "https://127\\.0\\.0\\.1:${port}/": .*certificate`),
  })
})

/** h2c-only server (prior knowledge); HTTP/1.1 requests are not understood. */
async function h2c(t: Test, code: number): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = []
  const srv = createHttp2Server((req: Http2ServerRequest, res: Http2ServerResponse) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers, httpVersion: req.httpVersion })
    res.writeHead(code).end('body')
  })
  return { port: await listen(t, srv as unknown as Server), seen }
}

t.test('HTTP/2 auto-detection: an h2c-only server passes over h2c with the probe headers', async (t) => {
  const { port, seen } = await h2c(t, 200)
  await new HttpProbe(action(port, { path: 'h', httpHeaders: [{ name: 'X-Probe', value: 'v' }] }), { http2AutoDetect: true }).run(1000)
  t.equal(seen.length, 1)
  t.equal(seen[0]!.httpVersion, '2.0')
  t.equal(seen[0]!.url, '/h')
  t.equal(seen[0]!.headers['user-agent'], 'kube-probe//')
  t.equal(seen[0]!.headers['x-probe'], 'v')
})

t.test('without auto-detection the same h2c-only server fails (HTTP/1.1 only)', async (t) => {
  const { port } = await h2c(t, 200)
  await t.rejects(new HttpProbe(action(port)).run(500))
})

t.test('HTTP/2 auto-detection falls back to HTTP/1.1 for an HTTP/1-only server', async (t) => {
  const { port, seen } = await http1(t, status(200))
  await new HttpProbe(action(port), { http2AutoDetect: true }).run(1000)
  t.equal(seen.length, 1, 'one HTTP/1.1 request after the h2c attempt failed')
  t.equal(seen[0]!.httpVersion, '1.1')
})

t.test('HTTP/2 auto-detection: a non-ready h2c answer falls back to HTTP/1.1 and reports its error', async (t) => {
  const { port, seen } = await h2c(t, 500)
  await t.rejects(new HttpProbe(action(port), { http2AutoDetect: true }).run(500), {
    message: /^failed to run HTTP protocol probe with error: Get "http:\/\/127\.0\.0\.1:\d+\/": /,
  })
  t.equal(seen.length, 1, 'the h2c attempt reached the server')
})

t.test('HTTP/2 auto-detection: a 500 over HTTP/1.1 after fallback fails with the status', async (t) => {
  const { port } = await http1(t, status(500))
  await t.rejects(new HttpProbe(action(port), { http2AutoDetect: true }).run(1000), {
    message: 'failed to run HTTP protocol probe with error: HTTP probe did not respond Ready, got status code: 500',
  })
})

// Self-signed P-256 certificate for 127.0.0.1 (test fixture only).
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrbxCLWYVELk1dMW3
LcMhZ9Mhx2dkSDM2cgDtjoWqYqKhRANCAARD8Wjzh2eEEmAVC3GYnOXxidRMAunp
5ALR8WqNgY9ypem5iRHtphrd0gvYcbeqebL2CoRVJ7+AaNtbSCgK2y2R
-----END PRIVATE KEY-----
`
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBkDCCATagAwIBAgIUXOFXan0hQmkmoVB5WgGeGQsQGhMwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzEyMTkyOVoYDzIxMjYxMDMw
MTIxOTI5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARD8Wjzh2eEEmAVC3GYnOXxidRMAunp5ALR8WqNgY9ypem5iRHtphrd
0gvYcbeqebL2CoRVJ7+AaNtbSCgK2y2Ro2QwYjAdBgNVHQ4EFgQU+EFTe1CS+vN1
GJJajl64wNLFqzwwHwYDVR0jBBgwFoAU+EFTe1CS+vN1GJJajl64wNLFqzwwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC
IFX4Y3ZznEmeL/U4P+7Eg8Ja8hdiqMtAYiqNMkNJpFq0AiEAgKJpNxTJTWdTt32w
3jIUcwoos8wuTxkVwyuQ9mgEYnI=
-----END CERTIFICATE-----
`
