// The queue-proxy process (main.ts) spawned for real: configuration errors,
// and the SIGTERM sequence of spec §1.17 — probes fail at once, requests are
// served through the quiet period, in-flight requests and websockets finish
// (websockets cut after SLUICE_DRAIN_WEBSOCKET_TIMEOUT), exit 0; a second
// signal exits 1 at once.
import t from 'tap'
import net from 'node:net'
import { close, knativeEnv, request, sleep, startApp } from '../helpers/servers.ts'
import { ensureStopped, freePort, runMain, spawnQueueProxy, type QueueProxyProcess } from '../helpers/process.ts'

const KUBELET = { 'User-Agent': 'kube-probe/1.30', 'K-Network-Probe': 'queue' }

/** An app with a slow path and a websocket echo. */
async function lifecycleApp(t: { teardown(fn: () => Promise<void>): void }) {
  const app = await startApp((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('slow done'), 1500)
    else res.end(`app ${req.url}`)
  })
  app.server.on('upgrade', (_req, socket: net.Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}`))
    socket.on('end', () => socket.end())
    socket.on('error', () => {})
  })
  t.teardown(() => close(app.server))
  return app
}

async function spawnWith(t: { teardown(fn: () => Promise<void>): void }, userPort: number, extra: Record<string, string>): Promise<QueueProxyProcess> {
  const qp = await spawnQueueProxy(knativeEnv(userPort, { SERVING_LOGGING_LEVEL: 'error', ...extra }))
  t.teardown(() => ensureStopped(qp))
  return qp
}

/** Polls the kubelet probe until it stops answering 200. */
async function probeUntilFailing(url: string, timeoutMs = 1000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await request(`${url}/`, { headers: KUBELET })
    if (r.status !== 200 || Date.now() > deadline) return r
    await sleep(10)
  }
}

/** A raw websocket upgrade through the queue-proxy; resolves once the 101 arrived. */
async function openWebsocket(port: number) {
  const sock = net.connect(port, '127.0.0.1')
  sock.on('error', () => {})
  let received = ''
  const closed = new Promise<number>((resolve) => sock.on('close', () => resolve(performance.now())))
  sock.setEncoding('utf8').on('data', (d: string) => { received += d })
  sock.write('GET /ws HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n')
  const until = async (text: string) => {
    const deadline = Date.now() + 2000
    while (!received.includes(text)) {
      if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} in ${JSON.stringify(received)}`)
      await sleep(5)
    }
  }
  await until('\r\n\r\n')
  return { sock, closed, until, received: () => received }
}

t.test('configuration errors: exit 1 and stderr names the variable', async (t) => {
  const base = knativeEnv(8080)
  const cases: [string, Record<string, string>][] = [
    ['SERVING_POD', (({ SERVING_POD: _, ...rest }) => rest)(base)],
    ['CONTAINER_CONCURRENCY', { ...base, CONTAINER_CONCURRENCY: 'abc' }],
    ['OBSERVABILITY_CONFIG', { ...base, OBSERVABILITY_CONFIG: '{not json' }],
  ]
  await Promise.all(cases.map(async ([name, env]) => {
    const run = runMain(env)
    const exit = await run.exited
    t.equal(exit.code, 1, `${name}: exit code`)
    t.match(run.stderr(), new RegExp(`^queue-proxy: invalid configuration: ${name}: `), `${name}: stderr names it`)
  }))
})

t.test('a listener that cannot bind: exit 1 with the error on stderr', async (t) => {
  const app = await lifecycleApp(t)
  // The app's own port is taken: use it as the admin port.
  const run = runMain(knativeEnv(app.port, { SLUICE_ADMIN_PORT: String(app.port) }))
  t.teardown(() => ensureStopped(run))
  const exit = await run.exited
  t.equal(exit.code, 1)
  t.match(run.stderr(), /EADDRINUSE/)
})

