// Revision timeouts on the request path (spec §1.9, HEAD semantics for the
// total timeout): total, response-start and idle, each with 1 s values; the
// scenarios run in parallel so the file takes a few seconds.
import t from 'tap'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { close, knativeEnv, listen, request, startApp, startQueueProxy } from '../helpers/servers.ts'
import { accounting, settled, waitFor } from '../helpers/request-path.ts'

t.jobs = 8

/**
 * `/silent` never answers; `/stall` sends headers and "foo", then nothing;
 * `/finish/<ms>` sends headers and "foo" at once and "bar" + end after ms;
 * `/trickle/<ms>` writes "." every 200 ms for ms, then "end".
 * Requests the app saw end before it finished them are recorded as aborted.
 */
async function timeoutApp() {
  const aborted = new Set<string>()
  const seen = new Set<string>()
  const app = await startApp((req, res) => {
    const path = req.url!
    seen.add(path)
    req.resume()
    res.on('close', () => { if (!res.writableFinished) aborted.add(path) })
    const [, kind, arg] = path.split('/')
    if (kind === 'silent') return
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('foo')
    if (kind === 'finish') setTimeout(() => res.end('bar'), Number(arg))
    if (kind === 'trickle') {
      const until = Date.now() + Number(arg)
      const iv = setInterval(() => {
        if (res.destroyed) return clearInterval(iv)
        if (Date.now() < until) return void res.write('.')
        clearInterval(iv)
        res.end('end')
      }, 200)
    }
  })
  return { ...app, aborted, seen }
}

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const start = Date.now()
  const value = await p
  return { value, ms: Date.now() - start }
}

t.test('revision timeout (REVISION_TIMEOUT_SECONDS=1)', async (t) => {
  t.jobs = 4
  const tests: Promise<unknown>[] = []
  const app = await timeoutApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { REVISION_TIMEOUT_SECONDS: '1' }))
  t.teardown(async () => { await qp.stop(); await close(app.server) })

  tests.push(t.test('nothing written before the timeout: 504 "request timeout", upstream request aborted', async (t) => {
    const { value: r, ms } = await timed(request(`${qp.url}/silent/a`))
    t.equal(r.status, 504)
    t.equal(r.body, 'request timeout')
    t.match(r.headers['content-type'], /^text\/plain/)
    t.ok(ms >= 950 && ms < 1800, `answered at the timeout (${ms} ms)`)
    t.ok(await waitFor(() => app.aborted.has('/silent/a')), 'the app saw its request closed')
  }))

  tests.push(t.test('response started then stalls: status stays 200, "request timeout" is appended and the response ends', async (t) => {
    const { value: r, ms } = await timed(request(`${qp.url}/stall/b`))
    t.equal(r.status, 200)
    t.equal(r.body, 'foorequest timeout')
    t.ok(ms >= 950 && ms < 1800, `ended at the timeout, no hang (${ms} ms)`)
    t.ok(await waitFor(() => app.aborted.has('/stall/b')), 'the app saw its request closed')
  }))

  tests.push(t.test('a response that completes in time is untouched', async (t) => {
    const r = await request(`${qp.url}/finish/300`)
    t.equal(r.status, 200)
    t.equal(r.body, 'foobar')
  }))

  await Promise.all(tests)
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('response-start timeout (REVISION_RESPONSE_START_TIMEOUT_SECONDS=1, total 3 s)', async (t) => {
  t.jobs = 4
  const tests: Promise<unknown>[] = []
  const app = await timeoutApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { REVISION_TIMEOUT_SECONDS: '3', REVISION_RESPONSE_START_TIMEOUT_SECONDS: '1' }))
  t.teardown(async () => { await qp.stop(); await close(app.server) })

  tests.push(t.test('no headers by the response-start timeout: 504 "request timeout" before the total timeout', async (t) => {
    const { value: r, ms } = await timed(request(`${qp.url}/silent/c`))
    t.equal(r.status, 504)
    t.equal(r.body, 'request timeout')
    t.ok(ms >= 950 && ms < 1800, `answered at the response-start timeout (${ms} ms)`)
    t.ok(await waitFor(() => app.aborted.has('/silent/c')), 'the app saw its request closed')
  }))

  tests.push(t.test('headers sent before the response-start timeout: nothing happens and the request completes (no 1.12 hang)', async (t) => {
    const { value: r, ms } = await timed(request(`${qp.url}/finish/1500`))
    t.equal(r.status, 200)
    t.equal(r.body, 'foobar')
    t.ok(ms >= 1450 && ms < 2500, `completed when the app finished (${ms} ms)`)
  }))

  await Promise.all(tests)
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('idle timeout (REVISION_IDLE_TIMEOUT_SECONDS=1, total 3 s)', async (t) => {
  t.jobs = 4
  const tests: Promise<unknown>[] = []
  const app = await timeoutApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { REVISION_TIMEOUT_SECONDS: '3', REVISION_IDLE_TIMEOUT_SECONDS: '1' }))
  t.teardown(async () => { await qp.stop(); await close(app.server) })

  tests.push(t.test('a response writing every 200 ms outlives the idle timeout', async (t) => {
    const { value: r, ms } = await timed(request(`${qp.url}/trickle/1700`))
    t.equal(r.status, 200)
    t.match(r.body, /^foo\.+end$/)
    t.notMatch(r.body, /request timeout/)
    t.ok(ms >= 1650, `ran past the idle timeout (${ms} ms)`)
  }))

  tests.push(t.test('a response that stops writing gets "request timeout" appended after the idle timeout', async (t) => {
    const { value: r, ms } = await timed(request(`${qp.url}/stall/d`))
    t.equal(r.status, 200)
    t.equal(r.body, 'foorequest timeout')
    t.ok(ms >= 950 && ms < 1800, `ended at the idle timeout (${ms} ms)`)
    t.ok(await waitFor(() => app.aborted.has('/stall/d')), 'the app saw its request closed')
  }))

  tests.push(t.test('a response that never writes counts as idle: 504 "request timeout"', async (t) => {
    const { value: r, ms } = await timed(request(`${qp.url}/silent/e`))
    t.equal(r.status, 504)
    t.equal(r.body, 'request timeout')
    t.ok(ms >= 950 && ms < 1800, `answered at the idle timeout (${ms} ms)`)
  }))

  await Promise.all(tests)
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('cc=1: a request that times out while queued in the breaker gets 504 and frees its queue slot', async (t) => {
  const app = await timeoutApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { REVISION_TIMEOUT_SECONDS: '1', CONTAINER_CONCURRENCY: '1' }))
  t.teardown(async () => { await qp.stop(); await close(app.server) })
  // Every request is bounded by the same timeout, so a request cannot hold the
  // slot past a later one's deadline: occupy it directly, as a long request would.
  const breaker = qp.qp.ctx.breaker!
  t.ok(breaker.tryAcquire(), 'slot taken')
  const { value: r, ms } = await timed(request(`${qp.url}/finish/0`))
  t.equal(r.status, 504)
  t.equal(r.body, 'request timeout')
  t.ok(ms >= 950 && ms < 1800, `answered at the timeout (${ms} ms)`)
  t.equal(app.seen.size, 0, 'the request never reached the app')
  t.same(accounting(qp), { active: 0, stats: 0, running: 1, waiting: 0 }, 'the queue slot is free again; only the held slot remains')
  breaker.release()
  const after = await request(`${qp.url}/finish/0`)
  t.equal(after.status, 200, 'the breaker still admits requests')
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('a keep-alive connection stays usable after a 504 timeout', async (t) => {
  const app = await timeoutApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { REVISION_TIMEOUT_SECONDS: '1' }))
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(async () => { agent.destroy(); await qp.stop(); await close(app.server) })
  const first = await request(`${qp.url}/silent/k`, { agent })
  t.equal(first.status, 504)
  const second = await request(`${qp.url}/finish/0`, { agent })
  t.equal(second.status, 200)
  t.equal(second.body, 'foobar')
})

