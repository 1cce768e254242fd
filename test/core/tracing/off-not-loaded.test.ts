// Tracing off means not loaded: the queue-proxy bundle (what dist/main.js
// starts) must not contain the tracer or OpenTelemetry, which are reached only
// through a dynamic import when tracing is on.
import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'

const bundle = new URL('../../../packages/queue-proxy/dist/queue-proxy.bundle.cjs', import.meta.url)

t.test('the queue-proxy bundle holds no OpenTelemetry code', { skip: existsSync(bundle) ? false : 'bundle not built (npm run build)' }, async (t) => {
  const text = readFileSync(bundle, 'utf8')
  t.notOk(text.includes('opentelemetry'), 'no @opentelemetry module in the bundle')
  t.notOk(text.includes('BatchSpanProcessor'), 'no span processor in the bundle')
})
