// Websockets through the activator (spec §2.9, e2e TestWebSocketViaActivator):
// activator -> real queue-proxy -> app, identified and admitted like any
// request (waiting through a cold start, holding a pod slot while open),
// with the activator's error answers when it cannot be tunnelled.
import t from 'tap'
import http from 'node:http'
import { WebSocket } from 'ws'
import { waitFor } from '../../helpers/request-path.ts'
import { startTestAutoscaler } from '../../helpers/test-autoscaler.ts'
import { revisionInfo, startActivator, startPod } from '../../helpers/activator.ts'
import { connectWebsocket, startWebsocketApp, upgradeRefusal } from '../../helpers/websocket-app.ts'

t.jobs = 3

const route = (rev: string) => ({ 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': rev })

t.test('a websocket opened during a cold start waits, then tunnels both ways to the app through the queue-proxy', async (t) => {
  const app = await startWebsocketApp()
  const pod = await startPod(app.port)
  const autoscaler = await startTestAutoscaler()
  const act = await startActivator({ autoscalerUrl: autoscaler.url, revisions: [revisionInfo('ws-00001')] })
  t.teardown(async () => {
    await pod.stop()
    await app.stop()
    await act.stop()
    await autoscaler.stop()
  })
  const c = connectWebsocket(act.url, '/chat', { ...route('ws-00001'), Host: 'chat.example.com' })
  const poke = await autoscaler.waitForStat((s) => s.name === 'ws-00001')
  t.equal(poke.stat.averageConcurrentRequests, 1, 'the upgrade request pokes the autoscaler like any request')
  await new Promise((r) => setTimeout(r, 100))
  t.equal(c.ws.readyState, WebSocket.CONNECTING, 'still waiting for a pod')
  act.source.setEndpoints('default', 'ws-00001', { ready: [], notReady: [pod.dest] })
  await c.opened
  t.ok(await waitFor(() => c.messages.includes('hello /chat')), 'app-initiated message arrived')
  c.ws.send('ping')
  t.ok(await waitFor(() => c.messages.includes('echo:ping')), 'client message echoed')
  const binary = Buffer.from([0, 1, 2, 250, 255])
  const got = new Promise<Buffer>((resolve) => c.ws.on('message', (d, isBinary) => { if (isBinary) resolve(d as Buffer) }))
  c.ws.send(binary)
  t.same(await got, binary, 'binary frame intact')

  const up = app.upgrades[0]!.headers
  t.equal(up.host, 'chat.example.com', 'the app sees the original Host')
  t.equal(up['knative-serving-revision'], undefined)
  const atQp = pod.seen.find((s) => s.url === '/chat')
  t.equal(atQp?.headers['k-proxy-request'], 'activator')
  t.equal(atQp?.headers['k-original-host'], 'chat.example.com')
  t.equal(act.activator.ctx.active, 1, 'the open tunnel is in flight')

  c.ws.close(1000)
  t.equal(await c.closed, 1000, 'close handshake through both tunnels')
  t.ok(await waitFor(() => act.activator.ctx.active === 0), 'released when the client closes')
})

t.test('cc=1: an open websocket holds the pod slot; a plain request waits until it closes', async (t) => {
  const app = await startWebsocketApp()
  const pod = await startPod(app.port, { containerConcurrency: 1 })
  const act = await startActivator({ revisions: [revisionInfo('one-00001', { containerConcurrency: 1 })] })
  act.source.setEndpoints('default', 'one-00001', { ready: [pod.dest], notReady: [] })
  t.teardown(async () => {
    await pod.stop()
    await app.stop()
    await act.stop()
  })
  const c = connectWebsocket(act.url, '/hold', route('one-00001'))
  await c.opened
  const rt = act.activator.ctx.throttler.get('default/one-00001')!
  t.equal(rt.inFlight, 1)
  let answered = ''
  const plain = new Promise<void>((resolve) => {
    http.get(`${act.url}/plain`, { agent: false, headers: route('one-00001') }, (res) => {
      res.setEncoding('utf8').on('data', (d: string) => { answered += d }).on('end', () => resolve())
    })
  })
  t.ok(await waitFor(() => rt.queue.length === 1), 'the plain request queues behind the websocket')
  c.ws.close()
  await plain
  t.equal(answered, 'plain /plain', 'served once the websocket closed')
})

t.test('refusals: unknown revision 404, no pod before the timeout 504, dead pod 502 with Go\'s dial error', async (t) => {
  const app = await startWebsocketApp()
  const pod = await startPod(app.port)
  const act = await startActivator({
    revisions: [revisionInfo('cold-00001', { timeoutSeconds: 1 }), revisionInfo('dead-00001')],
  })
  t.teardown(async () => {
    await app.stop()
    await act.stop()
  })
  const unknown = await upgradeRefusal(act.url, '/ws', route('nope-00001'))
  t.equal(unknown.status, 404)
  t.equal(unknown.body, 'Error getting active endpoint: revision.serving.knative.dev "nope-00001" not found\n')

  const started = performance.now()
  const cold = await upgradeRefusal(act.url, '/ws', route('cold-00001'))
  t.equal(cold.status, 504)
  t.equal(cold.body, 'activator request timeout')
  t.ok(performance.now() - started >= 990, 'after the revision timeout')

  act.source.setEndpoints('default', 'dead-00001', { ready: [pod.dest], notReady: [] })
  const rt = act.activator.ctx.throttler.get('default/dead-00001')!
  t.ok(await waitFor(() => rt.healthyDests.length === 1), 'pod probed healthy')
  await pod.kill()
  const dead = await upgradeRefusal(act.url, '/ws', route('dead-00001'))
  t.equal(dead.status, 502)
  t.equal(dead.body, `dial tcp ${pod.dest}: connect: connection refused\n`)
  t.same(rt.healthyDests, [], 'the pod is dropped (passive removal)')
  t.ok(await waitFor(() => act.activator.ctx.active === 0), 'nothing left in flight')
})
