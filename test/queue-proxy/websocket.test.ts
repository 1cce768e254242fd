// Websockets through the queue-proxy (spec §1.9, §1.10): tunnelled both
// ways, counted in flight (stats and breaker slot) while open, bounded by the
// revision timeouts, and upgrade refusals or upstream failures passed back.
import t from 'tap'
import { WebSocket } from 'ws'
import { close, knativeEnv, request, startApp, startQueueProxy } from '../helpers/servers.ts'
import { accounting, deadPort, openRequest, settled, waitFor } from '../helpers/request-path.ts'
import { connectWebsocket, startWebsocketApp, upgradeRefusal } from '../helpers/websocket-app.ts'

t.jobs = 4

t.test('tunnelling and accounting (cc=0)', async (t) => {
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await app.stop() })

  t.test('messages flow both ways, text and binary, and the app sees the original Host', async (t) => {
    const c = connectWebsocket(qp.url, '/echo', { host: 'ws.example.com' })
    await c.opened
    t.ok(await waitFor(() => c.messages.includes('hello /echo')), 'app-initiated message arrived')
    c.ws.send('ping')
    t.ok(await waitFor(() => c.messages.includes('echo:ping')), 'client message echoed')
    const binary = Buffer.from([0, 1, 2, 250, 255])
    const got = new Promise<Buffer>((resolve) => c.ws.on('message', (d, isBinary) => { if (isBinary) resolve(d as Buffer) }))
    c.ws.send(binary)
    t.same(await got, binary, 'binary frame intact')
    t.same(app.upgrades.map((u) => u.headers.host), ['ws.example.com'])
    c.ws.close()
    t.equal(await c.closed, 1005, 'clean close handshake through the tunnel')
  })

  t.test('an open websocket is counted in flight and released when the client closes', async (t) => {
    await settled(qp)
    const c = connectWebsocket(qp.url, '/echo')
    await c.opened
    t.same(accounting(qp), { active: 1, stats: 1, running: 0, waiting: 0 })
    c.ws.close(1000)
    t.equal(await c.closed, 1000)
    t.ok(await settled(qp), 'released on close')
  })

  t.test('released when the app closes the websocket', async (t) => {
    await settled(qp)
    const c = connectWebsocket(qp.url, '/echo')
    await c.opened
    t.equal(accounting(qp).stats, 1)
    for (const s of app.wss.clients) s.close(1001, 'going away')
    t.equal(await c.closed, 1001, 'the app close frame reached the client')
    t.ok(await settled(qp), 'released on close')
  })

  t.test('twenty websockets at once are all counted, then all released', async (t) => {
    await settled(qp)
    const cs = Array.from({ length: 20 }, () => connectWebsocket(qp.url, '/echo'))
    await Promise.all(cs.map((c) => c.opened))
    t.equal(accounting(qp).stats, 20)
    for (const c of cs) c.ws.terminate()
    t.ok(await settled(qp), 'all released')
  })

  t.test('the app refusing the upgrade with 400: the client gets that 400', async (t) => {
    const r = await upgradeRefusal(qp.url, '/refuse')
    t.equal(r.status, 400)
    t.equal(r.body, 'no upgrade\n')
    t.ok(await settled(qp), 'nothing left in flight')
  })
})

t.test('an app without websocket support answers the upgrade as a plain request: the client gets its 400', async (t) => {
  const app = await startApp((_req, res) => {
    res.writeHead(400, { 'content-type': 'text/plain' })
    res.end('websockets not supported')
  })
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await close(app.server) })
  const r = await upgradeRefusal(qp.url, '/ws')
  t.equal(r.status, 400)
  t.equal(r.body, 'websockets not supported')
  t.ok(await settled(qp), 'nothing left in flight once the client gives up')
})

