// The Zipkin exporter's transport with a deadline. @opentelemetry/exporter-zipkin
// encodes the spans (toZipkinSpan) and then POSTs them with no timeout: a
// collector that accepts and never answers keeps the request, and its spans,
// forever, and the exporter's shutdown() waits for it. This send is the
// same POST, given up (and reported as failed) after `timeoutMs`; the
// encoding stays the exporter's own.
import http from 'node:http'
import https from 'node:https'
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'

export type ZipkinSend = (zipkinSpans: unknown[], done: (result: ExportResult) => void) => void

export function boundedZipkinSend(urlStr: string, timeoutMs: number): ZipkinSend {
  const url = new URL(urlStr)
  const request = url.protocol === 'http:' ? http.request : https.request
  return function send(zipkinSpans, done) {
    if (zipkinSpans.length === 0) {
      done({ code: ExportResultCode.SUCCESS })
      return
    }
    const body = JSON.stringify(zipkinSpans)
    let settled = false
    const finish = (result: ExportResult): void => {
      if (settled) return
      settled = true
      done(result)
    }
    const req = request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      signal: AbortSignal.timeout(timeoutMs),
    }, (res) => {
      res.resume()
      res.on('end', () => {
        const status = res.statusCode ?? 0
        // As the exporter: 2xx and 3xx are delivered, anything else failed.
        finish(status < 400 ? { code: ExportResultCode.SUCCESS } : { code: ExportResultCode.FAILED, error: new Error(`Got unexpected status code from zipkin: ${status}`) })
      })
      res.on('error', (error) => finish({ code: ExportResultCode.FAILED, error }))
    })
    req.on('error', (error) => finish({ code: ExportResultCode.FAILED, error }))
    req.end(body)
  }
}
