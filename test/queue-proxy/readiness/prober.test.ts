import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttp2Server, type ServerHttp2Stream } from 'node:http2'
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { ProbeSpec } from '@sluice/queue-proxy/readiness/probe-spec'
import { ProbeTiming, ReadinessProber, type ProberOptions } from '@sluice/queue-proxy/readiness/prober'

async function listen(t: Test, server: Server, port = 0): Promise<number> {
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    ;(server as Server & { closeAllConnections?: () => void }).closeAllConnections?.()
    server.close()
  })
  return (server.address() as AddressInfo).port
}

/** HTTP server answering with `handler`; `hits` counts requests. */
async function http(t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const state = { hits: 0 }
  const srv = createServer((req, res) => {
    state.hits++
    handler(req, res)
  })
  const port = await listen(t, srv)
  return { port, state }
}

async function closedPort(): Promise<number> {
  const srv = createNetServer().listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address() as AddressInfo
  srv.close()
  await once(srv, 'close')
  return port
}

function spec(handler: Partial<ProbeSpec>, timing: Partial<ProbeSpec> = {}): ProbeSpec {
  return {
    initialDelaySeconds: 0,
    periodSeconds: 0,
    timeoutSeconds: 0,
    successThreshold: 1,
    failureThreshold: 0,
    ...handler,
    ...timing,
  }
}

const httpGet = (port: number, path = '/') => ({ httpGet: { path, port, host: '127.0.0.1', scheme: 'HTTP' as const, httpHeaders: [] } })
const tcpSocket = (port: number) => ({ tcpSocket: { port, host: '127.0.0.1' } })

function prober(specs: ProbeSpec[] | undefined, opts: Partial<ProberOptions> = {}) {
  const lines: string[] = []
  const p = new ReadinessProber(specs, { log: (l) => lines.push(l), ...opts })
  return { p, lines }
}

t.test('defaults are Knative\'s: 50 ms interval, 100 ms attempts, 10 s poll', async (t) => {
  t.same(ProbeTiming, { retryIntervalMs: 50, aggressiveAttemptTimeoutMs: 100, pollTimeoutMs: 10_000 })
})

t.test('no probe configured (undefined specs) is always ready', async (t) => {
  const { p, lines } = prober(undefined)
  t.equal(await p.probe(), true)
  t.same(lines, [])
})

t.test('an empty probe array is ready (nothing to fail)', async (t) => {
  const { p } = prober([])
  t.equal(await p.probe(), true)
})

t.test('exec probe: logs "exec probe not supported" and is not ready', async (t) => {
  const { p, lines } = prober([spec({ exec: { command: ['true'] } })])
  t.equal(await p.probe(), false)
  t.same(lines, ['exec probe not supported'])
})

t.test('no handler: logs "no probe found" and is not ready', async (t) => {
  const { p, lines } = prober([spec({})])
  t.equal(await p.probe(), false)
  t.same(lines, ['no probe found'])
})

t.test('handler precedence: httpGet wins over tcpSocket, tcpSocket over grpc', async (t) => {
  const closed = await closedPort()
  const { port, state } = await http(t, (_q, r) => r.end())
  const a = prober([spec({ ...httpGet(port), ...tcpSocket(closed) }, { periodSeconds: 1 })])
  t.equal(await a.p.probe(), true)
  t.equal(state.hits, 1)
  const b = prober([spec({ ...tcpSocket(port), grpc: { port: closed, service: '' } }, { periodSeconds: 1 })])
  t.equal(await b.p.probe(), true, 'tcp to the open port was used, not grpc to the closed one')
})

t.test('aggressive mode: passes once the user container starts listening a bit later', async (t) => {
  const port = await closedPort()
  const { p, lines } = prober([spec(tcpSocket(port))])
  const started = Date.now()
  const result = p.probe()
  await sleep(200)
  await listen(t, createNetServer((s) => s.destroy()), port)
  t.equal(await result, true)
  t.ok(Date.now() - started < 1000, 'noticed within a few polls')
  t.same(lines, [], 'failures before success are not logged')
})

