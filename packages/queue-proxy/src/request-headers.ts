// One pass over the inbound raw headers: picks out what the probe, stats and
// forwarding logic need, and builds the flat header list sent upstream
// (spec §1.10, §1.11): hop-by-hop and revision headers dropped, Host restored
// from K-Original-Host, Forwarded synthesised, client IP appended to X-Forwarded-For.

import { dropConnectionListed } from '@sluice/core/http/connection-listed'
import { synthesizeForwarded } from './forwarded-shim.ts'

/** What the scan fills in; the per-request Exchange implements it. */
export interface ScannedRequest {
  userAgent: string
  networkProbe: string
  kubeletProbe: boolean
  proxied: boolean
  routeTag: string
  defaultRoute: string
  /** Request has a body to stream (Content-Length > 0 or chunked). */
  hasBody: boolean
  /** Host the user container sees (after K-Original-Host). */
  host: string
  /** Flat [name, value, ...] list for undici. */
  upstreamHeaders: string[]
}

// Dropped before proxying: hop-by-hop (Go httputil) plus what undici manages itself.
const DROP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'trailer', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings',
  'knative-serving-revision', 'knative-serving-namespace', 'k-original-host',
  'host', 'x-forwarded-for',
])

export function scanRequestHeaders(raw: string[], remoteIp: string, target: ScannedRequest): void {
  const out: string[] = []
  let host = ''
  let originalHost = ''
  let xff = ''
  let xfh = ''
  let xfp = ''
  let forwarded = false
  let connectionTokens: string | undefined
  target.hasBody = false

  for (let i = 0; i < raw.length; i += 2) {
    const rawName = raw[i]!
    const value = raw[i + 1]!
    if (rawName.charCodeAt(0) === 58 /* ':' */) {
      // HTTP/2 pseudo-headers: only :authority matters (it is the Host).
      if (rawName === ':authority') host = value
      continue
    }
    const name = rawName.toLowerCase()
    switch (name) {
      case 'host': host = value; continue
      case 'user-agent': target.userAgent = value; break
      case 'k-network-probe': target.networkProbe = value; break
      case 'k-kubelet-probe': if (value !== '') target.kubeletProbe = true; break
      case 'k-proxy-request': if (value === 'activator') target.proxied = true; break
      case 'k-original-host': originalHost = value; continue
      case 'knative-serving-tag': target.routeTag = value; break
      case 'knative-serving-default-route': target.defaultRoute = value; break
      case 'x-forwarded-for': xff = xff === '' ? value : `${xff}, ${value}`; continue
      case 'x-forwarded-host': if (xfh === '') xfh = value; break
      case 'x-forwarded-proto': if (xfp === '') xfp = value; break
      case 'forwarded': forwarded = true; break
      case 'content-length': if (value !== '0') target.hasBody = true; break
      case 'transfer-encoding': target.hasBody = true; continue
      case 'te':
        // Only "trailers" survives (gRPC needs it), as in Go's reverse proxy.
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

  if (!forwarded && (xff !== '' || xfh !== '' || xfp !== '')) {
    out.push('forwarded', synthesizeForwarded(xff, xfh, xfp))
  }
  if (remoteIp !== '') xff = xff === '' ? remoteIp : `${xff}, ${remoteIp}`
  if (xff !== '') out.push('x-forwarded-for', xff)
  target.host = originalHost !== '' ? originalHost : host
  if (target.host !== '') out.push('host', target.host)

  target.upstreamHeaders = connectionTokens === undefined ? out : dropConnectionListed(out, connectionTokens)
}

// scheme "://" authority: what an absolute-form request target starts with.
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i

/**
 * The request target to send upstream, in origin form, as Go's reverse proxy
 * sends it: "http://h/p?q" -> "/p?q", "*" -> "/*". For an absolute-form
 * target the URL's authority is the Host (RFC 9112 §3.2.2), unless
 * K-Original-Host already chose it. Only called for targets not starting with "/".
 */
export function originFormTarget(r: ScannedRequest, target: string, hasOriginalHost: boolean): string {
  const m = ABSOLUTE_FORM.exec(target)
  if (m === null) return `/${target}`
  const authority = m[1]!.slice(m[1]!.lastIndexOf('@') + 1)
  if (authority !== '' && !hasOriginalHost) setUpstreamHost(r, authority)
  const rest = target.slice(m[0].length)
  return rest === '' || rest.charCodeAt(0) !== 47 /* '/' */ ? `/${rest}` : rest
}

function setUpstreamHost(r: ScannedRequest, host: string): void {
  r.host = host
  const h = r.upstreamHeaders
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === 'host') {
      h[i + 1] = host
      return
    }
  }
  h.push('host', host)
}
