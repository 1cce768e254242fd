// The request path through a real queue-proxy to a real user container.
import t from 'tap'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { request, startApp, startQueueProxy, knativeEnv, close } from '../helpers/servers.ts'

/** An app that echoes what it received as JSON. */
function echoApp(): http.RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ method: req.method, url: req.url, httpVersion: req.httpVersion, headers: req.headers, bodyLength: body.length, body: body.length < 200 ? body.toString() : '' }))
    })
  }
}

t.test('proxy to the user container', async (t) => {
  const app = await startApp(echoApp())
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await close(app.server) })

  t.test('GET is proxied with path, query and method unchanged', async (t) => {
    const r = await request(`${qp.url}/a/b?x=1&y=2`)
    t.equal(r.status, 200)
    const seen = JSON.parse(r.body)
    t.equal(seen.url, '/a/b?x=1&y=2')
    t.equal(seen.method, 'GET')
    t.equal(seen.httpVersion, '1.1')
  })

  t.test('revision headers are stripped and K-Original-Host becomes Host', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'Knative-Serving-Revision': 'r', 'Knative-Serving-Namespace': 'n', 'K-Original-Host': 'hello.default.example.com', 'X-Custom': 'kept' } })
    const h = JSON.parse(r.body).headers
    t.equal(h['knative-serving-revision'], undefined)
    t.equal(h['knative-serving-namespace'], undefined)
    t.equal(h['k-original-host'], undefined)
    t.equal(h.host, 'hello.default.example.com')
    t.equal(h['x-custom'], 'kept')
  })

  t.test('Host is kept when there is no K-Original-Host', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { host: 'my.host.example' } })
    t.equal(JSON.parse(r.body).headers.host, 'my.host.example')
  })

  t.test('X-Forwarded-For gets the client IP appended; Forwarded is synthesised from it', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'X-Forwarded-For': '10.0.0.1, ::1', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'h' } })
    const h = JSON.parse(r.body).headers
    t.equal(h['x-forwarded-for'], '10.0.0.1, ::1, 127.0.0.1')
    t.equal(h.forwarded, 'for=10.0.0.1;host=h;proto=https, for="[::1]"')
  })

  t.test('an existing Forwarded header is kept as is', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { Forwarded: 'for=1.1.1.1', 'X-Forwarded-For': '2.2.2.2' } })
    t.equal(JSON.parse(r.body).headers.forwarded, 'for=1.1.1.1')
  })

  t.test('no X-Forwarded-* and no Forwarded: only X-Forwarded-For with the peer', async (t) => {
    const r = await request(`${qp.url}/`)
    const h = JSON.parse(r.body).headers
    t.equal(h.forwarded, undefined)
    t.equal(h['x-forwarded-for'], '127.0.0.1')
  })

  t.test('hop-by-hop headers and those named in Connection are removed', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { Connection: 'keep-alive, X-Hop', 'X-Hop': 'drop me', 'Proxy-Authorization': 'x', 'Keep-Alive': 'timeout=5', TE: 'trailers, deflate' } })
    const h = JSON.parse(r.body).headers
    t.equal(h['x-hop'], undefined)
    t.equal(h['proxy-authorization'], undefined)
    t.equal(h['keep-alive'], undefined)
    t.equal(h.te, 'trailers')
  })

  t.test('K-Proxy-Request is forwarded unchanged', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'K-Proxy-Request': 'activator' } })
    t.equal(JSON.parse(r.body).headers['k-proxy-request'], 'activator')
  })

  t.test('no User-Agent stays no User-Agent', async (t) => {
    const r = await request(`${qp.url}/`)
    t.equal(JSON.parse(r.body).headers['user-agent'], undefined)
  })

  t.test('a 1 MiB POST body streams through intact', async (t) => {
    const body = Buffer.alloc(1 << 20, 'x')
    const r = await request(`${qp.url}/upload`, { method: 'POST', body, headers: { 'content-length': String(body.length) } })
    t.equal(r.status, 200)
    t.equal(JSON.parse(r.body).bodyLength, body.length)
  })

  t.test('a chunked POST body streams through', async (t) => {
    const r = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${qp.url}/chunked`, { method: 'POST', agent: false }, (res) => {
        let b = ''
        res.on('data', (c) => { b += c })
        res.on('end', () => resolve(b))
      })
      req.on('error', reject)
      req.write('hello ')
      setTimeout(() => req.end('world'), 20)
    })
    t.equal(JSON.parse(r).body, 'hello world')
  })

  t.test('keep-alive: many requests over one client connection', async (t) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    for (let i = 0; i < 20; i++) {
      const r = await request(`${qp.url}/k${i}`, { agent })
      t.equal(JSON.parse(r.body).url, `/k${i}`)
    }
  })

  t.test('h2c inbound to an HTTP/1-only app: 502 (upstream protocol mirrors inbound, as Knative), no hang', async (t) => {
    const c = http2.connect(qp.url)
    t.teardown(() => c.close())
    const status = await new Promise<number>((resolve, reject) => {
      const s = c.request({ ':path': '/h2' })
      s.on('response', (h) => resolve(Number(h[':status'])))
      s.on('error', reject)
      s.resume()
      s.end()
    })
    t.equal(status, 502)
  })
})

t.test('streaming, trailers and upgrades', async (t) => {
  const app = await startApp((req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      let n = 0
      const iv = setInterval(() => {
        res.write(`data: ${n}\n\n`)
        if (++n === 3) {
          clearInterval(iv)
          res.end()
        }
      }, 50)
      return
    }
    if (req.url === '/trailers') {
      res.writeHead(200, { Trailer: 'x-checksum', 'content-type': 'text/plain' })
      res.write('body')
      res.addTrailers({ 'x-checksum': 'abc123' })
      res.end()
      return
    }
    res.setHeader('set-cookie', ['a=1', 'b=2'])
    res.end('ok')
  })
  app.server.on('upgrade', (req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}|host:${req.headers.host}`))
    socket.on('end', () => socket.end())
  })
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await close(app.server) })

  t.test('server-sent events arrive chunk by chunk, not all at the end', async (t) => {
    const times: number[] = []
    const start = Date.now()
    await new Promise<void>((resolve, reject) => {
      http.get(`${qp.url}/stream`, { agent: false }, (res) => {
        res.on('data', () => times.push(Date.now() - start))
        res.on('end', () => resolve())
      }).on('error', reject)
    })
    t.ok(times.length >= 3, `got ${times.length} chunks`)
    t.ok(times[0]! < 90, `first chunk after ${times[0]} ms`)
  })

  t.test('trailers are passed through', async (t) => {
    const trailers = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
      http.get(`${qp.url}/trailers`, { agent: false }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.trailers))
      }).on('error', reject)
    })
    t.equal(trailers['x-checksum'], 'abc123')
  })

  t.test('repeated response headers (Set-Cookie) are all kept', async (t) => {
    const r = await request(`${qp.url}/`)
    t.same(r.headers['set-cookie'], ['a=1', 'b=2'])
  })

  t.test('a websocket upgrade is tunnelled both ways', async (t) => {
    const sock = net.connect(qp.ports.serving, '127.0.0.1')
    t.teardown(() => sock.destroy())
    sock.write('GET /ws HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\n\r\n')
    let got = ''
    await new Promise<void>((resolve) => {
      sock.on('data', (d) => {
        got += d.toString()
        if (got.includes('\r\n\r\n') && !got.includes('echo:')) sock.write('ping')
        if (got.includes('host:ws.example')) resolve()
      })
    })
    t.match(got, /^HTTP\/1\.1 101 /)
    t.match(got, /echo:ping\|host:ws\.example/)
  })
})

