// The shared serving listener under hostile connections, against both the
// queue-proxy and the activator: partial HTTP/2 prefaces must not wedge the
// process, silent and dribbling connections are closed at the read-header
// timeout, idle keep-alive connections follow Go (kept, TCP keep-alive on).

import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { FRONTS, startFront } from '../../helpers/fronts.ts'
import { rawStatus } from '../../helpers/request-path.ts'
import { request, sleep, startApp } from '../../helpers/servers.ts'

t.jobs = 2

async function connect(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1')
  await once(s, 'connect')
  s.on('error', () => {})
  return s
}

/** Resolves with ms until the server closed the socket, or -1 after limitMs. */
function closedWithin(s: net.Socket, limitMs: number): Promise<number> {
  const start = performance.now()
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(-1), limitMs)
    s.once('close', () => {
      clearTimeout(timer)
      resolve(performance.now() - start)
    })
    s.resume()
  })
}

/** The kernel's view of the server side of a loopback connection: TCP timer kind from /proc/net/tcp. */
function serverTimer(serverPort: number, clientPort: number): number | undefined {
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0')
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 6) continue
    if (f[1]!.endsWith(`:${hex(serverPort)}`) && f[2]!.endsWith(`:${hex(clientPort)}`)) return Number(f[5]!.split(':')[0])
  }
  return undefined
}

const app = await startApp((req, res) => {
  req.resume()
  res.end('ok')
})
t.teardown(() => new Promise<void>((r) => app.server.close(() => r())))