t.test('listeners: serving, admin, metrics always; user metrics and profiling only when enabled', async (t) => {
  const app = await lifecycleApp(t)
  const get = (port: number, path: string) => request(`http://127.0.0.1:${port}${path}`)

  t.test('default: no user-metrics or profiling listener', async (t) => {
    const profilingPort = await freePort()
    const qp = await spawnWith(t, app.port, { PROFILING_PORT: String(profilingPort) })
    t.equal((await get(qp.ports.serving, '/x')).body, 'app /x')
    t.equal((await get(qp.ports.admin, '/')).status, 404)
    t.equal((await get(qp.ports.metrics, '/metrics')).status, 200)
    await t.rejects(get(qp.ports.userMetrics, '/metrics'), { code: 'ECONNREFUSED' })
    await t.rejects(get(profilingPort, '/debug/pprof/'), { code: 'ECONNREFUSED' })
    await t.rejects(get(qp.ports.tls, '/'), { code: 'ECONNREFUSED' }, 'no TLS without certificates')
  })

  t.test('SERVING_REQUEST_METRICS_BACKEND=prometheus and ENABLE_PROFILING=true open both', async (t) => {
    const profilingPort = await freePort()
    const qp = await spawnWith(t, app.port, { SERVING_REQUEST_METRICS_BACKEND: 'prometheus', ENABLE_PROFILING: 'true', PROFILING_PORT: String(profilingPort) })
    await request(`${qp.url}/counted`)
    t.match((await get(qp.ports.userMetrics, '/metrics')).body, /revision_request_count\{[^}]*response_code="200"[^}]*\} 1/)
    const index = await get(profilingPort, '/debug/pprof/')
    t.equal(index.status, 200)
    t.match(index.body, /profile/)
    const cmdline = await get(profilingPort, '/debug/pprof/cmdline')
    t.match(cmdline.body, /main\.js/)
    t.equal((await get(profilingPort, '/debug/pprof/nothing')).status, 404)
    const profile = await get(profilingPort, '/debug/pprof/profile?seconds=1')
    t.equal(profile.status, 200)
    t.ok(Array.isArray(JSON.parse(profile.body).nodes), 'a V8 CPU profile')
  })
})

t.test('SIGTERM: probes 503 at once, requests still served, in-flight request completes, exit 0', async (t) => {
  const app = await lifecycleApp(t)
  const qp = await spawnWith(t, app.port, { SLUICE_DRAIN_QUIET_PERIOD: '500ms', SERVING_LOGGING_LEVEL: 'info' })
  const ready = await request(`${qp.url}/`, { headers: KUBELET })
  t.equal(ready.status, 200)
  t.equal(ready.body, 'queue')

  // Settles either way, so a failure is reported with the process's output rather than as an unhandled rejection.
  const slow = request(`${qp.url}/slow`).then((r) => ({ ...r, at: performance.now() }), (err: Error) => ({ status: 0, body: String(err), at: performance.now() }))
  await sleep(100)
  const signalledAt = performance.now()
  qp.signal('SIGTERM')
  const probe = await probeUntilFailing(qp.url)
  t.equal(probe.status, 503)
  t.equal(probe.body, 'shutting down\n')
  t.ok(performance.now() - signalledAt < 500, 'probes fail right after the signal')

  const during = await request(`${qp.url}/during-drain`)
  t.equal(during.status, 200, 'a normal request is still proxied while draining')
  t.equal(during.body, 'app /during-drain')

  // After the quiet period the listener is closed; the slow request is still running.
  await sleep(700)
  await t.rejects(request(`${qp.url}/late`), { code: 'ECONNREFUSED' }, 'no new connections after the quiet period')

  const r = await slow
  t.equal(r.status, 200)
  t.equal(r.body, 'slow done')
  const exit = await Promise.race([qp.exited, sleep(3000).then(() => null)])
  if (exit === null || exit.code !== 0 || r.status !== 200) t.comment(`exit ${JSON.stringify(exit)}\nstdout: ${qp.stdout()}\nstderr: ${qp.stderr()}`)
  if (exit === null) return t.fail('the process did not exit')
  t.equal(exit.code, 0)
  t.ok(exit.at >= r.at - 5, 'the process exited only after the in-flight request completed')
  t.ok(exit.at - r.at < 1000, `exited ${(exit.at - r.at).toFixed(0)} ms after the last request`)
})

t.test('SIGTERM: an open websocket may finish its conversation, then the process exits 0', async (t) => {
  const app = await lifecycleApp(t)
  const qp = await spawnWith(t, app.port, { SLUICE_DRAIN_QUIET_PERIOD: '200ms', SLUICE_DRAIN_WEBSOCKET_TIMEOUT: '10s' })
  const ws = await openWebsocket(qp.ports.serving)
  t.match(ws.received(), /^HTTP\/1\.1 101 /)
  qp.signal('SIGTERM')
  await sleep(500) // past the quiet period: the listeners are closed
  ws.sock.write('ping')
  await ws.until('echo:ping')
  t.pass('the tunnel still carries data after the listeners closed')
  ws.sock.end()
  const closedAt = await ws.closed
  const exit = await qp.exited
  t.equal(exit.code, 0)
  t.ok(exit.at - closedAt < 1000, `exited ${(exit.at - closedAt).toFixed(0)} ms after the websocket closed`)
})

