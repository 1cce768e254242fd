// :9090 — the autoscaler's scrape endpoint (spec §1.4, §1.12). `/metrics`
// with any method and any Accept gets the protobuf Stat; all else is 404.

import type http from 'node:http'
import { httpModule } from '@sluice/core/builtins'
import type { StatsReporter } from './stats-reporter.ts'
import { SIDE_PORT_OPTIONS } from '@sluice/core/http/connection-limits'

export function createMetricsServer(reporter: StatsReporter): http.Server {
  return httpModule().createServer(SIDE_PORT_OPTIONS, (req, res) => {
    const q = req.url!.indexOf('?')
    const path = q === -1 ? req.url : req.url!.slice(0, q)
    if (path !== '/metrics') {
      notFound(res)
      return
    }
    const body = reporter.body
    res.writeHead(200, { 'content-type': 'application/protobuf', 'content-length': body.length })
    res.end(body)
  })
}

export function notFound(res: http.ServerResponse): void {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' })
  res.end('404 page not found\n')
}