t.test('cc=1: an open websocket holds the slot; a plain request waits until it closes', async (t) => {
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { CONTAINER_CONCURRENCY: '1' }))
  t.teardown(async () => { await qp.stop(); await app.stop() })
  const c = connectWebsocket(qp.url, '/echo')
  await c.opened
  t.same(accounting(qp), { active: 1, stats: 1, running: 1, waiting: 0 }, 'the websocket holds the only slot')
  const plain = openRequest(`${qp.url}/plain`)
  let answered = false
  void plain.done.then(() => { answered = true })
  t.ok(await waitFor(() => accounting(qp).waiting === 1), 'the plain request is queued')
  await new Promise((r) => setTimeout(r, 200))
  t.notOk(answered, 'not answered while the websocket is open')
  c.ws.close()
  const r = await plain.done
  t.equal(r instanceof Error ? r.message : r.status, 200, 'answered once the websocket closed')
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('REVISION_TIMEOUT_SECONDS=1 closes a websocket that stays open longer', async (t) => {
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { REVISION_TIMEOUT_SECONDS: '1' }))
  t.teardown(async () => { await qp.stop(); await app.stop() })
  const start = Date.now()
  const c = connectWebsocket(qp.url, '/echo')
  await c.opened
  // Traffic does not extend the total timeout.
  const iv = setInterval(() => { if (c.ws.readyState === WebSocket.OPEN) c.ws.send('tick') }, 100)
  const code = await c.closed
  clearInterval(iv)
  const ms = Date.now() - start
  t.ok(ms >= 950 && ms < 2000, `closed at the revision timeout (${ms} ms)`)
  t.equal(code, 1006, 'cut without a close frame')
  t.ok(c.messages.includes('echo:tick'), 'it worked until then')
  t.ok(await settled(qp), 'released')
})

t.test('REVISION_IDLE_TIMEOUT_SECONDS=1 (total 5 s): traffic keeps a websocket open, silence closes it', async (t) => {
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { REVISION_TIMEOUT_SECONDS: '5', REVISION_IDLE_TIMEOUT_SECONDS: '1' }))
  t.teardown(async () => { await qp.stop(); await app.stop() })
  const start = Date.now()
  const busy = connectWebsocket(qp.url, '/echo')
  const quiet = connectWebsocket(qp.url, '/echo')
  await Promise.all([busy.opened, quiet.opened])
  const iv = setInterval(() => busy.ws.send('tick'), 200)
  const quietCode = await quiet.closed
  const quietMs = Date.now() - start
  t.ok(quietMs >= 950 && quietMs < 2000, `the silent websocket closed at the idle timeout (${quietMs} ms)`)
  t.equal(quietCode, 1006)
  await new Promise((r) => setTimeout(r, 1600 - (Date.now() - start)))
  clearInterval(iv)
  t.equal(busy.ws.readyState, WebSocket.OPEN, 'the busy websocket outlived the idle timeout')
  busy.ws.close()
  await busy.closed
  t.ok(await settled(qp), 'released')
})

t.test('the app is not listening: the upgrade gets 502 with the dial error', async (t) => {
  const port = await deadPort()
  const qp = await startQueueProxy(knativeEnv(port))
  t.teardown(() => qp.stop())
  const r = await upgradeRefusal(qp.url, '/echo')
  t.equal(r.status, 502)
  t.equal(r.body, `dial tcp 127.0.0.1:${port}: connect: connection refused\n`)
  t.ok(await settled(qp), 'nothing left in flight')
  t.equal((await request(`${qp.url}/`)).status, 502, 'plain requests still answered')
})

t.test('the app closes the connection without answering the upgrade: 502 "EOF"', async (t) => {
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(knativeEnv(app.port))
  t.teardown(async () => { await qp.stop(); await app.stop() })
  const r = await upgradeRefusal(qp.url, '/hangup')
  t.equal(r.status, 502)
  t.equal(r.body, 'EOF\n')
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('REVISION_TIMEOUT_SECONDS=1 and the app never answers the upgrade: 504 "request timeout"', async (t) => {
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { REVISION_TIMEOUT_SECONDS: '1' }))
  t.teardown(async () => { await qp.stop(); await app.stop() })
  const start = Date.now()
  const r = await upgradeRefusal(qp.url, '/never')
  const ms = Date.now() - start
  t.equal(r.status, 504)
  t.equal(r.body, 'request timeout')
  t.ok(ms >= 950 && ms < 2000, `answered at the revision timeout (${ms} ms)`)
  t.ok(await settled(qp), 'nothing left in flight')
})

