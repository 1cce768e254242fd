// A collector that accepts the export and never answers: once the export
// timeout has passed, the tracer must have given the export up (connection
// closed, so nothing of it stays in memory) and counted its spans as dropped.
// The three transports run side by side: each waits out the 5 s timeout.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createTracer } from '@sluice/core/tracing/tracer'
import { traceReceiver } from '../../helpers/trace-receiver.ts'
import { TRANSPORTS, settingsFor } from './transports.ts'

const SPANS = 10
/** The tracer's 5 s export timeout, its 1 s grace, and slack for a busy machine. */
const GIVE_UP_MS = 9000
const SHUTDOWN_MS = 3000

// @opentelemetry/exporter-zipkin sets no timeout on its request: the tracer
// replaces its send with one that has a deadline (zipkin-send.ts).

t.jobs = TRANSPORTS.length
for (const transport of TRANSPORTS) {
  t.test(`${transport}: a hung export is abandoned and counted`, { buffered: true }, async (t) => {
    const receiver = await traceReceiver(t)
    await receiver.setMode('hang')
    let dropped = 0
    const tracer = await createTracer(settingsFor(receiver, transport), { serviceName: 'qp', onDropped: (n) => (dropped += n) })
    // The receiver closes first: a tracer stuck on it would otherwise hold up the teardown.
    t.teardown(async () => {
      await receiver.close()
      await tracer.shutdown()
    })
    for (let i = 0; i < SPANS; i++) tracer.startServer('/', {}).end()
    void tracer.forceFlush()
    await receiver.waitForRequests(1)
    t.equal(receiver.pending(), 1, 'the collector holds the export')
    const deadline = performance.now() + GIVE_UP_MS
    while ((receiver.pending() > 0 || dropped < SPANS) && performance.now() < deadline) await sleep(50)
    t.equal(dropped, SPANS, 'the stuck export\'s spans are counted as dropped')
    t.equal(receiver.pending(), 0, 'the exporter closed the stuck request')
    t.same(receiver.spans, [], 'nothing delivered')
    // Shutdown (what a draining process awaits) must not wait on the stuck collector.
    const shut = await Promise.race([tracer.shutdown().then(() => 'done'), sleep(SHUTDOWN_MS, 'stuck', { ref: false })])
    t.equal(shut, 'done', `tracer.shutdown() settles within ${SHUTDOWN_MS} ms while the collector hangs`)
  })
}
