// :9091 — Prometheus text for the user-facing request metrics (spec §1.13).

import type http from 'node:http'
import { httpModule } from '@sluice/core/builtins'
import type { Registry } from 'prom-client'
import { notFound } from './metrics-server.ts'
import { SIDE_PORT_OPTIONS } from '@sluice/core/http/connection-limits'

export function createUserMetricsServer(registry: Registry): http.Server {
  return httpModule().createServer(SIDE_PORT_OPTIONS, (req, res) => {
    if (req.url !== '/metrics' && !req.url!.startsWith('/metrics?')) {
      notFound(res)
      return
    }
    registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType })
      res.end(text)
    }, (err: Error) => {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(`${err.message}\n`)
    })
  })
}
