// Upgrade requests through the activator that the pod does not switch
// (security review, item 2): the activator sends nothing but the request (and
// its Content-Length body) before the pod's 101 for the requested protocol.
// Any other answer is relayed as one ordinary response and the connection goes
// back to the HTTP server: a later request on it is identified, counted and
// throttled like any other, never sent to the pod raw. Reporter, throttler slot and active count end in
// every path. The "pod" here is a scripted server, so the activator alone is
// tested; the last test goes through a real queue-proxy.
import t, { type Test } from 'tap'
import http from 'node:http'
import { waitFor } from '../../helpers/request-path.ts'
import { RawClient, responses, second, startUpgradeApp, upgradeRequest } from '../../helpers/upgrade.ts'
import { revisionInfo, startActivator, startPod, type RunningActivator } from '../../helpers/activator.ts'

t.jobs = 3

const REV = 'up-00001'
const route = { 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': REV }

/** The reporter's in-flight count for REV (0 once its entry is gone). */
function reported(act: RunningActivator): number {
  const entries = (act.activator.ctx.reporter as unknown as { entries: Map<string, { stats: { inFlight: number } }> }).entries
  return entries.get(`default/${REV}`)?.stats.inFlight ?? 0
}

/** Nothing in flight: active count, throttler slot (cc=1) and reporter. */
function settled(act: RunningActivator): Promise<boolean> {
  const rt = act.activator.ctx.throttler.get(`default/${REV}`)
  return waitFor(() => act.activator.ctx.active === 0 && (rt?.inFlight ?? 0) === 0 && reported(act) === 0)
}

/** A plain request through the activator; with cc=1 it runs only if the slot was released. */
function plain(act: RunningActivator): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(`${act.url}/plain`, { agent: false, headers: route }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => { body += d }).on('end', () => resolve(`${res.statusCode} ${body}`))
    }).on('error', reject)
  })
}

async function setup(t: Test) {
  const pod = await startUpgradeApp()
  const act = await startActivator({ env: { SLUICE_MAX_HEADER_BYTES: '4096' }, revisions: [revisionInfo(REV, { containerConcurrency: 1 })] })
  t.teardown(async () => { await act.stop(); await pod.stop() })
  act.source.setEndpoints('default', REV, { ready: [`127.0.0.1:${pod.port}`], notReady: [] })
  const rt = act.activator.ctx.throttler.get(`default/${REV}`)!
  t.ok(await waitFor(() => rt.healthyDests.length === 1), 'pod probed healthy')
  return { pod, act, port: act.ports.http }
}

t.test('a 403 from the pod, then GET /second on the same connection: /second goes through the activator as a request of its own', async (t) => {
  const { pod, act, port } = await setup(t)
  const c = new RawClient(port)
  c.write(upgradeRequest('/refuse', route))
  t.ok(await c.received('forbidden\n'), 'the 403 arrived')
  t.match(c.text, /^HTTP\/1\.1 403 Forbidden\r\n/)
  t.notMatch(c.text, /\r\nconnection: close\r\n/i, 'the connection is kept')
  t.ok(await waitFor(() => pod.upgrades[0]?.closed === true), 'the pod\'s upgrade connection was closed')
  t.equal(pod.upgrades[0]!.headers['x-forwarded-for'], '127.0.0.1', 'the upgrade itself went with the activator headers')
  t.ok(await settled(act), 'active, throttler slot and reporter released')
  c.write(second(route))
  t.ok(await c.received('\r\n\r\nqueue'), '/second answered on the same connection')
  t.equal(responses(c.text), 2)
  t.equal(pod.upgrades[0]!.after, '', 'nothing after the upgrade head reached the pod raw')
  t.same(pod.requests.map((r) => [r.url, r.headers['x-forwarded-for']]), [['/second', '127.0.0.1']], '/second with the activator headers')
  t.ok(await settled(act))
  t.equal(await plain(act), '200 queue', 'the next request gets the slot')
  c.destroy()
})

t.test('GET /second pipelined with the upgrade, and after a Content-Length body: each is a request of its own; only the body reaches the upgrade', async (t) => {
  const { pod, act, port } = await setup(t)
  const c = new RawClient(port)
  c.write(upgradeRequest('/refuse', route) + second(route))
  t.ok(await c.received('\r\n\r\nqueue'))
  t.ok(c.text.includes('forbidden\nHTTP/1.1 200 OK\r\n'), 'the 403, then the 200 for /second')
  const b = new RawClient(port)
  b.write(upgradeRequest('/refuse-body', { ...route, 'Content-Length': '5' }) + 'hello' + second(route))
  t.ok(await b.received('\r\n\r\nqueue'))
  t.ok(b.text.includes('\r\n\r\ngot helloHTTP/1.1 200 OK\r\n'), 'the pod answered after reading the request body, then /second')
  t.ok(await waitFor(() => pod.upgrades.length === 2 && pod.upgrades.every((u) => u.closed)))
  t.same(pod.upgrades.map((u) => u.after), ['', 'hello'])
  t.same(pod.requests.map((r) => r.url), ['/second', '/second'])
  t.ok(await settled(act))
  c.destroy()
  b.destroy()
})

