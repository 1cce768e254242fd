// Bad input on either side of the queue-proxy: malformed or oversized client
// requests, clients and apps that vanish mid-exchange, an app that is not
// listening (spec §1.10 upstream errors). The queue-proxy must answer what it
// can, never hang or crash, and leave nothing in flight.
import t from 'tap'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { close, knativeEnv, listen, request, startApp, startQueueProxy } from '../helpers/servers.ts'
import { deadPort, rawExchange, rawStatus, settled, waitFor } from '../helpers/request-path.ts'

/**
 * `/reset-before-headers` destroys the socket at once; `/reset-mid-body`
 * sends headers and part of a body, then destroys the socket; `/upload`
 * reports whether the request body arrived complete; anything else says ok.
 */
async function troubleApp() {
  const uploads: Array<{ complete: boolean; bytes: number }> = []
  const app = await startApp((req, res) => {
    if (req.url === '/reset-before-headers') return void req.socket.destroy()
    if (req.url === '/reset-mid-body') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('partial body')
      setTimeout(() => req.socket.destroy(), 30)
      return
    }
    if (req.url === '/early') {
      req.resume()
      res.writeHead(413)
      res.end('too large')
      return
    }
    if (req.url === '/upload') {
      let bytes = 0
      req.on('data', (c: Buffer) => { bytes += c.length })
      req.on('close', () => uploads.push({ complete: req.complete, bytes }))
      req.on('end', () => res.end(`got ${bytes}`))
      return
    }
    res.end('ok')
  })
  return { ...app, uploads }
}

t.test('malformed client input', async (t) => {
  const app = await troubleApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { SLUICE_MAX_HEADER_BYTES: '4096' }))
  t.teardown(async () => { await qp.stop(); await close(app.server) })
  const port = qp.ports.serving

  const cases: Array<[string, string | Buffer]> = [
    ['a malformed request line', 'GARBAGE\r\n\r\n'],
    ['a request line with a bad version', 'GET / HTTP/9.x\r\nHost: a\r\n\r\n'],
    ['a header line without a colon', 'GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n'],
    ['binary garbage', Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a, 0x80, 0x81])],
    ['a bad Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n'],
    ['a bad chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
    ['both Content-Length and Transfer-Encoding (smuggling)', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['a control character in a header value', 'GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01b\r\n\r\n'],
  ]
  for (const [name, bytes] of cases) {
    t.test(`${name}: 400 and the connection is closed`, async (t) => {
      const r = await rawExchange(port, bytes)
      t.equal(rawStatus(r.text), 400, JSON.stringify(r.text.slice(0, 40)))
      t.ok(r.closed, 'the queue-proxy closed the connection')
      t.equal((await request(`${qp.url}/`)).body, 'ok', 'the queue-proxy keeps serving')
    })
  }

  t.test('a wrong HTTP/2 preface of full length: rejected, not hung', async (t) => {
    const r = await rawExchange(port, 'PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n', 1500)
    t.ok(r.closed, 'the connection was closed')
    t.not(rawStatus(r.text), 200)
    t.equal((await request(`${qp.url}/`)).body, 'ok', 'the queue-proxy keeps serving')
  })

  t.test('an HTTP/2 preface followed by garbage frames: the connection is closed, the queue-proxy survives', async (t) => {
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
    const r = await rawExchange(port, Buffer.concat([preface, Buffer.alloc(64, 0xee)]), 1500)
    t.ok(r.closed, 'the connection was closed')
    t.equal((await request(`${qp.url}/`)).body, 'ok', 'the queue-proxy keeps serving')
  })

  t.test('CONNECT (not proxied by a queue-proxy): the connection is closed, the queue-proxy survives', async (t) => {
    const r = await rawExchange(port, 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', 1500)
    t.ok(r.closed, 'the connection was closed')
    t.not(rawStatus(r.text), 200)
    t.equal((await request(`${qp.url}/`)).body, 'ok', 'the queue-proxy keeps serving')
  })

  t.test('headers over SLUICE_MAX_HEADER_BYTES: 431 and the connection is closed', async (t) => {
    const r = await rawExchange(port, `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(8192)}\r\n\r\n`)
    t.equal(rawStatus(r.text), 431)
    t.ok(r.closed)
    t.equal((await request(`${qp.url}/`)).body, 'ok', 'the queue-proxy keeps serving')
  })

  t.test('headers just under SLUICE_MAX_HEADER_BYTES are accepted', async (t) => {
    const r = await request(`${qp.url}/`, { headers: { 'x-big': 'x'.repeat(3000) } })
    t.equal(r.status, 200)
  })

  t.test('a client that sends half its headers and disconnects leaves nothing behind', async (t) => {
    const sock = net.connect(port, '127.0.0.1')
    sock.write('GET / HTTP/1.1\r\nHost: a\r\nX-Par')
    await new Promise((r) => setTimeout(r, 30))
    sock.destroy()
    t.equal((await request(`${qp.url}/`)).body, 'ok', 'the queue-proxy keeps serving')
    t.ok(await settled(qp), 'nothing left in flight')
  })

  t.test('nothing is left in flight after the bad input', async (t) => {
    t.ok(await settled(qp))
  })
})

