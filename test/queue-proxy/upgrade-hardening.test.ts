// Upgrade requests the app does not switch (security review, item 2): only a
// 101 for the requested protocol opens a raw tunnel. Any other answer is an
// ordinary response, relayed as framed; the connection then goes back to the
// HTTP server, so whatever the client sends next on it (pipelined or later) is
// proxied as a request of its own (X-Forwarded-For, counted, breaker), never
// raw. Where the response has no length, or the request body was not all
// sent, it ends with Connection: close. Interim 1xx, wrong-protocol 101s,
// broken or oversized heads, and clients leaving early all end with nothing
// left in flight.
import t, { type Test } from 'tap'
import { knativeEnv, request, startApp, startQueueProxy, close } from '../helpers/servers.ts'
import { accounting, settled, waitFor } from '../helpers/request-path.ts'
import { RawClient, responses, SECOND, startUpgradeApp, upgradeRequest } from '../helpers/upgrade.ts'

t.jobs = 4

async function setup(t: Test, env: Record<string, string> = {}) {
  const app = await startUpgradeApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { SLUICE_MAX_HEADER_BYTES: '4096', ...env }))
  t.teardown(async () => { await qp.stop(); await app.stop() })
  return { app, qp, port: qp.ports.serving }
}

t.test('a 403 to an upgrade, then GET /second on the same connection: /second is proxied as a request, with the proxy\'s headers', async (t) => {
  const { app, qp, port } = await setup(t)
  const c = new RawClient(port)
  c.write(upgradeRequest('/refuse'))
  t.ok(await c.received('forbidden\n'), 'the 403 arrived')
  t.match(c.text, /^HTTP\/1\.1 403 Forbidden\r\n/)
  t.notMatch(c.text, /\r\nconnection: close\r\n/i, 'the connection is kept')
  t.ok(await waitFor(() => app.upgrades[0]?.closed === true), 'the app\'s upgrade connection was closed')
  c.write(SECOND)
  t.ok(await c.received('\r\n\r\nqueue'), 'the second response arrived on the same connection')
  t.equal(responses(c.text), 2)
  t.notOk(c.closed, 'still open')
  t.equal(app.upgrades[0]!.after, '', 'nothing after the upgrade head reached the app raw')
  t.same(app.requests.map((r) => [r.url, r.headers['x-forwarded-for']]), [['/second', '127.0.0.1']], '/second went through the proxy')
  t.ok(await settled(qp), 'nothing left in flight (stats, active)')
  c.destroy()
})

t.test('GET /second pipelined with the upgrade, and after a Content-Length body: proxied in turn; only the body reaches the upgrade', async (t) => {
  const { app, qp, port } = await setup(t)
  const c = new RawClient(port)
  c.write(upgradeRequest('/refuse') + SECOND)
  t.ok(await c.received('\r\n\r\nqueue'))
  t.ok(c.text.startsWith('HTTP/1.1 403 Forbidden\r\n'), 'the 403 first')
  t.ok(c.text.includes('forbidden\nHTTP/1.1 200 OK\r\n'), 'then the 200 for /second')

  const b = new RawClient(port)
  b.write(upgradeRequest('/refuse-body', { 'Content-Length': '5' }) + 'hello' + SECOND)
  t.ok(await b.received('\r\n\r\nqueue'))
  t.ok(b.text.includes('\r\n\r\ngot helloHTTP/1.1 200 OK\r\n'), 'the app answered after reading the request body, then /second')
  t.ok(await waitFor(() => app.upgrades.length === 2 && app.upgrades.every((u) => u.closed)))
  t.same(app.upgrades.map((u) => u.after), ['', 'hello'], 'the body, and nothing after it')
  t.same(app.requests.map((r) => [r.url, r.headers['x-forwarded-for']]), [['/second', '127.0.0.1'], ['/second', '127.0.0.1']])
  t.ok(await settled(qp))
  c.destroy()
  b.destroy()
})

t.test('an app without websocket support serves the upgrade as a plain request: /second after it is proxied too', async (t) => {
  const seen: Array<{ url: string; xff: string | undefined }> = []
  const app = await startApp((req, res) => {
    seen.push({ url: req.url ?? '', xff: req.headers['x-forwarded-for'] as string | undefined })
    res.writeHead(req.url === '/ws' ? 403 : 200, { 'content-type': 'text/plain' })
    res.end(req.url === '/ws' ? 'forbidden\n' : 'ok')
  })
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await close(app.server) })
  const c = new RawClient(qp.ports.serving)
  c.write(upgradeRequest('/ws'))
  t.ok(await c.received('forbidden\n'))
  c.write(SECOND)
  t.ok(await c.received('\r\n2\r\nok\r\n0\r\n\r\n'), 'the second response (chunked), on the same connection')
  t.equal(responses(c.text), 2)
  t.same(seen, [{ url: '/ws', xff: '127.0.0.1' }, { url: '/second', xff: '127.0.0.1' }], 'both with X-Forwarded-For')
  t.ok(await settled(qp))
  c.destroy()
})