// Knative's timeout writer never sees the hijacked 101, so the response-start
// timeout bounds the whole session (e2e TestWebSocketWithTimeout, "exceeds
// response start timeout seconds": an echo delayed past it is a connection error).
t.test('REVISION_RESPONSE_START_TIMEOUT_SECONDS=1 (total 5 s) closes an open websocket at 1 s', async (t) => {
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { REVISION_TIMEOUT_SECONDS: '5', REVISION_RESPONSE_START_TIMEOUT_SECONDS: '1' }))
  t.teardown(async () => { await qp.stop(); await app.stop() })
  const start = Date.now()
  const fast = connectWebsocket(qp.url, '/echo')
  const slow = connectWebsocket(qp.url, '/slow-echo')
  await Promise.all([fast.opened, slow.opened])
  fast.ws.send('quick')
  slow.ws.send('late')
  t.ok(await waitFor(() => fast.messages.includes('echo:quick')), 'an echo within the timeout arrives')
  const [fastCode, slowCode] = await Promise.all([fast.closed, slow.closed])
  const ms = Date.now() - start
  t.ok(ms >= 950 && ms < 1900, `both closed at the response-start timeout (${ms} ms)`)
  t.same([fastCode, slowCode], [1006, 1006])
  t.notOk(slow.messages.includes('echo:late'), 'the delayed echo never arrived')
  t.ok(await settled(qp), 'released')
})

t.test('cc=1: an upgrade beyond the full queue gets 503 "pending request queue full" with http.Error headers', async (t) => {
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { CONTAINER_CONCURRENCY: '1' }))
  t.teardown(async () => { await qp.stop(); await app.stop() })
  const holder = connectWebsocket(qp.url, '/echo')
  await holder.opened
  const queued = Array.from({ length: 10 }, (_, i) => openRequest(`${qp.url}/q${i}`))
  t.ok(await waitFor(() => accounting(qp).waiting === 10), '10 requests queued behind the websocket')
  const r = await upgradeRefusal(qp.url, '/echo')
  t.equal(r.status, 503)
  t.equal(r.body, 'pending request queue full\n')
  t.equal(r.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  holder.ws.close()
  const results = await Promise.all(queued.map((q) => q.done))
  t.ok(results.every((x) => !(x instanceof Error) && x.status === 200), 'the queued requests ran once the websocket closed')
  t.ok(await settled(qp), 'nothing left in flight')
})

t.test('cc=1: a queued upgrade whose client gives up frees its queue slot and never reaches the app', async (t) => {
  const app = await startWebsocketApp()
  const qp = await startQueueProxy(knativeEnv(app.port, { CONTAINER_CONCURRENCY: '1' }))
  t.teardown(async () => { await qp.stop(); await app.stop() })
  const holder = connectWebsocket(qp.url, '/echo')
  await holder.opened
  const leaver = connectWebsocket(qp.url, '/echo')
  const next = connectWebsocket(qp.url, '/echo')
  t.ok(await waitFor(() => accounting(qp).waiting === 2), 'two upgrades queued')
  leaver.ws.terminate()
  t.ok(await waitFor(() => accounting(qp).waiting === 1 && accounting(qp).stats === 2), 'the leaver is accounted out')
  holder.ws.close()
  await next.opened
  t.equal(app.upgrades.length, 2, 'only the holder and the next upgrade reached the app')
  next.ws.close()
  t.ok(await settled(qp), 'nothing left in flight')
})
