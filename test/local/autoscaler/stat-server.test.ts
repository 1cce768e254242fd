// The websocket stat server (spec §3.3) with real clients: binary
// WireStatMessages frames decoded and handed on (timestamp stamped on
// receipt when 0), text and undecodable frames dropped without closing the
// connection, kubelet probes answered 200, foreign origins refused, 1012 on
// shutdown; and the activator's own StatSender talking to it.
import t, { type Test } from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import { WebSocket } from 'ws'
import { createLogger } from '@sluice/core/logging'
import { emptyStat, encodeWireStatMessages, type Stat, type WireStatMessage } from '@sluice/core/stat-proto'
import { StatSender } from '@sluice/activator/stats/stat-sender'
import { CLOSE_SERVICE_RESTART, StatServer } from '@sluice/local/autoscaler/stat-server'

interface Got {
  namespace: string
  name: string
  stat: Stat
}

const NOW = 1_700_000_123_456 // ms; unix second 1700000123

async function startServer(t: Test): Promise<{ server: StatServer; got: Got[]; logs: string[] }> {
  const got: Got[] = []
  const logs: string[] = []
  const server = new StatServer({ onStat: (namespace, name, stat) => got.push({ namespace, name, stat }), log: (l) => logs.push(l), now: () => NOW })
  await server.start()
  t.teardown(() => server.stop())
  return { server, got, logs }
}

async function connect(t: Test, url: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, opts)
  ws.on('error', () => {}) // what matters is asserted; teardown must not throw
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  return ws
}

async function until(check: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const msg = (name: string, fields: Partial<Stat>, namespace = 'default'): WireStatMessage => ({
  namespace,
  name,
  stat: { ...emptyStat('activator-0'), ...fields },
})

function get(port: number, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/anything', headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    }).on('error', reject)
  })
}

t.test('a binary WireStatMessages frame is decoded and every stat handed on, stamped on receipt when its timestamp is 0', async (t) => {
  const { server, got } = await startServer(t)
  t.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+$/)
  const ws = await connect(t, server.url)
  ws.send(encodeWireStatMessages([
    msg('hello-00001', { averageConcurrentRequests: 1, requestCount: 1 }),
    msg('hello-00002', { averageConcurrentRequests: 2.5, requestCount: 3, timestamp: 1_600_000_000 }, 'other'),
    { namespace: 'default', name: 'no-stat', stat: undefined },
  ]))
  await until(() => got.length === 2, 'two stats')
  t.same(got[0], { namespace: 'default', name: 'hello-00001', stat: { ...emptyStat('activator-0'), averageConcurrentRequests: 1, requestCount: 1, timestamp: 1_700_000_123 } },
    'timestamp 0 becomes the receipt second')
  t.same(got[1], { namespace: 'other', name: 'hello-00002', stat: { ...emptyStat('activator-0'), averageConcurrentRequests: 2.5, requestCount: 3, timestamp: 1_600_000_000 } },
    'a set timestamp is kept')
  t.equal(server.frames, 1)
  t.equal(server.stats, 2, 'the message without a stat is skipped')
})

t.test('text frames and undecodable binary frames are dropped; the connection stays usable', async (t) => {
  const { server, got, logs } = await startServer(t)
  const ws = await connect(t, server.url)
  ws.send('{"namespace":"default"}')
  ws.send(Buffer.from([0x0a, 0x05, 0x01])) // a field longer than the frame
  ws.send(encodeWireStatMessages([msg('hello-00001', { averageConcurrentRequests: 4 })]))
  await until(() => got.length === 1, 'the good frame')
  t.equal(server.textFrames, 1)
  t.equal(server.decodeErrors, 1)
  t.equal(got[0]!.stat.averageConcurrentRequests, 4)
  t.equal(ws.readyState, WebSocket.OPEN)
  t.ok(logs.some((l) => /text frame/.test(l)), 'the text frame is logged')
  t.ok(logs.some((l) => /not WireStatMessages/.test(l)), 'the bad frame is logged')
})

t.test('an exception in the stat handler is logged, not fatal', async (t) => {
  const logs: string[] = []
  let calls = 0
  const server = new StatServer({ onStat: () => {
    calls++
    throw new Error('boom')
  }, log: (l) => logs.push(l) })
  await server.start()
  t.teardown(() => server.stop())
  const ws = await connect(t, server.url)
  ws.send(encodeWireStatMessages([msg('a', { averageConcurrentRequests: 1 }), msg('b', { averageConcurrentRequests: 1 })]))
  await until(() => calls === 2, 'both stats')
  t.ok(logs.some((l) => /default\/a failed: boom/.test(l)))
  t.equal(ws.readyState, WebSocket.OPEN)
})

t.test('kubelet probes get 200 on any path; other plain requests 400', async (t) => {
  const { server } = await startServer(t)
  t.same(await get(server.port, { 'user-agent': 'kube-probe/1.30' }), { status: 200, body: '' })
  t.same(await get(server.port, { 'k-kubelet-probe': 'queue' }), { status: 200, body: '' })
  t.equal(server.probes, 2)
  t.same(await get(server.port), { status: 400, body: 'Bad Request\n' })
})

t.test('a handshake from a foreign Origin is refused with 403; a matching one is accepted', async (t) => {
  const { server } = await startServer(t)
  const ws = new WebSocket(server.url, { origin: 'http://evil.example' })
  ws.on('error', () => {}) // terminate() during the handshake reports an abort
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage]
  t.equal(res.statusCode, 403)
  ws.terminate()
  const ok = await connect(t, server.url, { origin: `http://127.0.0.1:${server.port}` })
  t.equal(ok.readyState, WebSocket.OPEN)
  t.equal(server.connectionsAccepted, 1)
})

t.test('stop() closes every connection with 1012 (service restart)', async (t) => {
  const server = new StatServer({ onStat: () => {} })
  await server.start()
  const a = await connect(t, server.url)
  const b = await connect(t, `${server.url}/any/path`)
  await until(() => server.connections === 2, 'two connections')
  const codes = Promise.all([once(a, 'close'), once(b, 'close')])
  await server.stop()
  const [[codeA], [codeB]] = (await codes) as [[number], [number]]
  t.equal(codeA, CLOSE_SERVICE_RESTART)
  t.equal(codeB, 1012)
  await t.rejects(get(server.port), 'no longer listening')
})

t.test('the activator\'s StatSender connects and its batches arrive', async (t) => {
  const { server, got } = await startServer(t)
  const sender = new StatSender({ url: server.url, log: createLogger({ name: 'test', level: 'silent' }) })
  t.teardown(() => sender.stop())
  sender.start()
  await until(() => sender.connected, 'the sender to connect')
  t.ok(sender.send([msg('hello-00001', { averageConcurrentRequests: 1, requestCount: 1 }), msg('hello-00002', { averageConcurrentRequests: 3 })]))
  await until(() => got.length === 2, 'the batch')
  t.same(got.map((g) => [g.name, g.stat.averageConcurrentRequests]), [['hello-00001', 1], ['hello-00002', 3]])
  t.equal(server.frames, 1, 'one frame per batch')
})
