// Network probes answered by the activator (spec §2.4): the ingress KProbe
// (`probe` + hash echo) and the KPA's "is the activator in the path?" probe
// (`activator`). Other values are rejected with the quoted message.

import type http from 'node:http'
import { Body, Header, ProbeValue } from '@sluice/core/constants'
import { goError } from './health-handler.ts'

export function answerNetworkProbe(value: string, hash: string, res: http.ServerResponse): void {
  if (value === ProbeValue.kprobe) {
    if (hash === '') return goError(res, 400, Body.kprobeMissingHash)
    res.writeHead(200, { [Header.networkHash]: hash, 'content-length': 0 })
    res.end()
    return
  }
  if (value === ProbeValue.activator) {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 9 })
    res.end(ProbeValue.activator)
    return
  }
  goError(res, 400, `unexpected probe header value: "${htmlEscape(value)}"\n`)
}

/** Go's html.EscapeString. */
export function htmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === "'" ? '&#39;' : '&#34;')
}