for (const kind of FRONTS) {
  t.test(`${kind}: partial HTTP/2 prefaces ("P", the preface line, 15 bytes) leave every other connection served and the CPU idle`, async (t) => {
    const front = await startFront(kind, app.port)
    t.teardown(() => front.stop())
    const partials = ['P', 'PRI * HTTP/2.0\r\n', 'PRI * HTTP/2.0\r']
    t.equal(partials[2]!.length, 15)
    const sockets: net.Socket[] = []
    for (const p of partials) {
      const s = await connect(front.port)
      s.write(p)
      sockets.push(s)
    }
    await sleep(50)
    // A wedged event loop spins a whole core: measure this process's CPU over a second.
    const cpu0 = process.cpuUsage()
    const wall0 = performance.now()
    await sleep(1000)
    const cpu = process.cpuUsage(cpu0)
    const wallMs = performance.now() - wall0
    const busy = (cpu.user + cpu.system) / 1000 / wallMs
    t.ok(busy < 0.5, `CPU while the partial connections wait: ${(busy * 100).toFixed(0)} % of a core (a spin is ~100 %)`)
    const t0 = performance.now()
    const r = await request(front.url + '/after', { headers: front.headers })
    t.equal(r.status, 200, 'a request on another connection is served')
    t.equal(r.body, 'ok')
    t.ok(performance.now() - t0 < 1000, `within normal latency (${(performance.now() - t0).toFixed(0)} ms)`)
    // The partial connections are still waiting for more bytes, not dispatched as garbage.
    for (const s of sockets) t.notOk(s.destroyed, 'the partial connection is still open')
    // Completing one preface after the wait makes it an h2 connection; the others close.
    for (const s of sockets) s.destroy()
    await sleep(50)
    const again = await request(front.url + '/again', { headers: front.headers })
    t.equal(again.status, 200, 'still served after the partial connections closed')
  })

  t.test(`${kind}: a byte-at-a-time preface still becomes an HTTP/2 connection; a diverging one is HTTP/1.1`, async (t) => {
    const front = await startFront(kind, app.port)
    t.teardown(() => front.stop())
    const h1 = await connect(front.port)
    const chunks: Buffer[] = []
    h1.on('data', (c: Buffer) => chunks.push(c))
    for (const ch of 'PR') {
      h1.write(ch)
      await sleep(10)
    }
    h1.write('OPFIND / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    await once(h1, 'close')
    const status = rawStatus(Buffer.concat(chunks).toString('latin1'))
    t.ok(status >= 400 && status < 500 || status === 200 || status === 405 || status === 404, `"PROPFIND" split over reads is answered as HTTP/1.1 (${status})`)

    const h2 = await connect(front.port)
    const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
    const got: Buffer[] = []
    h2.on('data', (c: Buffer) => got.push(c))
    for (const ch of preface) {
      h2.write(ch)
      await sleep(2)
    }
    // The server's SETTINGS frame (type 4) is its first answer to a complete preface.
    for (let i = 0; i < 100 && Buffer.concat(got).length < 9; i++) await sleep(10)
    const frame = Buffer.concat(got)
    t.ok(frame.length >= 9 && frame[3] === 4, 'the server answers the preface with a SETTINGS frame')
    h2.destroy()
  })

  t.test(`${kind}: silent and dribbling connections are closed at SLUICE_READ_HEADER_TIMEOUT; idle keep-alive ones are kept, with TCP keep-alive`, async (t) => {
    const front = await startFront(kind, app.port, { env: { SLUICE_READ_HEADER_TIMEOUT: '1s', SLUICE_TCP_KEEPALIVE: '5s' } })
    t.teardown(() => front.stop())

    const silent = await connect(front.port)
    const dribbler = await connect(front.port)
    dribbler.write('GET / HTTP/1.1\r\n')
    const drip = setInterval(() => { if (!dribbler.destroyed) dribbler.write('X') }, 100)
    t.teardown(() => clearInterval(drip))
    // Idle after one complete request: Go keeps it (no idle timeout) and so do we.
    const idle = await connect(front.port)
    idle.write(`GET /idle HTTP/1.1\r\nHost: x\r\n${front.rawHeaders}\r\n`)
    await once(idle, 'data')
    t.equal(serverTimer(front.port, idle.localPort!), 2, 'the kernel runs the keep-alive timer on the accepted connection')

    const [silentMs, dribbleMs, idleMs] = await Promise.all([closedWithin(silent, 5000), closedWithin(dribbler, 5000), closedWithin(idle, 2500)])
    clearInterval(drip)
    t.ok(silentMs >= 800 && silentMs < 3000, `a connection that never sends a byte is closed after ~1 s (${silentMs.toFixed(0)} ms)`)
    t.ok(dribbleMs >= 800 && dribbleMs < 3000, `a dribbled request head is cut after ~1 s (${dribbleMs.toFixed(0)} ms)`)
    t.equal(idleMs, -1, 'an idle keep-alive connection stays open past the read-header timeout')
    // Still usable after the idle period.
    idle.write(`GET /idle2 HTTP/1.1\r\nHost: x\r\n${front.rawHeaders}\r\n`)
    const [chunk] = await once(idle, 'data') as [Buffer]
    t.equal(rawStatus(chunk.toString('latin1')), 200, 'the idle connection serves its next request')
    idle.destroy()
  })

  t.test(`${kind}: SLUICE_IDLE_CONNECTION_TIMEOUT closes idle keep-alive connections`, async (t) => {
    const front = await startFront(kind, app.port, { env: { SLUICE_IDLE_CONNECTION_TIMEOUT: '500ms' } })
    t.teardown(() => front.stop())
    const idle = await connect(front.port)
    idle.write(`GET /idle HTTP/1.1\r\nHost: x\r\n${front.rawHeaders}\r\n`)
    await once(idle, 'data')
    const ms = await closedWithin(idle, 5000)
    t.ok(ms >= 300 && ms < 4000, `closed after ~500 ms idle (${ms.toFixed(0)} ms)`)
  })
}

t.test('bad connection settings fail fast, naming the variable', async (t) => {
  const { loadConnectionLimits } = await import('@sluice/core/http/connection-limits')
  t.throws(() => loadConnectionLimits({ SLUICE_READ_HEADER_TIMEOUT: 'soon' }), /SLUICE_READ_HEADER_TIMEOUT/)
  t.throws(() => loadConnectionLimits({ SLUICE_READ_HEADER_TIMEOUT: '0s' }), /SLUICE_READ_HEADER_TIMEOUT/)
  t.throws(() => loadConnectionLimits({ SLUICE_MAX_CONCURRENT_STREAMS: '0' }), /SLUICE_MAX_CONCURRENT_STREAMS/)
  t.throws(() => loadConnectionLimits({ SLUICE_MAX_PIPELINED_REQUESTS: '-1' }), /SLUICE_MAX_PIPELINED_REQUESTS/)
  t.throws(() => loadConnectionLimits({ SLUICE_TCP_KEEPALIVE: 'x' }), /SLUICE_TCP_KEEPALIVE/)
  t.match(loadConnectionLimits({}), { readHeaderTimeoutMs: 60_000, idleTimeoutMs: 0, tcpKeepAliveMs: 15_000, maxConcurrentStreams: 250, maxHeaderBytes: 1 << 20 })
})
