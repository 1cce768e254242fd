// The shared proxy exchange at the edges of a response, against both the
// queue-proxy and the activator: response header blocks as large as request
// ones pass (1 MiB; 502 with a clear body beyond), and a timeout that fires
// after a Content-Length response started ends the connection instead of
// appending text the client would read as the rest of the body.

import t from 'tap'
import type http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { once } from 'node:events'
import { FRONTS, startFront } from '../../helpers/fronts.ts'
import { rawStatus } from '../../helpers/request-path.ts'
import { listen, request, startApp } from '../../helpers/servers.ts'

t.jobs = 2

const BIG = 'v'.repeat(64 * 1024)
const TOO_BIG = 'v'.repeat(1100 * 1024)

// Both servers' compat responses have the surface used here.
function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url !== '/echo') req.resume()
  switch (req.url) {
    case '/big-header':
      res.setHeader('x-big', BIG)
      res.end('ok')
      return
    case '/too-big-header':
      res.setHeader('x-big', TOO_BIG)
      res.end('ok')
      return
    case '/length-then-stall':
      // Declares 1000 bytes, sends 100, then never finishes.
      res.writeHead(200, { 'content-length': '1000', 'content-type': 'text/plain' })
      res.write('a'.repeat(100))
      return
    case '/chunked-then-stall':
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('b'.repeat(100))
      return
    case '/echo': {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => res.end(`echo ${Buffer.concat(chunks).toString()}`))
      return
    }
    default:
      res.end('ok')
  }
}
const app = await startApp(handle)
t.teardown(() => { app.server.closeAllConnections(); app.server.close() })
// HTTP/2 requests go upstream as h2c: the same app over h2c.
const h2app = http2.createServer({ maxSendHeaderBlockLength: 2 << 20 } as http2.ServerOptions, handle as never)
const h2port = await listen(h2app as unknown as net.Server)
t.teardown(() => new Promise<void>((r) => { h2app.close(() => r()) }))

/** Sends one request on `sock` and collects bytes until `until` holds or the socket closes. */
function exchange(sock: net.Socket, req: string, until: (text: string) => boolean, timeoutMs = 8000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = ''
    const finish = (closed: boolean) => {
      clearTimeout(timer)
      sock.removeListener('data', onData)
      sock.removeListener('close', onClose)
      resolve({ text, closed })
    }
    const onData = (c: Buffer) => {
      text += c.toString('latin1')
      if (until(text)) finish(false)
    }
    const onClose = () => finish(true)
    const timer = setTimeout(finish, timeoutMs, false)
    sock.on('data', onData)
    sock.once('close', onClose)
    sock.write(req)
  })
}

