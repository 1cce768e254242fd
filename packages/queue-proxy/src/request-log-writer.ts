// The request log (spec §1.14): one rendered template line per request,
// written as the request finishes through an asynchronous stdout stream, so
// the hot path never blocks on a pipe (lines queue while a write is pending). Probes are skipped unless probe logging is on.

import { pino } from 'pino'
import type http from 'node:http'
import type { QueueConfig } from './config.ts'
import type { Exchange } from './exchange.ts'
import { compileRequestLog, type RequestLogRenderer } from './request-log/request-log.ts'

export class RequestLogWriter {
  private readonly renderer: RequestLogRenderer
  private readonly probes: boolean
  private readonly out: { write(s: string): boolean; flushSync(): void }

  constructor(cfg: QueueConfig, fd = 1) {
    this.renderer = compileRequestLog(cfg.requestLog.template, {
      name: cfg.revision, namespace: cfg.namespace, service: cfg.service,
      configuration: cfg.configuration, podName: cfg.pod, podIP: cfg.podIP,
    })
    this.probes = cfg.requestLog.probes
    this.out = pino.destination({ dest: fd, sync: false, minLength: 0 }) as unknown as { write(s: string): boolean; flushSync(): void }
  }

  write(ex: Exchange, code: number, end: number): void {
    if (ex.isProbe && !this.probes) return
    const req = ex.req as http.IncomingMessage
    const cl = req.headers['content-length']
    const line = this.renderer.render({
      method: req.method ?? '',
      requestURI: req.url ?? '',
      proto: `HTTP/${req.httpVersion}`,
      host: ex.host,
      remoteAddr: `${req.socket?.remoteAddress ?? ''}:${req.socket?.remotePort ?? ''}`,
      contentLength: cl === undefined ? (ex.hasBody ? -1 : 0) : Number(cl),
      headers: req.headers,
      rawHeaders: req.rawHeaders,
    }, { code, size: ex.size, latencySeconds: (end - ex.startedAt) / 1000 })
    this.out.write(line)
  }

  flush(): void {
    try {
      this.out.flushSync()
    } catch {
      // Nothing buffered or stdout already gone.
    }
  }
}