t.test('h2c: HTTP/2 inbound goes to the app over h2c, with streaming and trailers (gRPC shape)', async (t) => {
  const app = http2.createServer((req, res) => {
    res.setHeader('x-app-version', req.httpVersion)
    res.setHeader('content-type', 'application/grpc')
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.addTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' })
      res.end(Buffer.concat(chunks))
    })
  })
  app.listen(0, '127.0.0.1')
  await new Promise((r) => app.once('listening', r))
  const port = (app.address() as net.AddressInfo).port
  const qp = await startQueueProxy(knativeEnv(port))
  const c = http2.connect(qp.url)
  t.teardown(async () => { c.close(); await qp.stop(); app.close() })
  const result = await new Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const s = c.request({ ':path': '/pkg.Svc/Method', ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' })
    let headers: http2.IncomingHttpHeaders = {}
    let body = ''
    s.on('response', (h) => { headers = h })
    s.on('data', (d: Buffer) => { body += d.toString() })
    s.on('trailers', (tr) => resolve({ headers, trailers: tr, body }))
    s.on('error', reject)
    s.write('part1-')
    setTimeout(() => s.end('part2'), 20)
  })
  t.equal(result.headers[':status'], 200)
  t.equal(result.headers['x-app-version'], '2.0')
  t.equal(result.body, 'part1-part2')
  t.equal(result.trailers['grpc-status'], '0')
  t.equal(result.trailers['grpc-message'], 'ok')
})