for (const kind of FRONTS) {
  t.test(`${kind}: a 64 KiB response header passes; a header block beyond 1 MiB gets 502 saying so`, async (t) => {
    const front = await startFront(kind, app.port)
    t.teardown(() => front.stop())
    const ok = await request(front.url + '/big-header', { headers: front.headers, maxHeaderSize: 2 << 20 })
    t.equal(ok.status, 200, 'the response with a 64 KiB header is passed')
    t.equal(ok.headers['x-big'], BIG, 'the header arrives intact')
    t.equal(ok.body, 'ok')
    const over = await request(front.url + '/too-big-header', { headers: front.headers, maxHeaderSize: 2 << 20 })
    t.equal(over.status, 502, 'a header block over the limit is a 502')
    t.match(over.body, /server response headers exceeded 1048576 bytes; aborted/, 'with a body that names the cause')
    t.ok(await front.settled(), 'nothing left in flight')
  })

  t.test(`${kind}: a timeout after a Content-Length response started closes the connection; nothing is appended`, async (t) => {
    const front = await startFront(kind, app.port, { env: { REVISION_TIMEOUT_SECONDS: '1' }, revision: { timeoutSeconds: 1 } })
    t.teardown(() => front.stop())
    const sock = net.connect(front.port, '127.0.0.1')
    sock.on('error', () => {})
    await once(sock, 'connect')
    const started = performance.now()
    const { text, closed } = await exchange(sock, `GET /length-then-stall HTTP/1.1\r\nHost: x\r\n${front.rawHeaders}\r\n`, () => false)
    const ms = performance.now() - started
    t.ok(closed, `the connection is closed at the timeout (${ms.toFixed(0)} ms)`)
    t.equal(rawStatus(text), 200)
    const body = text.slice(text.indexOf('\r\n\r\n') + 4)
    t.equal(body, 'a'.repeat(100), 'the client got exactly the bytes the app sent, nothing appended')
    t.notMatch(text, /timeout/, 'no timeout text inside the declared body')
    t.ok(await front.settled(), 'in-flight count back at 0')
    const next = await request(front.url + '/', { headers: front.headers })
    t.equal(next.status, 200, 'the next request, on a new connection, is answered normally')
    t.equal(next.body, 'ok')
  })

  t.test(`${kind}: a timeout after a chunked response started appends the message, ends the response and keeps the connection`, async (t) => {
    const front = await startFront(kind, app.port, { env: { REVISION_TIMEOUT_SECONDS: '1' }, revision: { timeoutSeconds: 1 } })
    t.teardown(() => front.stop())
    const sock = net.connect(front.port, '127.0.0.1')
    sock.on('error', () => {})
    await once(sock, 'connect')
    const first = await exchange(sock, `GET /chunked-then-stall HTTP/1.1\r\nHost: x\r\n${front.rawHeaders}\r\n`, (s) => s.endsWith('0\r\n\r\n'))
    t.notOk(first.closed, 'the connection stays open')
    t.match(first.text, /transfer-encoding: chunked/i)
    t.ok(first.text.includes(front.timeoutMessage), `"${front.timeoutMessage}" is appended`)
    t.ok(first.text.endsWith('0\r\n\r\n'), 'the chunked body is properly terminated')
    const second = await exchange(sock, `GET / HTTP/1.1\r\nHost: x\r\n${front.rawHeaders}\r\n`, (s) => s.endsWith('ok'))
    t.equal(rawStatus(second.text), 200, 'the next request on the same connection is answered')
    sock.destroy()
    t.ok(await front.settled(), 'in-flight count back at 0')
  })

  t.test(`${kind}: h2: a timeout after a Content-Length response started resets the stream; the session goes on`, async (t) => {
    const front = await startFront(kind, h2port, { env: { REVISION_TIMEOUT_SECONDS: '1' }, revision: { timeoutSeconds: 1, protocol: 'h2c' } })
    const client = http2.connect(front.url)
    client.on('error', () => {})
    t.teardown(async () => {
      client.destroy()
      await front.stop()
    })
    const headers = Object.fromEntries(Object.entries(front.headers).map(([k, v]) => [k.toLowerCase(), v]))
    const s = client.request({ ':path': '/length-then-stall', ...headers })
    let body = ''
    s.setEncoding('latin1')
    s.on('data', (c: string) => { body += c })
    const [status] = await once(s, 'response') as [http2.IncomingHttpHeaders]
    t.equal(status[':status'], 200)
    const outcome = await new Promise<string>((resolve) => {
      s.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`))
      s.on('end', () => resolve('end'))
      s.on('close', () => resolve(`close ${s.rstCode}`))
    })
    t.notMatch(outcome, /^end$/, `the stream is reset, not ended (${outcome})`)
    t.notMatch(body, /timeout/, 'no timeout text inside the declared body')
    const again = client.request({ ':path': '/', ...headers })
    again.setEncoding('utf8')
    let text = ''
    again.on('data', (c: string) => { text += c })
    await once(again, 'end')
    t.equal(text, 'ok', 'the next stream on the same session is served')
    const big = client.request({ ':path': '/big-header', ...headers })
    big.resume()
    const [bigHead] = await once(big, 'response') as [http2.IncomingHttpHeaders]
    t.equal(bigHead[':status'], 200, 'h2 too: a 64 KiB response header passes')
    t.equal(bigHead['x-big'], BIG)
    t.ok(await front.settled(), 'in-flight count back at 0')
  })
}

for (const kind of FRONTS) {
  t.test(`${kind}: Expect: 100-continue gets its 100 when the request goes upstream, then the body is proxied`, async (t) => {
    const front = await startFront(kind, app.port)
    t.teardown(() => front.stop())
    const sock = net.connect(front.port, '127.0.0.1')
    sock.on('error', () => {})
    await once(sock, 'connect')
    const head = await exchange(sock, `POST /echo HTTP/1.1\r\nHost: x\r\n${front.rawHeaders}Content-Length: 5\r\nExpect: 100-continue\r\n\r\n`, (s) => s.includes('\r\n\r\n'))
    t.match(head.text, /^HTTP\/1\.1 100 Continue\r\n\r\n$/, 'the client is told to send its body')
    const rest = await exchange(sock, 'hello', (s) => s.endsWith('echo hello'))
    t.equal(rawStatus(rest.text), 200)
    t.match(rest.text, /echo hello$/, 'the body reached the app')
    sock.destroy()
    t.ok(await front.settled(), 'nothing left in flight')
  })
}

t.test('activator: a waiting upload with Expect: 100-continue is not told to continue until a pod takes it', async (t) => {
  const { revisionInfo, startActivator, startPod } = await import('../../helpers/activator.ts')
  const act = await startActivator({ revisions: [revisionInfo('cont-00001')] })
  t.teardown(() => act.stop())
  const sock = net.connect(act.ports.http, '127.0.0.1')
  sock.on('error', () => {})
  await once(sock, 'connect')
  const early = await exchange(sock, 'POST /echo HTTP/1.1\r\nHost: x\r\nKnative-Serving-Namespace: default\r\nKnative-Serving-Revision: cont-00001\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n', (s) => s.length > 0, 500)
  t.equal(early.text, '', 'no 100 Continue while the request waits for a pod')
  const pod = await startPod(app.port, { revision: 'cont-00001' })
  t.teardown(() => pod.stop())
  const cont = exchange(sock, '', (s) => s.includes('100 Continue\r\n\r\n'), 5000)
  act.source.setEndpoints('default', 'cont-00001', { ready: [pod.dest], notReady: [] })
  t.match((await cont).text, /^HTTP\/1\.1 100 Continue/, '100 Continue once a pod takes the request')
  const rest = await exchange(sock, 'hello', (s) => s.endsWith('echo hello'))
  t.equal(rawStatus(rest.text), 200)
  sock.destroy()
})
