// One pass over the inbound raw headers for the activator (spec §2.3, §2.9):
// picks out probe and routing headers, and builds the header list sent to
// the queue-proxy: Host moved into K-Original-Host (unless already set),
// K-Proxy-Request: activator, revision headers, K-Network-Hash and hop-by-hop
// headers dropped, the client IP appended to X-Forwarded-For.

import { dropConnectionListed } from '@sluice/core/http/connection-listed'
import { Header, ProxyRequestActivator } from '@sluice/core/constants'

export interface ScannedActivatorRequest {
  userAgent: string
  kubeletProbe: boolean
  networkProbe: string
  networkHash: string
  revisionNamespace: string
  revisionName: string
  host: string
  /** Content-Length, -1 when chunked or unknown, 0 without a body. */
  contentLength: number
  upstreamHeaders: string[]
}

const DROP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'trailer', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings',
  Header.revision, Header.namespace, Header.networkHash, Header.proxyRequest, Header.xForwardedFor,
])

export function scanActivatorRequest(raw: string[], remoteIp: string, target: ScannedActivatorRequest): void {
  const out: string[] = []
  let host = ''
  let originalHost = ''
  let xff = ''
  let connectionTokens: string | undefined
  target.contentLength = 0
  for (let i = 0; i < raw.length; i += 2) {
    const rawName = raw[i]!
    const value = raw[i + 1]!
    if (rawName.charCodeAt(0) === 58 /* ':' */) {
      if (rawName === ':authority') host = value
      continue
    }
    const name = rawName.toLowerCase()
    switch (name) {
      case 'host': host = value; continue
      case 'user-agent': target.userAgent = value; break
      case 'k-network-probe': target.networkProbe = value; break
      case 'k-network-hash': target.networkHash = value; continue
      case 'k-kubelet-probe': if (value !== '') target.kubeletProbe = true; break
      case 'k-original-host': originalHost = value; break
      case 'knative-serving-namespace': target.revisionNamespace = value; continue
      case 'knative-serving-revision': target.revisionName = value; continue
      case 'x-forwarded-for': xff = xff === '' ? value : `${xff}, ${value}`; continue
      case 'content-length': target.contentLength = Number(value) || 0; break
      case 'transfer-encoding': target.contentLength = -1; continue
      case 'te':
        if (value.toLowerCase().includes('trailers')) out.push('te', 'trailers')
        continue
      case 'connection':
        connectionTokens = connectionTokens === undefined ? value : `${connectionTokens},${value}`
        continue
      default:
        if (DROP.has(name)) continue
    }
    out.push(rawName, value)
  }
  target.host = host
  // The queue-proxy restores Host from K-Original-Host; the outbound Host is the pod.
  if (originalHost === '' && host !== '') out.push('k-original-host', host)
  out.push('k-proxy-request', ProxyRequestActivator)
  if (remoteIp !== '') xff = xff === '' ? remoteIp : `${xff}, ${remoteIp}`
  if (xff !== '') out.push('x-forwarded-for', xff)
  target.upstreamHeaders = connectionTokens === undefined ? out : dropConnectionListed(out, connectionTokens)
}