t.test('a body read until close ends the connection after it', async (t) => {
  const { pod, act, port } = await setup(t)
  const c = new RawClient(port)
  c.write(upgradeRequest('/refuse-until-close', route) + second(route))
  t.ok(await c.closedWithin())
  t.match(c.text, /\r\nconnection: close\r\n/i)
  t.ok(c.text.endsWith('\r\n\r\nforbidden\n'), 'one response, whole')
  t.same(pod.requests, [])
  t.ok(await settled(act))
})

t.test('bytes sent before the pod\'s 101 are held back, then tunnelled; the tunnel holds the slot until it closes', async (t) => {
  const { pod, act, port } = await setup(t)
  const c = new RawClient(port)
  c.write(upgradeRequest('/late', route) + 'early')
  t.ok(await c.received('echo:early'))
  t.equal(pod.upgrades[0]!.beforeAnswer, '', 'nothing reached the pod before its 101')
  c.write('ping')
  t.ok(await c.received('echo:ping'))
  t.equal(act.activator.ctx.active, 1)
  t.equal(reported(act), 1)
  c.destroy()
  t.ok(await settled(act), 'released when the client leaves')
})

t.test('502s before a switch: a 101 to another protocol, a head cut short, a head beyond the limit', async (t) => {
  const { pod, act, port } = await setup(t)
  const cases: Array<[string, string]> = [
    ['/wrong-protocol', 'backend tried to switch protocol "h2c" when "websocket" was requested\n'],
    ['/half-head', 'unexpected EOF\n'],
    ['/huge-head', 'net/http: server response headers exceeded 4096 bytes; aborted\n'],
  ]
  for (const [path, body] of cases) {
    const c = new RawClient(port)
    c.write(upgradeRequest(path, route) + 'early')
    t.ok(await c.closedWithin(), `${path}: closed`)
    t.match(c.text, /^HTTP\/1\.1 502 Bad Gateway\r\n/, path)
    t.ok(c.text.endsWith(`\r\n\r\n${body}`), `${path}: ${JSON.stringify(c.text.slice(c.text.indexOf('\r\n\r\n') + 4))}`)
  }
  t.ok(await waitFor(() => pod.upgrades.length === 3 && pod.upgrades.every((u) => u.closed)))
  t.same(pod.upgrades.map((u) => u.after), ['', '', ''], 'the client bytes never reached the pod')
  t.ok(await settled(act))
  const rt = act.activator.ctx.throttler.get(`default/${REV}`)!
  t.equal(rt.healthyDests.length, 1, 'a pod that answered is not dropped')
})

t.test('a client leaving before the pod answers is accounted out and the pod connection closed', async (t) => {
  const { pod, act, port } = await setup(t)
  const c = new RawClient(port)
  c.write(upgradeRequest('/never', route))
  t.ok(await waitFor(() => pod.upgrades.length === 1))
  t.equal(act.activator.ctx.active, 1)
  c.socket.end()
  t.ok(await settled(act), 'nothing left in flight')
  t.ok(await waitFor(() => pod.upgrades[0]!.closed), 'the pod connection was closed')
  t.equal(await plain(act), '200 queue', 'the slot was released')
})

t.test('through a real queue-proxy: the app\'s 403 reaches the client, then /second goes through both proxies', async (t) => {
  const app = await startUpgradeApp()
  const pod = await startPod(app.port)
  const act = await startActivator({ revisions: [revisionInfo(REV)] })
  t.teardown(async () => { await act.stop(); await pod.stop(); await app.stop() })
  act.source.setEndpoints('default', REV, { ready: [pod.dest], notReady: [] })
  const c = new RawClient(act.ports.http)
  c.write(upgradeRequest('/refuse', route))
  t.ok(await c.received('forbidden\n'))
  c.write(second(route))
  t.ok(await c.received('\r\n\r\nqueue'))
  t.ok(c.text.startsWith('HTTP/1.1 403 Forbidden\r\n') && c.text.includes('\r\n\r\nforbidden\nHTTP/1.1 200 OK\r\n'))
  t.ok(await waitFor(() => app.upgrades[0]?.closed === true))
  t.equal(app.upgrades[0]!.after, '')
  t.same(app.requests.map((r) => r.url), ['/second'])
  t.ok(pod.seen.some((s) => s.url === '/second'), 'the queue-proxy proxied /second')
  t.ok(await waitFor(() => act.activator.ctx.active === 0))
  c.destroy()
})
