// The activator's handler chain (spec §2.3): kubelet health → network probes
// → revision identification → activation (reporter, timeouts, throttler,
// proxy). Probes are decided from one header scan.

import type http from 'node:http'
import { UserAgent } from '@sluice/core/constants'
import type { Req } from '@sluice/core/http/proxy-exchange'
import { clientIp } from '@sluice/core/http/client-ip'
import type { ActivatorContext } from '../context.ts'
import { ActivationExchange } from './activation-exchange.ts'
import { identifyRevision } from './context-handler.ts'
import { answerKubeletProbe, goError } from './health-handler.ts'
import { answerNetworkProbe } from './probe-handler.ts'
import { scanActivatorRequest } from './request-headers.ts'

export function createMainHandler(ctx: ActivatorContext) {
  return function handle(req: Req, res: http.ServerResponse): void {
    const ex = new ActivationExchange(ctx, req, res, req.httpVersionMajor === 2, performance.now())
    scanActivatorRequest(req.rawHeaders, clientIp(req.socket?.remoteAddress), ex)
    if (ex.kubeletProbe || ex.userAgent.startsWith(UserAgent.kubeProbePrefix)) return answerKubeletProbe(ctx.health, res)
    if (ex.networkProbe !== '') return answerNetworkProbe(ex.networkProbe, ex.networkHash, res)
    const found = identifyRevision(ctx.source, ex.revisionNamespace, ex.revisionName, ex.host, ctx.clusterDomain)
    if (!found.ok) return goError(res, found.status, found.body)
    ex.run(found.revision)
  }
}
