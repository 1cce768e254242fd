// The four prom-client classes the metrics use (queue-proxy request metrics,
// activator metrics), required one by one.
// prom-client's index also loads cluster aggregation, the Pushgateway (https,
// zlib) and the default process metrics (perf_hooks, v8): measured on Node 24,
// the index costs ~19 MiB resident and ~70 ms; these four files ~5 MiB and
// ~10 ms. (prom-client has no "exports" map, so its lib files are public paths.)

import { createRequire } from 'node:module'
import type * as Prom from 'prom-client'

export interface PromParts {
  Registry: typeof Prom.Registry
  Counter: typeof Prom.Counter
  Gauge: typeof Prom.Gauge
  Histogram: typeof Prom.Histogram
}

export function loadPromParts(): PromParts {
  const req = createRequire(import.meta.url)
  return {
    Registry: req('prom-client/lib/registry.js') as typeof Prom.Registry,
    Counter: req('prom-client/lib/counter.js') as typeof Prom.Counter,
    Gauge: req('prom-client/lib/gauge.js') as typeof Prom.Gauge,
    Histogram: req('prom-client/lib/histogram.js') as typeof Prom.Histogram,
  }
}