t.test('SIGTERM: a websocket still open after SLUICE_DRAIN_WEBSOCKET_TIMEOUT is cut, then exit 0', async (t) => {
  const app = await lifecycleApp(t)
  const qp = await spawnWith(t, app.port, { SLUICE_DRAIN_QUIET_PERIOD: '200ms', SLUICE_DRAIN_WEBSOCKET_TIMEOUT: '700ms' })
  const ws = await openWebsocket(qp.ports.serving)
  const signalledAt = performance.now()
  qp.signal('SIGTERM')
  const closedAt = await ws.closed
  const ms = closedAt - signalledAt
  t.ok(ms >= 850, `cut ${ms.toFixed(0)} ms after SIGTERM (quiet 200 + timeout 700)`)
  t.ok(ms < 2000, `cut ${ms.toFixed(0)} ms after SIGTERM`)
  t.equal((await qp.exited).code, 0)
})

t.test('a second SIGTERM exits 1 at once', async (t) => {
  const app = await lifecycleApp(t)
  const qp = await spawnWith(t, app.port, { SLUICE_DRAIN_QUIET_PERIOD: '30s' })
  qp.signal('SIGTERM')
  await probeUntilFailing(qp.url)
  const secondAt = performance.now()
  qp.signal('SIGTERM')
  const exit = await qp.exited
  t.equal(exit.code, 1)
  t.ok(exit.at - secondAt < 500, `exited ${(exit.at - secondAt).toFixed(0)} ms after the second signal`)
})

t.test('SIGINT drains like SIGTERM and exits 0', async (t) => {
  const app = await lifecycleApp(t)
  const qp = await spawnWith(t, app.port, { SLUICE_DRAIN_QUIET_PERIOD: '100ms' })
  qp.signal('SIGINT')
  const probe = await probeUntilFailing(qp.url)
  t.equal(probe.status, 503)
  t.equal((await qp.exited).code, 0)
})

t.test('request log (SERVING_ENABLE_REQUEST_LOG): one stdout line per request', async (t) => {
  const template = '{{.Request.Method}} {{.Request.RequestURI}} {{.Response.Code}} {{.Revision.Name}} probe={{index .Request.Header "K-Network-Probe"}}'
  const send = async (qp: QueueProxyProcess) => {
    await request(`${qp.url}/a?x=1`)
    await request(`${qp.url}/b`, { method: 'POST', body: 'hi' })
    await request(`${qp.url}/`, { headers: KUBELET })
    await request(`${qp.url}/`, { headers: { 'K-Network-Probe': 'probe', 'K-Network-Hash': 'h' } })
    await request(`${qp.url}/proxied-probe`, { headers: { 'K-Network-Probe': 'queue' } })
  }
  const lines = (qp: QueueProxyProcess) => qp.stdout().split('\n').filter((l) => l !== '' && !l.startsWith('{'))

  t.test('probes are skipped by default', async (t) => {
    const app = await lifecycleApp(t)
    const qp = await spawnWith(t, app.port, { SLUICE_DRAIN_QUIET_PERIOD: '50ms', SERVING_ENABLE_REQUEST_LOG: 'true', SERVING_REQUEST_LOG_TEMPLATE: template })
    await send(qp)
    // Lines should be written as requests complete, not only at exit.
    const deadline = Date.now() + 1000
    while (lines(qp).length < 2 && Date.now() < deadline) await sleep(20)
    t.equal(lines(qp).length, 2, 'written while running')
    qp.signal('SIGTERM')
    t.equal((await qp.exited).code, 0)
    t.same(lines(qp), ['GET /a?x=1 200 hello-00001 probe=[]', 'POST /b 200 hello-00001 probe=[]'])
  })

  t.test('SERVING_ENABLE_PROBE_REQUEST_LOG=true logs probes too', async (t) => {
    const app = await lifecycleApp(t)
    const qp = await spawnWith(t, app.port, {
      SLUICE_DRAIN_QUIET_PERIOD: '50ms', SERVING_ENABLE_REQUEST_LOG: 'true', SERVING_REQUEST_LOG_TEMPLATE: template, SERVING_ENABLE_PROBE_REQUEST_LOG: 'true',
    })
    await send(qp)
    qp.signal('SIGTERM')
    t.equal((await qp.exited).code, 0)
    t.same(lines(qp), [
      'GET /a?x=1 200 hello-00001 probe=[]',
      'POST /b 200 hello-00001 probe=[]',
      'GET / 200 hello-00001 probe=[queue]',
      'GET / 200 hello-00001 probe=[probe]',
      'GET /proxied-probe 200 hello-00001 probe=[queue]',
    ])
  })

  t.test('an empty template disables the log', async (t) => {
    const app = await lifecycleApp(t)
    const qp = await spawnWith(t, app.port, { SLUICE_DRAIN_QUIET_PERIOD: '50ms', SERVING_ENABLE_REQUEST_LOG: 'true', SERVING_REQUEST_LOG_TEMPLATE: '' })
    await send(qp)
    qp.signal('SIGTERM')
    t.equal((await qp.exited).code, 0)
    t.same(lines(qp), [])
  })
})
