// The durable websocket to the autoscaler (spec §2.11, §3.3): one binary
// WireStatMessages frame per batch, no buffering while down, pings with a
// pong deadline, reconnect with back-off (at once after a 1012 close), and a
// stop() that closes cleanly and leaves nothing behind.
import t, { type Test } from 'tap'
import net from 'node:net'
import http from 'node:http'
import { once } from 'node:events'
import { WebSocket } from 'ws'
import { createLogger } from '@sluice/core/logging'
import { emptyStat, type WireStatMessage } from '@sluice/core/stat-proto'
import { StatSender, type StatSenderOptions } from '@sluice/activator/stats/stat-sender'
import { startTestAutoscaler, type TestAutoscaler } from '../../helpers/test-autoscaler.ts'
import { waitFor } from '../../helpers/servers.ts'

const log = createLogger({ name: 'test', level: 'silent' })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function msg(name: string, concurrency: number, count: number, namespace = 'ns'): WireStatMessage {
  return { namespace, name, stat: { ...emptyStat('activator-1'), averageConcurrentRequests: concurrency, requestCount: count } }
}

/** A started autoscaler and a sender connected to it; both cleaned up after the test. */
async function connected(t: Test, opts: Partial<StatSenderOptions> = {}): Promise<{ autoscaler: TestAutoscaler; sender: StatSender; states: boolean[] }> {
  const autoscaler = await startTestAutoscaler()
  const states: boolean[] = []
  const sender = new StatSender({ url: autoscaler.url, log, onStateChange: (c) => states.push(c), ...opts })
  t.teardown(async () => {
    await sender.stop()
    await autoscaler.stop()
  })
  sender.start()
  await autoscaler.waitFor(() => sender.connected, 2000, 'the sender to connect')
  return { autoscaler, sender, states }
}

t.test('each batch is ONE binary frame that the stat server decodes', async (t) => {
  const { autoscaler, sender } = await connected(t)
  const batch = [msg('rev1', 1, 1), msg('rev2', 2.5, 3), msg('rev3', 0, 0, 'other')]
  sender.send(batch)
  sender.send([msg('rev1', 0.25, 7)])
  const frames = await autoscaler.waitForFrames(2)
  t.equal(frames.length, 2)
  t.same(frames[0]!.messages, batch, 'namespace, name and stat survive the wire')
  t.same(frames[1]!.messages, [msg('rev1', 0.25, 7)])
  t.same(autoscaler.textFrames, [], 'no text frames')
  t.equal(autoscaler.decodeErrors, 0)
  t.equal(sender.sent, 2)
  t.equal(sender.dropped, 0)
})

t.test('sends while disconnected are dropped and counted, not buffered', async (t) => {
  const autoscaler = await startTestAutoscaler()
  const sender = new StatSender({ url: autoscaler.url, log })
  t.teardown(async () => {
    await sender.stop()
    await autoscaler.stop()
  })
  sender.send([msg('rev1', 1, 1)])
  t.equal(sender.dropped, 1, 'before start()')
  sender.start()
  sender.send([msg('rev1', 1, 1)])
  t.equal(sender.dropped, 2, 'while the dial is in progress')
  await autoscaler.waitFor(() => sender.connected)
  sender.send([msg('rev2', 1, 1)])
  const frames = await autoscaler.waitForFrames(1)
  await sleep(50)
  t.equal(frames.length, 1, 'only the batch sent while connected arrives')
  t.same(frames[0]!.messages.map((m) => m.name), ['rev2'])
})

t.test('reconnects with back-off after the autoscaler goes away and comes back', async (t) => {
  const { autoscaler, sender, states } = await connected(t, { backoff: { initialMs: 20 } })
  await autoscaler.stop()
  await autoscaler.waitFor(() => !sender.connected, 2000, 'the sender to notice')
  t.same(states, [true, false], 'state changes reported')
  await autoscaler.waitFor(() => sender.connectErrors >= 2, 2000, 'failed attempts')
  t.ok(sender.connectErrors >= 2, `failed attempts are counted (${sender.connectErrors})`)
  t.equal(sender.disconnects, 1)
  sender.send([msg('lost', 1, 1)])
  t.equal(sender.dropped, 1, 'a batch while down is dropped')
  await autoscaler.start()
  await autoscaler.waitFor(() => sender.connected, 2000, 'the sender to reconnect')
  t.same(states, [true, false, true])
  sender.send([msg('rev1', 1, 1)])
  const frames = await autoscaler.waitForFrames(1)
  t.equal(frames[0]!.connection, 2, 'sent on the new connection')
  t.same(frames[0]!.messages.map((m) => m.name), ['rev1'], 'the dropped batch is not replayed')
})

