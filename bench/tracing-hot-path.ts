// The tracer's own cost per request, in process (no sockets): what the
// queue-proxy's tracing hooks do for one proxied request, unsampled and
// sampled, against copying the header list alone. The HTTP bench ("Tracing
// off and on") measures the whole process; on this VM its per-round points
// drift more than this difference, so this isolates the code.
// Usage: ./node_modules/.bin/node bench/tracing-hot-path.ts [--requests N]
import { parseArgs } from 'node:util'
import { createTracer } from '@sluice/core/tracing/tracer'

const { values } = parseArgs({ options: { requests: { type: 'string', default: '500000' } } })
const n = Number(values.requests)
// What scanRequestHeaders leaves for a wrk request.
const headers = ['Host', '127.0.0.1:8080', 'user-agent', 'wrk', 'forwarded', 'for=127.0.0.1', 'x-forwarded-for', '127.0.0.1']
const req = { method: 'GET', url: '/api/items?page=2' }

async function perRequestUs(rate: number): Promise<number> {
  const tracer = await createTracer({ exporter: 'discard', endpoint: '', sampleRate: rate }, { serviceName: 'bench', onDropped: () => {} })
  let best = Infinity
  for (let round = 0; round < 5; round++) {
    let t0 = performance.now()
    for (let i = 0; i < n; i++) {
      const up = headers.slice()
      const trace = tracer.startRequest(req, '127.0.0.1:8080', 'wrk', up)
      trace.openInner('queue_proxy', up)
      trace.end(200)
    }
    const traced = performance.now() - t0
    t0 = performance.now()
    for (let i = 0; i < n; i++) headers.slice()
    best = Math.min(best, ((traced - (performance.now() - t0)) / n) * 1000)
  }
  await tracer.shutdown()
  return best
}

for (const rate of [0, 0.1, 1]) {
  process.stdout.write(`sample rate ${rate}: ${(await perRequestUs(rate)).toFixed(2)} µs per request (best of 5 × ${n})\n`)
}