/**
 * Sends a request over h2c; with `upload` the body is written but the stream
 * left open. `closed` is false if the stream was still open after 3 s.
 */
function h2Request(c: http2.ClientHttp2Session, path: string, upload = false): Promise<{ status: number; body: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = c.request({ ':path': path, ':method': upload ? 'POST' : 'GET' }, { endStream: !upload })
    let status = 0
    let body = ''
    s.on('response', (h) => { status = Number(h[':status']) })
    s.on('data', (d: Buffer) => { body += d.toString() })
    // An upload cut short by the server ends in a reset rather than 'end'.
    const guard = setTimeout(() => { resolve({ status, body, closed: false }); s.destroy() }, 3000)
    s.on('close', () => { clearTimeout(guard); resolve({ status, body, closed: true }) })
    s.on('error', reject)
    if (upload) s.write('partial upload, never finished')
  })
}

t.test('h2c (REVISION_TIMEOUT_SECONDS=1)', async (t) => {
  t.jobs = 4
  const tests: Promise<unknown>[] = []
  const appStreams: http2.ServerHttp2Stream[] = []
  const h2app = http2.createServer((req) => {
    appStreams.push(req.stream)
    req.resume() // never answers
  })
  const port = await listen(h2app as unknown as net.Server)
  const qp = await startQueueProxy(knativeEnv(port, { REVISION_TIMEOUT_SECONDS: '1' }))
  const qp1 = await startQueueProxy(knativeEnv(port, { REVISION_TIMEOUT_SECONDS: '1', CONTAINER_CONCURRENCY: '1' }))
  const c = http2.connect(qp.url)
  const c1 = http2.connect(qp1.url)
  t.teardown(async () => {
    c.destroy()
    c1.destroy()
    for (const s of appStreams) s.destroy()
    await qp.stop()
    await qp1.stop()
    h2app.close()
  })

  tests.push(t.test('nothing written before the timeout: 504 "request timeout" over HTTP/2', async (t) => {
    const r = await h2Request(c, '/silent')
    t.equal(r.status, 504)
    t.equal(r.body, 'request timeout')
  }))

  tests.push(t.test('a client still uploading when the timeout fires gets 504 and its stream is closed', async (t) => {
    const { value: r, ms } = await timed(h2Request(c, '/upload', true))
    t.equal(r.status, 504)
    t.equal(r.body, 'request timeout')
    t.ok(r.closed && ms < 1800, `the stream was closed at the timeout (${ms} ms), not left open`)
  }))

  tests.push(t.test('cc=1: an upload queued in the breaker times out with 504 and frees everything', async (t) => {
    const breaker = qp1.qp.ctx.breaker!
    t.ok(breaker.tryAcquire(), 'slot taken, as by a long request')
    const r = await h2Request(c1, '/queued-upload', true)
    t.equal(r.status, 504)
    t.same(accounting(qp1), { active: 0, stats: 0, running: 1, waiting: 0 }, 'only the held slot remains')
    breaker.release()
  }))

  await Promise.all(tests)
  t.ok(await settled(qp), 'nothing left in flight (no stream left half-open)')
  t.ok(await settled(qp1), 'nothing left in flight (cc=1)')
})
