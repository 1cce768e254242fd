// The tracer's own cost per request, in process (no proxying): what the
// queue-proxy's tracing hooks do for one request, paced like real traffic
// (--rps, in 10 ms ticks) so that sampled spans live until their batch is
// exported, as they do under load, and exported for real (Zipkin JSON v2 or
// OTLP protobuf over HTTP to a receiver in a child process, or discarded).
// CPU is the whole process's (process.cpuUsage: GC and compiler threads
// included), minus the same paced loop with the tracer off (the header copy
// alone). The HTTP bench ("Tracing off and on") measures the whole
// queue-proxy; on this VM its per-round points drift more than this
// difference, so this isolates the tracer and its exporter.
// Usage: ./node_modules/.bin/node --conditions=sluice-source bench/tracing-hot-path.ts
//          [--rps 15000] [--seconds 6] [--rates 0,0.1,1] [--exporters discard,zipkin,otlp-http]
import { fork } from 'node:child_process'
import { parseArgs } from 'node:util'
import { createTracer, type Tracer } from '@sluice/core/tracing/tracer'
import type { TracingSettings } from '@sluice/core/tracing/settings'

const { values } = parseArgs({
  options: {
    rps: { type: 'string', default: '15000' },
    seconds: { type: 'string', default: '6' },
    rates: { type: 'string', default: '0,0.1,1' },
    exporters: { type: 'string', default: 'discard,zipkin,otlp-http' },
    receiver: { type: 'boolean', default: false },
  },
})

// --receiver: this process is the child that takes the exports (202 for Zipkin, 200 for OTLP).
if (values.receiver) {
  const { createServer } = await import('node:http')
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(req.url === '/api/v2/spans' ? 202 : 200).end())
  })
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port))
  process.on('disconnect', () => process.exit(0))
} else {
  await main()
}

async function main(): Promise<void> {
  const rps = Number(values.rps)
  const seconds = Number(values.seconds)
  const perTick = Math.max(1, Math.round(rps / 100))
  // What scanRequestHeaders leaves for a wrk request.
  const headers = ['Host', '127.0.0.1:8080', 'user-agent', 'wrk', 'forwarded', 'for=127.0.0.1', 'x-forwarded-for', '127.0.0.1']
  const req = { method: 'GET', url: '/api/items?page=2' }
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

  const child = fork(new URL(import.meta.url).pathname, ['--receiver'], { stdio: 'inherit' })
  const port: number = await new Promise((r) => child.once('message', (m) => r(m as number)))
  const endpointFor = (exporter: TracingSettings['exporter']): string =>
    exporter === 'zipkin' ? `http://127.0.0.1:${port}/api/v2/spans` : exporter === 'discard' ? '' : `http://127.0.0.1:${port}/v1/traces`

  /** Runs the paced loop for `seconds`; returns process CPU µs per request and the requests made. */
  async function paced(tracer: Tracer | null): Promise<{ us: number; n: number }> {
    let n = 0
    const c0 = process.cpuUsage()
    const end = performance.now() + seconds * 1000
    let next = performance.now()
    while (performance.now() < end) {
      for (let i = 0; i < perTick; i++) {
        const up = headers.slice()
        if (tracer !== null) {
          const trace = tracer.startRequest(req, '127.0.0.1:8080', 'wrk', up)
          trace.openInner('queue_proxy', up)
          trace.end(200)
        }
        n++
      }
      next += 10
      await sleep(Math.max(0, next - performance.now()))
    }
    if (tracer !== null) await tracer.forceFlush()
    const c = process.cpuUsage(c0)
    return { us: (c.user + c.system) / n, n }
  }

  process.stdout.write(`paced at ${rps} req/s (${perTick} per 10 ms tick), ${seconds} s per point; CPU of the whole process per request\n`)
  // Warm the off loop and the tracer code alike before measuring.
  await paced(null)
  const exporters = values.exporters.split(',') as TracingSettings['exporter'][]
  const rates = values.rates.split(',').map(Number)
  for (const exporter of exporters) {
    for (const rate of rates) {
      let dropped = 0
      const tracer = await createTracer({ exporter, endpoint: endpointFor(exporter), sampleRate: rate }, { serviceName: 'bench', onDropped: (k) => { dropped += k } })
      await paced(tracer) // warm-up at this setting
      dropped = 0
      // Off and on alternate, three times; the best of each (other work only adds).
      let off = Infinity
      let on = Infinity
      for (let round = 0; round < 3; round++) {
        off = Math.min(off, (await paced(null)).us)
        on = Math.min(on, (await paced(tracer)).us)
      }
      await tracer.shutdown()
      process.stdout.write(`${exporter.padEnd(9)} rate ${String(rate).padEnd(4)}: off ${off.toFixed(2)} µs, on ${on.toFixed(2)} µs, tracer +${(on - off).toFixed(2)} µs per request; spans dropped ${dropped}\n`)
    }
  }
  child.disconnect()
}