t.test('aggressive mode: polls every 50 ms until the poll timeout, then logs one line and fails', async (t) => {
  const port = await closedPort()
  const { p, lines } = prober([spec(tcpSocket(port))], { pollTimeoutMs: 500 })
  const started = Date.now()
  t.equal(await p.probe(), false)
  const took = Date.now() - started
  t.ok(took >= 450 && took < 2000, `gave up at the poll timeout (${took} ms)`)
  t.equal(lines.length, 1)
  const m = /^aggressive probe error \(failed (\d+) times\): dial tcp 127\.0\.0\.1:\d+: connect: connection refused$/.exec(lines[0]!)
  t.ok(m, lines[0])
  const n = Number(m![1])
  // At most one attempt per 50 ms tick (11 = immediate + 10 ticks); load may make it fewer.
  t.ok(n >= 3 && n <= 11, `about one attempt per 50 ms (${n} attempts in 500 ms)`)
})

t.test('aggressive mode: each attempt times out after 100 ms', async (t) => {
  const { port, state } = await http(t, (_q, r) => setTimeout(() => r.end(), 300))
  const { p, lines } = prober([spec(httpGet(port))], { pollTimeoutMs: 350 })
  // A 300 ms answer would pass with any attempt timeout above 300 ms.
  t.equal(await p.probe(), false, lines[0])
  t.ok(state.hits >= 2, `attempts were retried (${state.hits})`)
  t.match(lines[0], /^aggressive probe error \(failed \d+ times\): Get ".*": context deadline exceeded/)
})

t.test('aggressive mode: successThreshold counts consecutive successes, a failure resets the count', async (t) => {
  const script = [200, 200, 500, 200, 200, 200]
  const { port, state } = await http(t, (_q, r) => {
    r.statusCode = script[state.hits - 1] ?? 200
    r.end()
  })
  const { p, lines } = prober([spec(httpGet(port), { successThreshold: 3 })], { retryIntervalMs: 5 })
  t.equal(await p.probe(), true)
  t.equal(state.hits, 6, '2 successes, a reset, then 3 in a row')
  t.same(lines, [])
})

t.test('aggressive mode: the success count persists across calls, and resets on failure', async (t) => {
  let code = 200
  const { port, state } = await http(t, (_q, r) => {
    r.statusCode = code
    r.end()
  })
  const { p, lines } = prober([spec(httpGet(port), { successThreshold: 3 })], { retryIntervalMs: 5, pollTimeoutMs: 100 })
  t.equal(await p.probe(), true)
  t.equal(state.hits, 3, 'first call needs successThreshold successes')
  t.equal(await p.probe(), true)
  t.equal(state.hits, 4, 'a later call passes on its first success')

  code = 500
  t.equal(await p.probe(), false)
  t.match(lines[0], /^aggressive probe error \(failed \d+ times\): HTTP probe did not respond Ready, got status code: 500$/)
  code = 200
  const before = state.hits
  t.equal(await p.probe(), true)
  t.equal(state.hits - before, 3, 'after a failure the threshold must be met again')
})

t.test('standard mode (periodSeconds > 0): one attempt, thresholds not applied', async (t) => {
  const { port, state } = await http(t, (_q, r) => r.end())
  const { p } = prober([spec(httpGet(port), { periodSeconds: 10, successThreshold: 3 })])
  t.equal(await p.probe(), true)
  t.equal(state.hits, 1)
})

t.test('standard mode: a failure is one attempt and one logged line', async (t) => {
  const { port, state } = await http(t, (_q, r) => {
    r.statusCode = 500
    r.end()
  })
  const { p, lines } = prober([spec(httpGet(port), { periodSeconds: 10 })])
  t.equal(await p.probe(), false)
  t.equal(state.hits, 1)
  t.same(lines, ['HTTP probe did not respond Ready, got status code: 500'])
})

t.test('standard mode: the attempt timeout is timeoutSeconds, at least 1 s', async (t) => {
  const { port } = await http(t, (_q, r) => setTimeout(() => r.end(), 300))
  const { p, lines } = prober([spec(httpGet(port), { periodSeconds: 10, timeoutSeconds: 0 })])
  t.equal(await p.probe(), true, 'a 300 ms answer fits in the 1 s minimum')
  t.same(lines, [])
})