t.test('unusual request targets reach the app in origin form, as from Go\'s reverse proxy', async (t) => {
  const app = await startApp((req, res) => res.end(`${req.method} ${req.url} host=${req.headers.host}`))
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await close(app.server) })
  const port = qp.ports.serving
  const body = async (raw: string) => (await rawExchange(port, raw)).text.split('\r\n\r\n')[1]

  t.equal(await body('GET http://abs.example:81/p/q?x=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n'),
    'GET /p/q?x=1 host=abs.example:81', 'absolute form: path in origin form, Host from the URL (RFC 9112 §3.2.2)')
  t.equal(await body('GET http://abs.example?x=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n'),
    'GET /?x=1 host=abs.example', 'absolute form without a path')
  t.equal(await body('GET http://abs.example/p HTTP/1.1\r\nHost: other\r\nK-Original-Host: orig.example\r\nConnection: close\r\n\r\n'),
    'GET /p host=orig.example', 'K-Original-Host still wins')
  t.equal(await body('OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'),
    'OPTIONS /* host=a', 'asterisk form is joined onto the target path as Go does')
  t.equal(await body('GET //double//slash HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'),
    'GET //double//slash host=a', 'double slashes are kept')
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('a client that aborts mid-body: no crash, the app sees an aborted request, counts back to 0', async (t) => {
  const app = await troubleApp()
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await close(app.server) })
  const req = http.request(`${qp.url}/upload`, { method: 'POST', agent: false, headers: { 'content-length': String(1 << 20) } })
  req.on('error', () => { /* our own abort */ })
  req.write(Buffer.alloc(10 * 1024, 'x'))
  t.ok(await waitFor(() => qp.qp.ctx.stats.inFlight === 1), 'the request is in flight')
  await new Promise((r) => setTimeout(r, 50))
  req.destroy()
  t.ok(await waitFor(() => app.uploads.length === 1), 'the app saw the request end')
  t.equal(app.uploads[0]!.complete, false, 'the app saw an incomplete (aborted) request')
  t.ok(app.uploads[0]!.bytes <= 10 * 1024, `got at most what was sent (${app.uploads[0]!.bytes})`)
  t.ok(await settled(qp), 'nothing left in flight')
  t.equal((await request(`${qp.url}/`)).body, 'ok', 'the queue-proxy keeps serving')
})

t.test('upstream failures', async (t) => {
  const app = await troubleApp()
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await close(app.server) })

  t.test('the app resets mid-response: the client sees a broken response, not a hang', async (t) => {
    const start = Date.now()
    const outcome = await new Promise<{ body: string; complete: boolean; error: string }>((resolve) => {
      http.get(`${qp.url}/reset-mid-body`, { agent: false }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => { body += c.toString() })
        res.on('error', (err) => resolve({ body, complete: res.complete, error: err.message }))
        res.on('close', () => resolve({ body, complete: res.complete, error: '' }))
      }).on('error', (err) => resolve({ body: '', complete: false, error: err.message }))
    })
    t.ok(Date.now() - start < 2000, `ended promptly (${Date.now() - start} ms)`)
    t.equal(outcome.complete, false, `the response is not complete (${outcome.error})`)
    t.equal(outcome.body, 'partial body', 'what was sent before the reset arrived')
    t.ok(await settled(qp), 'nothing left in flight')
  })

  t.test('the app resets before headers: 502 with a Go-like error body', async (t) => {
    const r = await request(`${qp.url}/reset-before-headers`)
    t.equal(r.status, 502)
    t.ok(r.body === 'EOF\n' || /connection reset/.test(r.body), `Go-like body: ${JSON.stringify(r.body)}`)
    t.ok(await settled(qp), 'nothing left in flight')
  })

  t.test('a POST to an app that resets before headers: 502, not a retry or hang', async (t) => {
    const r = await request(`${qp.url}/reset-before-headers`, { method: 'POST', body: 'payload', headers: { 'content-length': '7' } })
    t.equal(r.status, 502)
    t.ok(await settled(qp), 'nothing left in flight')
  })

  t.test('the queue-proxy keeps serving after upstream failures', async (t) => {
    const rs = await Promise.all(Array.from({ length: 5 }, () => request(`${qp.url}/`)))
    t.same(rs.map((r) => r.body), ['ok', 'ok', 'ok', 'ok', 'ok'])
  })
})

