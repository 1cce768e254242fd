// Failing-collector scenarios shared by the per-transport test files (one file
// per transport keeps each under ~10 s: the OTLP exporters retry a refused
// connection for up to their 5 s export timeout).
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { MAX_QUEUED_SPANS, type Tracer, createTracer } from '@sluice/core/tracing/tracer'
import { type TraceReceiver, type Transport, traceReceiver } from '../../helpers/trace-receiver.ts'
import { settingsFor } from './transports.ts'

/** Far more spans than the queue holds. */
const BURST = 3 * MAX_QUEUED_SPANS
/** Ending this many spans takes a few ms; seconds would mean waiting on the collector. */
const BURST_BUDGET_MS = 2000

interface Counted {
  receiver: TraceReceiver
  tracer: Tracer
  dropped: () => number
}

async function setUp(t: Test, transport: Transport): Promise<Counted> {
  const receiver = await traceReceiver(t)
  let dropped = 0
  const tracer = await createTracer(settingsFor(receiver, transport), { serviceName: 'qp', onDropped: (n) => (dropped += n) })
  t.teardown(() => tracer.shutdown())
  return { receiver, tracer, dropped: () => dropped }
}

/** Ends BURST spans; checks it took no collector round trip and that the overflow was counted at once. */
function burst(t: Test, tracer: Tracer, dropped: () => number): void {
  const started = performance.now()
  for (let i = 0; i < BURST; i++) tracer.startServer('/', {}).end()
  const ms = performance.now() - started
  t.ok(ms < BURST_BUDGET_MS, `ending ${BURST} spans does not wait for the collector (${ms.toFixed(0)} ms)`)
  // Queued and in-flight spans together stay within MAX_QUEUED_SPANS.
  t.equal(dropped(), BURST - MAX_QUEUED_SPANS, 'spans beyond MAX_QUEUED_SPANS dropped and counted as they end')
}

async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (!cond() && performance.now() < deadline) await sleep(20)
  return cond()
}

/** Connection refused: span creation never waits, the queue stays bounded, every lost span is counted once. */
export async function deadCollector(t: Test, transport: Transport): Promise<void> {
  const { receiver, tracer, dropped } = await setUp(t, transport)
  await receiver.setMode('refuse')
  burst(t, tracer, dropped)
  await tracer.forceFlush()
  // Failed exports are counted when the exporter gives up (OTLP retries for up to 5 s).
  t.ok(await until(() => dropped() >= BURST, 8000), `every span counted as dropped (${dropped()} of ${BURST})`)
  t.equal(dropped(), BURST, 'and none twice')
  t.same(receiver.spans, [], 'nothing delivered')
}

/**
 * A collector that stops answering, then recovers: one export is in flight
 * while it hangs (not one per batch), the overflow is counted, and what the
 * tracer held is delivered once it answers again.
 */
export async function hangThenRecover(t: Test, transport: Transport): Promise<void> {
  const { receiver, tracer, dropped } = await setUp(t, transport)
  await receiver.setMode('hang')
  burst(t, tracer, dropped)
  await receiver.waitForRequests(1)
  await sleep(100)
  t.equal(receiver.pending(), 1, 'a single export waits on the hung collector')
  // Flushing sends the rest in batches, which the collector holds too; let
  // them arrive (any that come after recovery are simply answered).
  const flushed = tracer.forceFlush()
  await sleep(300)
  await receiver.setMode('ok')
  await flushed
  const delivered = await receiver.waitFor((s) => s.length + dropped() >= BURST)
  t.equal(delivered.length + dropped(), BURST, `every span delivered (${delivered.length}) or counted as dropped (${dropped()})`)
  t.equal(delivered.length, MAX_QUEUED_SPANS, 'what the tracer held, and no more, is delivered after recovery')
}

/**
 * A collector that is down and comes back on the same address: spans ended
 * while it was down are counted as dropped (or, for OTLP/HTTP, delivered by a
 * retry), and spans flow again without restarting anything (the gRPC channel
 * reconnects after its backoff; exports that fail meanwhile are counted).
 */
export async function refuseThenRecover(t: Test, transport: Transport): Promise<void> {
  const { receiver, tracer, dropped } = await setUp(t, transport)
  await receiver.setMode('refuse')
  for (let i = 0; i < 5; i++) tracer.startServer('while-down', {}).end()
  const flushed = tracer.forceFlush()
  await sleep(200)
  await receiver.setMode('ok')
  await flushed
  let ended = 5
  const deadline = performance.now() + 8000
  while (!receiver.spans.some((s) => s.name === 'after-recovery') && performance.now() < deadline) {
    tracer.startServer('after-recovery', {}).end()
    ended++
    await tracer.forceFlush()
    await sleep(100)
  }
  t.ok(receiver.spans.some((s) => s.name === 'after-recovery'), `spans flow again after the collector is back (${ended - 5} tried)`)
  await until(() => receiver.spans.length + dropped() >= ended, 6000)
  t.equal(receiver.spans.length + dropped(), ended, `every span delivered (${receiver.spans.length}) or counted as dropped (${dropped()})`)
  t.equal(new Set(receiver.spans.map((s) => s.spanId)).size, receiver.spans.length, 'none delivered twice')
}