t.test('single-flight: concurrent calls share one execution and its result', async (t) => {
  const { port, state } = await http(t, (_q, r) => setTimeout(() => r.end(), 100))
  const { p } = prober([spec(httpGet(port), { periodSeconds: 10 })])
  const results = await Promise.all([p.probe(), p.probe(), p.probe(), p.probe(), p.probe()])
  t.same(results, [true, true, true, true, true])
  t.equal(state.hits, 1, 'five callers, one request to the user container')
  t.equal(await p.probe(), true)
  t.equal(state.hits, 2, 'a call after the shared run finished probes again')
})

t.test('single-flight: a shared failure is reported to every caller and logged once', async (t) => {
  const { port, state } = await http(t, (_q, r) => {
    r.statusCode = 503
    setTimeout(() => r.end(), 50)
  })
  const { p, lines } = prober([spec(httpGet(port), { periodSeconds: 10 })])
  t.same(await Promise.all([p.probe(), p.probe(), p.probe()]), [false, false, false])
  t.equal(state.hits, 1)
  t.equal(lines.length, 1)
})

t.test('multiple probes run in parallel and all must pass', async (t) => {
  // Each server answers only once both were hit: sequential probing would time out.
  const arrived = { a: false, b: false }
  const waiters: (() => void)[] = []
  const gate = (me: 'a' | 'b') => (_q: IncomingMessage, r: ServerResponse) => {
    arrived[me] = true
    waiters.push(() => r.end())
    if (arrived.a && arrived.b) for (const w of waiters.splice(0)) w()
  }
  const a = await http(t, gate('a'))
  const b = await http(t, gate('b'))
  const { p, lines } = prober([spec(httpGet(a.port), { periodSeconds: 1, timeoutSeconds: 1 }), spec(httpGet(b.port), { periodSeconds: 1, timeoutSeconds: 1 })])
  t.equal(await p.probe(), true)
  t.same(lines, [])
})

t.test('multiple probes: one failing probe makes the whole probe fail, and its error is logged', async (t) => {
  const ok = await http(t, (_q, r) => r.end())
  const closed = await closedPort()
  const { p, lines } = prober([spec(httpGet(ok.port), { periodSeconds: 1 }), spec(tcpSocket(closed), { periodSeconds: 1 })])
  t.equal(await p.probe(), false)
  t.equal(ok.state.hits, 1, 'the passing probe still ran')
  t.same(lines, [`dial tcp 127.0.0.1:${closed}: connect: connection refused`])
})

t.test('multiple probes keep separate success counters', async (t) => {
  const a = await http(t, (_q, r) => r.end())
  const b = await http(t, (_q, r) => r.end())
  const { p } = prober([spec(httpGet(a.port), { successThreshold: 1 }), spec(httpGet(b.port), { successThreshold: 3 })], { retryIntervalMs: 5 })
  t.equal(await p.probe(), true)
  t.equal(a.state.hits, 1)
  t.equal(b.state.hits, 3)
})

t.test('gRPC probes run through the prober', async (t) => {
  const srv = createHttp2Server()
  srv.on('stream', (stream: ServerHttp2Stream) => {
    stream.resume()
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, 1])) // HealthCheckResponse{status: SERVING}
    })
  })
  const port = await listen(t, srv as unknown as Server)
  const { p, lines } = prober([spec({ grpc: { port, service: '' } })])
  t.equal(await p.probe(), true)
  t.same(lines, [])
})

t.test('a multi-line error from the user container is logged as one line', async (t) => {
  const srv = createHttp2Server()
  srv.on('stream', (stream: ServerHttp2Stream) => {
    stream.resume()
    stream.on('end', () => {
      const message = encodeURIComponent('overloaded\n  try later')
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': message }, { endStream: true })
    })
  })
  const port = await listen(t, srv as unknown as Server)
  const { p, lines } = prober([spec({ grpc: { port, service: '' } }, { periodSeconds: 1 })])
  t.equal(await p.probe(), false)
  t.same(lines, ['health rpc probe failed: rpc error: code = Unavailable desc = overloaded try later'])
})

t.test('http2AutoDetect reaches h2c-only user containers', async (t) => {
  const srv = createHttp2Server((_q, r) => r.end())
  const port = await listen(t, srv as unknown as Server)
  const on = prober([spec(httpGet(port), { periodSeconds: 1 })], { http2AutoDetect: true })
  t.equal(await on.p.probe(), true)
  const off = prober([spec(httpGet(port), { periodSeconds: 1 })])
  t.equal(await off.p.probe(), false)
})
