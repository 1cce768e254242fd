// One connection must not become many concurrent upstream requests, against
// both the queue-proxy and the activator: pipelined HTTP/1.1 requests reach the
// app one at a time and in order (RFC 9112 §9.3.2; Go serves them so), the
// pipeline a connection may build up is bounded, and HTTP/2 handlers per
// session are bounded by SETTINGS_MAX_CONCURRENT_STREAMS (250, as Go).

import t from 'tap'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { once } from 'node:events'
import { FRONTS, startFront } from '../../helpers/fronts.ts'
import { HoldingApp, rawStatus, waitFor } from '../../helpers/request-path.ts'
import { close, listen, sleep } from '../../helpers/servers.ts'

t.jobs = 2

/** Writes `data` on one connection and collects what comes back until the server closes or `until` holds. */
function pipeline(port: number, data: string, until: (text: string) => boolean, timeoutMs = 15_000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    let text = ''
    let done = false
    const end = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      s.destroy()
      resolve({ text, closed })
    }
    const timer = setTimeout(end, timeoutMs, false)
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1')
      if (until(text)) end(false)
    })
    s.on('close', () => end(true))
    s.on('error', () => end(true))
    s.write(data)
  })
}

const statuses = (text: string): number[] => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))

/** An h2c app that holds every stream and counts how many are open at once. */
async function startH2App() {
  const server = http2.createServer()
  const state = { current: 0, max: 0, started: 0, held: [] as http2.ServerHttp2Stream[] }
  server.on('stream', (stream) => {
    state.started++
    if (++state.current > state.max) state.max = state.current
    stream.on('close', () => state.current--)
    stream.on('error', () => {})
    state.held.push(stream)
  })
  const port = await listen(server as unknown as net.Server)
  return {
    port,
    state,
    releaseAll() {
      for (const s of state.held.splice(0)) if (!s.destroyed) s.respond({ ':status': 200 }, { endStream: true })
    },
    stop: () => close(server as unknown as net.Server),
  }
}

