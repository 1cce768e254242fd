// Tracing through the local runtime: one config-tracing file
// (SLUICE_TRACING_CONFIG) gives the activator and every queue-proxy the same
// settings, so a cold start from zero shows as one trace: the activator's
// server span, its throttler wait while the instance starts, and the
// queue-proxy's spans under activator_proxy. Real processes, real Zipkin export.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { revision, send, startRuntime, tempDir, waitFor, writeService } from '../../helpers/local.ts'
import { traceReceiver, type ReceivedSpan } from '../../helpers/trace-receiver.ts'

const REV = 'traced-00001'

t.test('a cold start from zero is one trace across the activator and the queue-proxy', async (t) => {
  const rx = await traceReceiver(t)
  const dir = tempDir(t)
  const tracingConfig = join(dir, 'config-tracing.yaml')
  writeFileSync(tracingConfig, [
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata:',
    '  name: config-tracing',
    '  namespace: knative-serving',
    'data:',
    '  backend: "zipkin"',
    `  zipkin-endpoint: "${rx.zipkinUrl}"`,
    '  sample-rate: "1"',
    '',
  ].join('\n'))
  const run = await startRuntime(writeService(dir, { name: 'traced' }), { tracingConfigPath: tracingConfig })
  t.teardown(() => run.stop())
  t.teardown(() => { if (!t.passing()) t.comment(run.lines.join('\n')) })
  t.match(run.lines.join('\n'), `tracing: zipkin ${rx.zipkinUrl}, sample rate 1`)

  t.ok(await waitFor(() => revision(run.rt, REV).instances.length === 0, 45_000, 100), 'scaled to zero')
  const reply = await send(run.url, { host: 'traced.default.example.com', path: '/cold' })
  t.equal(reply.status, 200)

  const inTrace = (spans: readonly ReceivedSpan[]): ReceivedSpan[] => {
    const root = spans.find((s) => s.name === '/cold' && s.serviceName === 'activator-service')
    return root === undefined ? [] : spans.filter((s) => s.traceId === root.traceId)
  }
  const trace = inTrace(await rx.waitFor((s) => inTrace(s).some((x) => x.name === 'queue_proxy'), 15_000))
  const named = (name: string, pred: (s: ReceivedSpan) => boolean = () => true) => trace.find((s) => s.name === name && pred(s))
  const actServer = named('/cold', (s) => s.serviceName === 'activator-service')!
  const wait = named('throttler_try')
  const actProxy = named('activator_proxy')
  const qpServer = named('/cold', (s) => s.serviceName !== 'activator-service')
  const qpProxy = named('queue_proxy')
  t.equal(wait?.parentId, actServer.spanId, 'throttler_try under the activator server span')
  t.equal(actProxy?.parentId, actServer.spanId, 'activator_proxy under the activator server span')
  t.equal(qpServer?.parentId, actProxy?.spanId, 'the queue-proxy continues the trace')
  t.equal(qpProxy?.parentId, qpServer?.spanId)
  t.match(qpServer?.serviceName, /^traced-00001-/, 'queue-proxy spans are named after the instance (its SERVING_POD)')
  // The wait covers the instance's start: its app had to start and pass readiness.
  t.ok(wait !== undefined && wait.durationMs >= 20, `throttler_try spans the cold start (${wait?.durationMs} ms)`)
  t.ok(wait !== undefined && actProxy !== undefined && actProxy.startMs >= wait.startMs + wait.durationMs - 1, 'proxying starts after the wait')
})