t.test('a 1012 close (autoscaler restarting) reconnects at once, without the back-off', async (t) => {
  const { autoscaler, sender } = await connected(t, { backoff: { initialMs: 10_000 } })
  const t0 = performance.now()
  await autoscaler.closeAll(1012)
  t.same(autoscaler.closeCodes, [1012])
  await autoscaler.waitFor(() => autoscaler.connectionsAccepted === 2 && sender.connected, 1000, 'an immediate reconnect')
  t.ok(performance.now() - t0 < 1000, 'well before the 10 s back-off')
})

t.test('a 1012 on shutdown then restart on the same port: reconnects', async (t) => {
  const { autoscaler, sender } = await connected(t, { backoff: { initialMs: 20 } })
  const port = autoscaler.port
  await autoscaler.restart({ closeCode: 1012 })
  t.equal(autoscaler.port, port)
  await autoscaler.waitFor(() => autoscaler.connectionsAccepted === 2 && sender.connected, 2000, 'a reconnect')
  sender.send([msg('rev1', 1, 1)])
  t.equal((await autoscaler.waitForFrames(1))[0]!.connection, 2)
})

t.test('any other close waits for the back-off before reconnecting', async (t) => {
  const { autoscaler, sender } = await connected(t, { backoff: { initialMs: 300, jitter: 0 } })
  const t0 = performance.now()
  await autoscaler.closeAll(1000)
  await sleep(150)
  t.equal(autoscaler.connectionsAccepted, 1, 'not yet reconnected')
  t.notOk(sender.connected)
  await autoscaler.waitFor(() => sender.connected, 2000, 'the reconnect')
  const waited = performance.now() - t0
  t.ok(waited >= 290, `reconnected after the initial back-off (${Math.round(waited)} ms)`)
})

t.test('pings go out at the ping interval', async (t) => {
  const { autoscaler } = await connected(t, { pingIntervalMs: 50 })
  await autoscaler.waitFor(() => autoscaler.pings.length >= 4, 1000, '4 pings')
  const gaps = autoscaler.pings.slice(1).map((p, i) => p - autoscaler.pings[i]!)
  // The median, so one late timer on a loaded machine does not fail the test.
  const median = [...gaps].sort((a, b) => a - b)[1]!
  t.ok(median > 30 && median < 120, `gaps around 50 ms: ${gaps.map(Math.round).join(', ')}`)
})

t.test('no pong within the pong timeout drops the connection; it is re-established', async (t) => {
  const { autoscaler, sender, states } = await connected(t, { pingIntervalMs: 30, pongTimeoutMs: 400, backoff: { initialMs: 20 } })
  const t0 = performance.now()
  autoscaler.answerPings = false
  await autoscaler.waitFor(() => autoscaler.connectionsClosed === 1, 1500, 'the connection to drop')
  // The last pong went out with the last ping before t0: the deadline runs from there.
  const lastPong = Math.max(...autoscaler.pings.filter((p) => p < t0))
  const droppedAt = autoscaler.closes[0]!.at
  t.ok(droppedAt - lastPong > 350, `not before the pong timeout (${Math.round(droppedAt - lastPong)} ms after the last pong)`)
  t.ok(droppedAt - t0 < 1200, `but soon after it (${Math.round(droppedAt - t0)} ms after pongs stopped)`)
  t.equal(autoscaler.closeCodes[0], 1006, 'cut without a close frame')
  autoscaler.answerPings = true
  await autoscaler.waitFor(() => sender.connected && autoscaler.connectionsAccepted >= 2, 1000, 'the reconnect')
  const closed = autoscaler.connectionsClosed
  await sleep(600)
  t.equal(autoscaler.connectionsClosed, closed, 'pongs keep the connection past the pong timeout')
  t.ok(sender.connected)
  t.ok(states.length >= 3 && states[1] === false, 'the drop was reported')
})