for (const kind of FRONTS) {
  t.test(`${kind}: 20 pipelined POSTs reach the app one at a time, in order, answered in order`, async (t) => {
    const app = await HoldingApp.start()
    const front = await startFront(kind, app.port)
    t.teardown(async () => {
      await front.stop()
      await app.stop()
    })
    let data = ''
    for (let i = 0; i < 20; i++) data += `POST /wait/5?n=${i} HTTP/1.1\r\nHost: x\r\n${front.rawHeaders}Content-Length: 5\r\n\r\nhello`
    const { text } = await pipeline(front.port, data, (s) => statuses(s).length === 20)
    t.same(statuses(text), Array(20).fill(200), '20 responses, all 200')
    t.same([...text.matchAll(/done \/wait\/5\?n=(\d+)/g)].map((m) => Number(m[1])), [...Array(20).keys()], 'responses come back in request order')
    t.same(app.paths, [...Array(20).keys()].map((i) => `/wait/5?n=${i}`), 'the app saw them in order')
    t.equal(app.max, 1, 'never more than one at a time from one connection')
    t.ok(await front.settled(), 'nothing left in flight')
  })

  t.test(`${kind}: 300 pipelined GETs: one upstream request at a time, the pipeline bounded, the excess answered 503 and the connection closed`, async (t) => {
    const app = await HoldingApp.start()
    const front = await startFront(kind, app.port)
    t.teardown(async () => {
      await front.stop()
      await app.stop()
    })
    let data = ''
    for (let i = 0; i < 300; i++) data += `GET /wait/1?n=${i} HTTP/1.1\r\nHost: x\r\n${front.rawHeaders}\r\n`
    const { text, closed } = await pipeline(front.port, data, () => false)
    const got = statuses(text)
    t.ok(closed, 'the server closed the connection')
    t.equal(app.max, 1, `the app never saw more than one at a time (max ${app.max})`)
    t.ok(got.length >= 129, `at least the running request and the 128 waiting ones (SLUICE_MAX_PIPELINED_REQUESTS) were answered (${got.length})`)
    t.same(got.slice(0, -1), Array(got.length - 1).fill(200), 'every answer before the last is a 200, in order')
    if (got.length < 300) {
      t.equal(got.at(-1), 503, 'the request past the bound gets 503')
      t.match(text, /too many pipelined requests\n$/, 'with a body that says why')
    }
    t.equal(app.paths.length, got.filter((s) => s === 200).length, 'only answered requests reached the app')
    t.ok(await front.settled(), 'nothing left in flight')
  })

  t.test(`${kind}: at most 250 concurrent HTTP/2 streams per connection reach the app`, async (t) => {
    const app = await startH2App()
    const front = await startFront(kind, app.port, { revision: { protocol: 'h2c' } })
    const client = http2.connect(front.url)
    client.on('error', () => {})
    t.teardown(async () => {
      client.destroy()
      app.releaseAll()
      await front.stop()
      await app.stop()
    })
    await once(client, 'remoteSettings')
    t.equal(client.remoteSettings.maxConcurrentStreams, 250, 'SETTINGS_MAX_CONCURRENT_STREAMS 250, as Go')
    const streams: http2.ClientHttp2Stream[] = []
    for (let i = 0; i < 400; i++) {
      const s = client.request({ ':path': `/s/${i}`, ...Object.fromEntries(Object.entries(front.headers).map(([k, v]) => [k.toLowerCase(), v])) })
      s.on('error', () => {})
      s.resume()
      streams.push(s)
    }
    t.ok(await waitFor(() => app.state.current >= 250, 10_000), `250 streams reach the app (${app.state.current})`)
    await sleep(300)
    t.equal(app.state.max, 250, `never more than 250 at once (max ${app.state.max})`)
    app.releaseAll()
    // The rest follow as slots free up.
    t.ok(await waitFor(() => { app.releaseAll(); return app.state.started >= 400 }, 10_000), `all 400 were served in turn (${app.state.started})`)
    t.ok(app.state.max <= 250, `still at most 250 at once (max ${app.state.max})`)
    client.destroy()
    t.ok(await front.settled(5000), 'nothing left in flight')
  })

  t.test(`${kind}: an HTTP/2 rapid-reset burst never has more than 250 upstream requests open`, async (t) => {
    const app = await startH2App()
    const front = await startFront(kind, app.port, { revision: { protocol: 'h2c' } })
    const client = http2.connect(front.url)
    client.on('error', () => {})
    t.teardown(async () => {
      client.destroy()
      app.releaseAll()
      await front.stop()
      await app.stop()
    })
    await once(client, 'remoteSettings')
    const headers = Object.fromEntries(Object.entries(front.headers).map(([k, v]) => [k.toLowerCase(), v]))
    for (let round = 0; round < 8 && !client.destroyed; round++) {
      for (let i = 0; i < 200 && !client.destroyed; i++) {
        const s = client.request({ ':path': `/r/${round}/${i}`, ...headers })
        s.on('error', () => {})
        s.close(http2.constants.NGHTTP2_CANCEL)
      }
      await sleep(20)
    }
    await sleep(300)
    t.ok(app.state.max <= 250, `at most 250 upstream streams open at once (max ${app.state.max}, ${app.state.started} started)`)
    client.destroy()
    t.ok(await front.settled(5000), 'nothing left in flight')
    t.ok(await waitFor(() => app.state.current === 0, 5000), 'the app sees every reset stream closed')
  })
}

t.test('an upgrade pipelined behind a running request waits for it: the tunnel never starts under its response', async (t) => {
  const app = await HoldingApp.start()
  const front = await startFront('queue-proxy', app.port)
  t.teardown(async () => {
    await front.stop()
    await app.stop()
  })
  const upgrades: string[] = []
  app.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    upgrades.push(req.url!)
    socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
  })
  const data = 'GET /held HTTP/1.1\r\nHost: x\r\n\r\n' +
    'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
  const result = pipeline(front.port, data, (s) => s.includes('101 Switching'), 10_000)
  t.ok(await waitFor(() => app.heldCount === 1), 'the first request is running')
  await sleep(200)
  t.same(upgrades, [], 'the pipelined upgrade has not started while the first response is open')
  app.releaseOne()
  const { text } = await result
  t.equal(rawStatus(text), 200, 'the first response comes first')
  t.match(text, /released[\s\S]*HTTP\/1\.1 101 Switching Protocols/, 'then the upgrade, after it')
  t.same(upgrades, ['/ws'])
})
