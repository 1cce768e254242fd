// The main handler (spec §1.5): the Drainer's probe dispatch, then the proxy
// chain carried by an Exchange. Probes are decided from one header scan.

import type http from 'node:http'
import type http2 from 'node:http2'
import { Header, ProbeValue } from '@sluice/core/constants'
import type { QueueContext } from './context.ts'
import { Exchange } from './exchange.ts'
import { answerHealthCheck, answerKProbe, isHealthCheck, isProbe, replyShuttingDown } from './probe-handler.ts'
import { clientIp } from '@sluice/core/http/client-ip'
import { scanRequestHeaders } from './request-headers.ts'

type Req = http.IncomingMessage | http2.Http2ServerRequest

// Probe requests get an Exchange too, so the request log and metrics see
// every request in one place (they filter probes themselves).
export function createMainHandler(ctx: QueueContext) {
  return function handle(req: Req, res: http.ServerResponse): void {
    const now = performance.now()
    const isH2 = req.httpVersionMajor === 2
    const ex = new Exchange(ctx, req, res, isH2, now)
    scanRequestHeaders(req.rawHeaders, clientIp(req.socket?.remoteAddress), ex)
    ex.isProbe = isProbe(ex)

    if (isHealthCheck(ex)) {
      if (ctx.drainer.draining) replyShuttingDown(res)
      else answerHealthCheck(ctx, ex, res)
      return
    }
    if (ex.networkProbe === ProbeValue.kprobe) {
      if (ctx.drainer.draining) replyShuttingDown(res)
      else answerKProbe(headerValue(req, Header.networkHash), res)
      return
    }
    ctx.drainer.touch()
    ex.run()
  }
}

function headerValue(req: Req, name: string): string {
  const v = req.headers[name]
  return typeof v === 'string' ? v : Array.isArray(v) ? (v[0] ?? '') : ''
}