t.test('stop() closes cleanly with 1000, stops reconnecting and leaves no open handles', async (t) => {
  const autoscaler = await startTestAutoscaler()
  t.teardown(() => autoscaler.stop())
  const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length
  // The previous test's connections may still be closing: let them go first, so they neither
  // count against the sender nor hide a socket it leaves open.
  await waitFor(() => sockets() === 0, 2000)
  const baseline = sockets()
  const states: boolean[] = []
  const sender = new StatSender({ url: autoscaler.url, log, pingIntervalMs: 20, backoff: { initialMs: 10 }, onStateChange: (c) => states.push(c) })
  sender.start()
  await autoscaler.waitFor(() => sender.connected)
  sender.send([msg('rev1', 1, 1)])
  await autoscaler.waitForFrames(1)
  t.ok(sockets() > baseline, 'connected: sockets open')
  await sender.stop()
  t.notOk(sender.connected)
  t.same(states, [true, false])
  await autoscaler.waitFor(() => autoscaler.openConnections === 0, 1000, 'the server side to close')
  t.same(autoscaler.closeCodes, [1000], 'a normal close frame')
  await waitFor(() => sockets() <= baseline, 2000)
  t.equal(sockets(), baseline, 'no sockets left')
  t.equal(autoscaler.connectionsAccepted, 1, 'no reconnect after stop()')
  sender.send([msg('rev1', 1, 1)])
  t.equal(sender.dropped, 1, 'sends after stop() are dropped')
})

t.test('stop() while the autoscaler is unreachable ends the retry loop', async (t) => {
  const autoscaler = await startTestAutoscaler()
  const url = autoscaler.url
  await autoscaler.stop()
  const sender = new StatSender({ url, log, backoff: { initialMs: 10, jitter: 0 } })
  sender.start()
  await autoscaler.waitFor(() => sender.connectErrors >= 3, 2000, 'failed attempts')
  await sender.stop()
  const errors = sender.connectErrors
  await sleep(150)
  t.equal(sender.connectErrors, errors, 'no attempts after stop()')
})

t.test('the dial gives up after the handshake timeout', async (t) => {
  // Accepts TCP, never answers the upgrade.
  const silent = net.createServer(() => {})
  silent.listen(0, '127.0.0.1')
  await once(silent, 'listening')
  const held = new Set<net.Socket>()
  silent.on('connection', (s) => held.add(s))
  t.teardown(() => {
    for (const s of held) s.destroy()
    silent.close()
  })
  const port = (silent.address() as net.AddressInfo).port
  const sender = new StatSender({ url: `ws://127.0.0.1:${port}`, log, handshakeTimeoutMs: 100, backoff: { initialMs: 10_000 } })
  const t0 = performance.now()
  sender.start()
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (sender.connectErrors > 0 || performance.now() - t0 > 2000) resolve(void clearInterval(poll))
    }, 10)
  })
  const took = performance.now() - t0
  await sender.stop()
  t.equal(sender.connectErrors, 1)
  t.ok(took >= 90 && took < 1000, `failed after about 100 ms (${Math.round(took)} ms)`)
})

t.test('test autoscaler: kubelet probes get 200, plain requests 400, text frames are set apart', async (t) => {
  const autoscaler = await startTestAutoscaler()
  t.teardown(() => autoscaler.stop())
  const get = (headers: Record<string, string>) => new Promise<number>((resolve, reject) => {
    http.get(`http://127.0.0.1:${autoscaler.port}/anything`, { headers }, (res) => {
      res.resume()
      resolve(res.statusCode!)
    }).on('error', reject)
  })
  t.equal(await get({ 'user-agent': 'kube-probe/1.28' }), 200)
  t.equal(await get({ 'k-kubelet-probe': 'autoscaler' }), 200)
  t.equal(await get({}), 400, 'not a websocket upgrade')
  t.equal(autoscaler.probes, 2)
  const ws = new WebSocket(autoscaler.url)
  await once(ws, 'open')
  ws.send('hello')
  await autoscaler.waitFor(() => autoscaler.textFrames.length === 1)
  t.same(autoscaler.textFrames, ['hello'])
  t.same(autoscaler.frames, [], 'a text frame is no stat')
  ws.close()
  await once(ws, 'close')
})