t.test('the app is not listening', async (t) => {
  const port = await deadPort()
  const qp = await startQueueProxy(knativeEnv(port))
  t.teardown(() => qp.stop())

  t.test('HTTP/1.1: 502 "dial tcp 127.0.0.1:<port>: connect: connection refused\\n", at once', async (t) => {
    const start = Date.now()
    const r = await request(`${qp.url}/`)
    t.ok(Date.now() - start < 1000, `refused without retries (${Date.now() - start} ms)`)
    t.equal(r.status, 502)
    t.equal(r.body, `dial tcp 127.0.0.1:${port}: connect: connection refused\n`)
    t.equal(r.headers['content-type'], 'text/plain; charset=utf-8')
  })

  t.test('a POST with a body: the same 502', async (t) => {
    const r = await request(`${qp.url}/`, { method: 'POST', body: 'x'.repeat(1000), headers: { 'content-length': '1000' } })
    t.equal(r.status, 502)
    t.equal(r.body, `dial tcp 127.0.0.1:${port}: connect: connection refused\n`)
  })

  t.test('h2c: 502 with the same body over HTTP/2', async (t) => {
    const c = http2.connect(qp.url)
    t.teardown(() => c.destroy())
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = c.request({ ':path': '/h2', ':method': 'GET' })
      let status = 0
      let body = ''
      s.on('response', (h) => { status = Number(h[':status']) })
      s.on('data', (d: Buffer) => { body += d.toString() })
      s.on('end', () => resolve({ status, body }))
      s.on('error', reject)
      s.end()
    })
    t.equal(r.status, 502)
    t.equal(r.body, `dial tcp 127.0.0.1:${port}: connect: connection refused\n`)
  })

  t.test('nothing is left in flight', async (t) => {
    t.ok(await settled(qp))
  })
})

t.test('h2c: streams that break on either side', async (t) => {
  const uploads: Array<{ aborted: boolean; bytes: number }> = []
  const app = http2.createServer((req, res) => {
    if (req.url === '/reset-mid-body') {
      res.writeHead(200)
      res.write('partial body')
      setTimeout(() => req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 30)
      return
    }
    if (req.url === '/early') {
      req.resume()
      res.writeHead(413)
      res.end('too large')
      return
    }
    if (req.url === '/upload') {
      let bytes = 0
      req.on('data', (c: Buffer) => { bytes += c.length })
      // Http2ServerRequest.complete is also true when aborted: look at the body's end instead.
      req.on('close', () => uploads.push({ aborted: !req.readableEnded, bytes }))
      return
    }
    res.end('ok')
  })
  const port = await listen(app as unknown as net.Server)
  const qp = await startQueueProxy(knativeEnv(port))
  const c = http2.connect(qp.url)
  c.on('error', () => { /* reported per stream */ })
  t.teardown(async () => { c.destroy(); await qp.stop(); app.close() })

  t.test('the app resets its stream mid-response: the client stream errors, no hang', async (t) => {
    const outcome = await new Promise<{ status: number; body: string; error: string }>((resolve) => {
      const s = c.request({ ':path': '/reset-mid-body' })
      let status = 0
      let body = ''
      s.on('response', (h) => { status = Number(h[':status']) })
      s.on('data', (d: Buffer) => { body += d.toString() })
      s.on('error', (err) => resolve({ status, body, error: err.message }))
      s.on('end', () => resolve({ status, body, error: '' }))
      s.end()
    })
    t.equal(outcome.status, 200)
    t.equal(outcome.body, 'partial body')
    t.match(outcome.error, /NGHTTP2_INTERNAL_ERROR/, 'the stream was reset, not ended cleanly')
    t.ok(await settled(qp), 'nothing left in flight')
  })

  t.test('the client cancels its stream mid-upload: the app sees an aborted request, counts back to 0', async (t) => {
    const s = c.request({ ':path': '/upload', ':method': 'POST' })
    s.on('error', () => { /* our own cancel */ })
    s.write(Buffer.alloc(10 * 1024, 'x'))
    t.ok(await waitFor(() => qp.qp.ctx.stats.inFlight === 1), 'in flight')
    await new Promise((r) => setTimeout(r, 50))
    // destroy() resets the stream; close(code) would first send END_STREAM.
    s.destroy()
    t.ok(await waitFor(() => uploads.length === 1), 'the app saw the request end')
    t.equal(uploads[0]!.aborted, true, 'the app saw an incomplete request')
    t.ok(await settled(qp), 'nothing left in flight')
  })

  t.test('the app answers before the client finished uploading: the client gets the answer and its stream is closed', async (t) => {
    const r = await new Promise<{ status: number; body: string; closed: boolean }>((resolve) => {
      const s = c.request({ ':path': '/early', ':method': 'POST' })
      let status = 0
      let body = ''
      s.on('response', (h) => { status = Number(h[':status']) })
      s.on('data', (d: Buffer) => { body += d.toString() })
      s.on('error', () => { /* a NO_ERROR reset may surface here */ })
      const guard = setTimeout(() => { resolve({ status, body, closed: false }); s.destroy() }, 2000)
      s.on('close', () => { clearTimeout(guard); resolve({ status, body, closed: true }) })
      s.write('the start of a long upload')
    })
    t.equal(r.status, 413)
    t.equal(r.body, 'too large')
    t.ok(r.closed, 'the queue-proxy closed the stream (RST_STREAM NO_ERROR) instead of leaving it half-open')
    t.ok(await settled(qp), 'nothing left in flight')
  })

  t.test('the connection still serves new streams', async (t) => {
    const body = await new Promise<string>((resolve, reject) => {
      const s = c.request({ ':path': '/' })
      let b = ''
      s.on('data', (d: Buffer) => { b += d.toString() })
      s.on('end', () => resolve(b))
      s.on('error', reject)
      s.end()
    })
    t.equal(body, 'ok')
  })
})