t.test('a chunked 403 is relayed whole (chunk extensions, trailer), and the connection serves on', async (t) => {
  const { app, qp, port } = await setup(t)
  const c = new RawClient(port)
  c.write(upgradeRequest('/refuse-chunked'))
  t.ok(await c.received('X-Why: policy\r\n\r\n'))
  t.match(c.text, /^HTTP\/1\.1 403 Forbidden\r\n/)
  t.match(c.text, /\r\nTransfer-Encoding: chunked\r\n/)
  t.ok(c.text.endsWith('\r\n\r\n5\r\nforbi\r\n5;ext=1\r\ndden\n\r\n0\r\nX-Why: policy\r\n\r\n'), 'body and trailer intact, nothing after')
  c.write(SECOND)
  t.ok(await c.received('\r\n\r\nqueue'))
  t.ok(await waitFor(() => app.upgrades[0]?.closed === true))
  t.ok(await settled(qp))
  c.destroy()
})

t.test('Connection: close where the next request cannot be found: a body read until close, an unsent request body, a client asking to close', async (t) => {
  const { app, qp, port } = await setup(t)
  const cases: Array<[string, Record<string, string>, string]> = [
    ['/refuse-until-close', {}, 'forbidden\n'],
    ['/refuse', { 'Content-Length': '5' }, 'forbidden\n'],
    ['/refuse', { Connection: 'Upgrade, close' }, 'forbidden\n'],
  ]
  for (const [path, extra, body] of cases) {
    const c = new RawClient(port)
    c.write(upgradeRequest(path, extra))
    t.ok(await c.closedWithin(), `${path} ${JSON.stringify(extra)}: closed`)
    t.match(c.text, /^HTTP\/1\.1 403 Forbidden\r\n/)
    t.match(c.text, /\r\nconnection: close\r\n/i)
    t.ok(c.text.endsWith(`\r\n\r\n${body}`), 'the body, whole')
  }
  t.same(app.requests, [], 'nothing else reached the app')
  t.ok(await settled(qp))
})

t.test('100 Continue, then 101: both reach the client and the tunnel carries data both ways', async (t) => {
  const { qp, port } = await setup(t)
  const c = new RawClient(port)
  c.write(upgradeRequest('/continue'))
  t.ok(await c.received('Upgrade: websocket\r\n\r\n'))
  t.ok(c.text.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n'))
  c.write('ping')
  t.ok(await c.received('echo:ping'))
  t.same(accounting(qp), { active: 1, stats: 1, running: 0, waiting: 0 }, 'the open tunnel is in flight')
  c.destroy()
  t.ok(await settled(qp), 'released when the client leaves')
})

t.test('bytes the client sends before the 101 are held back, then delivered after it', async (t) => {
  const { app, qp, port } = await setup(t)
  const c = new RawClient(port)
  c.write(upgradeRequest('/late') + 'early')
  t.ok(await c.received('echo:early'), 'delivered once switched')
  t.equal(app.upgrades[0]!.beforeAnswer, '', 'nothing reached the app before its 101')
  t.equal(app.upgrades[0]!.after, 'early')
  c.destroy()
  t.ok(await settled(qp))
})

t.test('Go\'s 502s before a switch: a 101 to another protocol, a head cut short, a head beyond the limit', async (t) => {
  const { app, qp, port } = await setup(t)
  const cases: Array<[string, string]> = [
    ['/wrong-protocol', 'backend tried to switch protocol "h2c" when "websocket" was requested\n'],
    ['/half-head', 'unexpected EOF\n'],
    ['/huge-head', 'net/http: server response headers exceeded 4096 bytes; aborted\n'],
  ]
  for (const [path, body] of cases) {
    const c = new RawClient(port)
    c.write(upgradeRequest(path) + 'early')
    t.ok(await c.closedWithin(), `${path}: closed`)
    t.match(c.text, /^HTTP\/1\.1 502 Bad Gateway\r\n/, path)
    t.ok(c.text.endsWith(`\r\n\r\n${body}`), `${path}: ${JSON.stringify(c.text.slice(c.text.indexOf('\r\n\r\n') + 4))}`)
  }
  t.ok(await waitFor(() => app.upgrades.length === 3 && app.upgrades.every((u) => u.closed)))
  t.same(app.upgrades.map((u) => u.after), ['', '', ''], 'the client bytes never reached the app')
  t.ok(await settled(qp))
})

t.test('a client leaving before the app answers is accounted out and the app connection closed', async (t) => {
  const { app, qp, port } = await setup(t)
  const c = new RawClient(port)
  c.write(upgradeRequest('/never'))
  t.ok(await waitFor(() => app.upgrades.length === 1))
  t.equal(accounting(qp).active, 1)
  c.socket.end()
  t.ok(await settled(qp), 'nothing left in flight')
  t.ok(await waitFor(() => app.upgrades[0]!.closed), 'the app connection was closed')
})

t.test('cc=1: a refused upgrade frees the breaker slot', async (t) => {
  const { qp, port } = await setup(t, { CONTAINER_CONCURRENCY: '1' })
  const c = new RawClient(port)
  c.write(upgradeRequest('/refuse'))
  t.ok(await c.received('forbidden\n'))
  t.ok(await settled(qp), 'slot, stats and active released')
  const r = await request(`${qp.url}/plain`)
  t.equal(r.status, 200, 'the next request runs')
  c.write(SECOND)
  t.ok(await c.received('\r\n\r\nqueue'), 'and so does /second on the upgrade\'s connection, through the breaker')
  t.ok(await settled(qp))
  c.destroy()
})
