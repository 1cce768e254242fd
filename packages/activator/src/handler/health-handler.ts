// Kubelet probes of the activator itself (spec §2.4): failing after SIGTERM,
// and — only if configured, as Knative always does — while the autoscaler
// websocket is down. Sluice's default keeps serving warm revisions when the
// autoscaler is unreachable and reports the connection as a metric instead.

import type http from 'node:http'
import { GoErrorHeaders } from '@sluice/core/constants'

export interface HealthState {
  terminating: boolean
  autoscalerConnected: () => boolean
  requireAutoscaler: boolean
}

export function answerKubeletProbe(state: HealthState, res: http.ServerResponse): void {
  if (state.terminating) return goError(res, 500, 'received SIGTERM from kubelet\n')
  if (state.requireAutoscaler && !state.autoscalerConnected()) return goError(res, 500, 'connection has not yet been established\n')
  res.writeHead(200, { 'content-length': 0 })
  res.end()
}

export function goError(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { ...GoErrorHeaders, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
