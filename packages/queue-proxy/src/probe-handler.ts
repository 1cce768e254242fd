// Health checks and network probes answered by the queue-proxy itself
// (drain.go and pkg/queue/health/handler.go, spec §1.6).

import type http from 'node:http'
import { Body, Header, ProbeValue, UserAgent } from '@sluice/core/constants'
import { replyGoError } from '@sluice/core/http/go-error'
import type { QueueContext } from './context.ts'
import type { ScannedRequest } from './request-headers.ts'

type Res = http.ServerResponse

/** Kubelet probe: kube-probe/ UA or any K-Kubelet-Probe value. */
export function isKubeletProbe(r: ScannedRequest): boolean {
  return r.kubeletProbe || r.userAgent.startsWith(UserAgent.kubeProbePrefix)
}

/** A request the Drainer answers as a health check. */
export function isHealthCheck(r: ScannedRequest): boolean {
  return isKubeletProbe(r) ||
    r.userAgent.startsWith(UserAgent.activatorProbe) ||
    r.userAgent.startsWith(UserAgent.autoscalingProbe)
}

/** Excluded from request metrics and (unless asked) the request log. */
export function isProbe(r: ScannedRequest): boolean {
  return isKubeletProbe(r) || r.networkProbe !== ''
}

export function replyShuttingDown(res: Res): void {
  replyGoError(res, 503, Body.shuttingDown)
}

/** `K-Network-Probe: queue` health check: runs the user-container prober (a `probe` span when tracing). */
export function answerHealthCheck(ctx: QueueContext, r: ScannedRequest, res: Res): void {
  const tracing = ctx.tracing
  const span = tracing === null ? null : tracing.startProbe()
  if (r.networkProbe !== ProbeValue.queue) {
    const message = `unexpected probe header value: ${r.networkProbe}`
    replyGoError(res, 400, `${message}\n`)
    if (span !== null) tracing!.endProbe(span, message)
    return
  }
  ctx.prober.probe().then(
    (ready) => {
      if (span !== null) tracing!.endProbe(span, ready ? null : 'container not ready')
      if (res.destroyed) return
      if (ready) {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 5 })
        res.end(ProbeValue.queue)
      } else {
        res.writeHead(503, { 'content-length': 0 })
        res.end()
      }
    },
    (err: Error) => {
      if (span !== null) tracing!.endProbe(span, err.message)
      ctx.log.error({ err: err.message }, 'readiness probe failed')
      if (!res.destroyed) {
        res.writeHead(503, { 'content-length': 0 })
        res.end()
      }
    },
  )
}

/** `K-Network-Probe: probe` (ingress KProbe): echo the hash. */
export function answerKProbe(hash: string, res: Res): void {
  if (hash === '') {
    replyGoError(res, 400, Body.kprobeMissingHash)
    return
  }
  res.writeHead(200, { [Header.networkHash]: hash, 'content-length': 0 })
  res.end()
}
