// A collector stand-in on 127.0.0.1 for tracing tests: decodes what the real
// exporters send and keeps every span in one shape, whatever the transport.
//   Zipkin v2 JSON     POST {zipkinUrl}      (@opentelemetry/exporter-zipkin)  → 202
//   OTLP protobuf/HTTP POST {otlpHttpUrl}    (exporter-trace-otlp-proto)       → 200 + ExportTraceServiceResponse
//   OTLP JSON/HTTP     POST {otlpHttpUrl}    (exporter-trace-otlp-http)        → 200 + {}
//   OTLP gRPC          TraceService/Export at {otlpGrpcUrl} (exporter-trace-otlp-grpc)
// setMode() turns it into a failing collector for tests of bounded export:
//   'refuse' closes the listening sockets (connection refused) and drops open connections,
//   'hang'   reads each export and never answers until the mode changes (a stuck collector),
//   'error'  answers 500 / gRPC INTERNAL (failures the exporters do not retry).
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { gunzipSync } from 'node:zlib'
import { Server as GrpcServer, ServerCredentials, status as grpcStatus, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js'
import type { Test } from 'tap'
import { type OtlpAnyValue, type OtlpExportRequest, type OtlpKeyValue, decodeExportRequest, encodeExportResponse, parseJsonExportRequest, traceServiceExport } from './otlp-schema.ts'

export type SpanKindName = 'SERVER' | 'CLIENT' | 'INTERNAL' | 'PRODUCER' | 'CONSUMER'
export type Transport = 'zipkin' | 'otlp-http' | 'otlp-grpc'
export type ReceiverMode = 'ok' | 'refuse' | 'hang' | 'error'
export type AttributeValue = string | number | boolean

export interface ReceivedSpan {
  traceId: string
  spanId: string
  parentId?: string
  name: string
  kind: SpanKindName
  /** Start in milliseconds since the epoch (µs precision for Zipkin). */
  startMs: number
  durationMs: number
  /** Zipkin carries every tag as a string; OTLP keeps the type. Arrays are JSON text. */
  attributes: Record<string, AttributeValue>
  serviceName: string
  transport: Transport
}

export interface TraceReceiver {
  readonly zipkinUrl: string
  readonly otlpHttpUrl: string
  /** http://127.0.0.1:PORT: the scheme tells the gRPC exporter to use plaintext. */
  readonly otlpGrpcUrl: string
  /** Every accepted span, in arrival order. */
  readonly spans: ReceivedSpan[]
  /** Export requests received so far, per transport (held and failed ones included). */
  readonly requests: Record<Transport, number>
  /** Export requests held unanswered now ('hang' mode) whose exporter still waits (not timed out). */
  pending(): number
  /** Resolves with all spans once `pred(spans)` holds; rejects after timeoutMs naming what arrived. */
  waitFor(pred: (spans: readonly ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>
  /** Resolves once `n` export requests (any transport) have arrived in total. */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>
  /** Leaving 'hang' answers (for 'ok': accepts) the held requests. */
  setMode(mode: ReceiverMode): Promise<void>
  close(): Promise<void>
}

interface ZipkinSpan {
  traceId: string
  id: string
  parentId?: string
  name?: string
  kind?: string
  timestamp?: number
  duration?: number
  localEndpoint?: { serviceName?: string }
  tags?: Record<string, string>
}

/** An export the receiver holds in 'hang' mode, with how to answer it later. */
interface Held {
  spans: ReceivedSpan[]
  answer: (mode: ReceiverMode) => void
}

const ZIPKIN_PATH = '/api/v2/spans'
const OTLP_PATH = '/v1/traces'

function hex(bytes: Uint8Array | undefined): string {
  return bytes === undefined ? '' : Buffer.from(bytes).toString('hex')
}

function fromZipkin(body: Buffer): ReceivedSpan[] {
  const spans = JSON.parse(body.toString('utf8')) as ZipkinSpan[]
  return spans.map((s) => {
    const span: ReceivedSpan = {
      traceId: s.traceId,
      spanId: s.id,
      name: s.name ?? '',
      // Zipkin leaves kind out for local (INTERNAL) spans.
      kind: (s.kind as SpanKindName | undefined) ?? 'INTERNAL',
      startMs: (s.timestamp ?? 0) / 1000,
      durationMs: (s.duration ?? 0) / 1000,
      attributes: { ...s.tags },
      serviceName: s.localEndpoint?.serviceName ?? '',
      transport: 'zipkin',
    }
    if (s.parentId !== undefined) span.parentId = s.parentId
    return span
  })
}

function anyValue(v: OtlpAnyValue | undefined): AttributeValue {
  switch (v?.value) {
    case 'stringValue':
      return v.stringValue ?? ''
    case 'boolValue':
      return v.boolValue ?? false
    case 'intValue':
      return Number(v.intValue)
    case 'doubleValue':
      return v.doubleValue ?? 0
    case 'bytesValue':
      return Buffer.from(v.bytesValue ?? []).toString('base64')
    case 'arrayValue':
      return JSON.stringify((v.arrayValue?.values ?? []).map(anyValue))
    case 'kvlistValue':
      return JSON.stringify(attributesOf(v.kvlistValue?.values))
    default:
      return ''
  }
}

function attributesOf(list: OtlpKeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {}
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value)
  return out
}

const NS_PER_MS = 1_000_000n

function fromOtlp(request: OtlpExportRequest, transport: Transport): ReceivedSpan[] {
  const out: ReceivedSpan[] = []
  for (const rs of request.resourceSpans ?? []) {
    const serviceName = String(attributesOf(rs.resource?.attributes)['service.name'] ?? '')
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        // Nanoseconds since the epoch exceed 2^53: subtract as BigInt first.
        const start = BigInt(s.startTimeUnixNano)
        const end = BigInt(s.endTimeUnixNano)
        const span: ReceivedSpan = {
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          name: s.name,
          kind: (s.kind ?? 'SPAN_KIND_UNSPECIFIED').replace('SPAN_KIND_', '').replace('UNSPECIFIED', 'INTERNAL') as SpanKindName,
          startMs: Number(start / NS_PER_MS) + Number(start % NS_PER_MS) / 1e6,
          durationMs: Number(end - start) / 1e6,
          attributes: attributesOf(s.attributes),
          serviceName,
          transport,
        }
        const parent = hex(s.parentSpanId)
        if (parent !== '') span.parentId = parent
        out.push(span)
      }
    }
  }
  return out
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const body = Buffer.concat(chunks)
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body
}

/** Starts the receiver (HTTP for Zipkin and OTLP/HTTP, a second port for gRPC); closed at teardown. */
export async function traceReceiver(t: Test): Promise<TraceReceiver> {
  const spans: ReceivedSpan[] = []
  const requests: Record<Transport, number> = { zipkin: 0, 'otlp-http': 0, 'otlp-grpc': 0 }
  const held = new Set<Held>()
  const waiters = new Set<() => void>()
  let mode: ReceiverMode = 'ok'

  const notify = (): void => {
    for (const w of waiters) w()
  }
  const unhold = (h: Held): void => {
    if (held.delete(h)) notify()
  }
  const accept = (received: ReceivedSpan[]): void => {
    spans.push(...received)
    notify()
  }
  /**
   * Answers now or holds, per the mode; `answer` is told the mode to answer in.
   * Returns the held entry, which the caller drops when the exporter gives up.
   */
  const respond = (received: ReceivedSpan[], answer: (m: ReceiverMode) => void): Held | undefined => {
    if (mode === 'hang') {
      const h = { spans: received, answer }
      held.add(h)
      return h
    }
    if (mode === 'ok') accept(received)
    answer(mode)
    return undefined
  }

  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    void handleHttp(req, res)
  })
  // Tracked so 'refuse' and close() can cut every connection, even one accepted
  // while the listener was closing.
  const sockets = new Set<Socket>()
  let listening = true
  http.on('connection', (socket: Socket) => {
    if (!listening) {
      socket.destroy()
      return
    }
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0]
    const transport: Transport | undefined = path === ZIPKIN_PATH ? 'zipkin' : path === OTLP_PATH ? 'otlp-http' : undefined
    if (req.method !== 'POST' || transport === undefined) {
      res.writeHead(404).end()
      return
    }
    // The media type without parameters (charset).
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim()
    let received: ReceivedSpan[]
    try {
      const body = await readBody(req)
      if (transport === 'zipkin') received = fromZipkin(body)
      else if (type === 'application/x-protobuf') received = fromOtlp(decodeExportRequest(body), transport)
      else if (type === 'application/json') received = fromOtlp(parseJsonExportRequest(body.toString('utf8')), transport)
      else throw new Error(`unsupported content-type ${req.headers['content-type']}`)
    } catch (err) {
      // A body the receiver cannot decode is a test failure, not a quiet drop.
      requests[transport]++
      t.fail(`trace receiver could not decode a ${transport} export: ${(err as Error).message}`)
      res.writeHead(400).end()
      notify()
      return
    }
    requests[transport]++
    const h = respond(received, (m) => {
      if (res.destroyed) return
      if (m === 'error') res.writeHead(500).end()
      else if (transport === 'zipkin') res.writeHead(202).end()
      else if (type === 'application/json') res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(encodeExportResponse())
    })
    // An exporter that times out closes its connection: no longer pending.
    if (h !== undefined) res.once('close', () => unhold(h))
    notify()
  }

  const grpcHandler = (call: ServerUnaryCall<OtlpExportRequest, Uint8Array>, callback: sendUnaryData<Uint8Array>): void => {
    requests['otlp-grpc']++
    const h = respond(fromOtlp(call.request, 'otlp-grpc'), (m) => {
      if (m === 'error') callback({ code: grpcStatus.INTERNAL, details: 'trace receiver in error mode' })
      else callback(null, encodeExportResponse())
    })
    // A deadline or cancel from the exporter ends the call: no longer pending.
    if (h !== undefined) call.once('cancelled', () => unhold(h))
    notify()
  }
  let grpc: GrpcServer | undefined
  async function startGrpc(port: number): Promise<number> {
    const server = new GrpcServer()
    server.addService({ export: traceServiceExport }, { export: grpcHandler })
    const bound = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)))
    })
    grpc = server
    return bound
  }

  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  const httpPort = (http.address() as AddressInfo).port
  const grpcPort = await startGrpc(0)

  const releaseHeld = (as: ReceiverMode): void => {
    for (const h of held) {
      if (as === 'ok') accept(h.spans)
      h.answer(as)
    }
    held.clear()
  }
  const stopListening = async (): Promise<void> => {
    // Held requests die with their connections, as with a collector that crashed.
    held.clear()
    listening = false
    const closed = once(http, 'close')
    http.close()
    for (const socket of sockets) socket.destroy()
    await closed
    grpc?.forceShutdown()
    grpc = undefined
  }

  let closed = false
  const receiver: TraceReceiver = {
    zipkinUrl: `http://127.0.0.1:${httpPort}${ZIPKIN_PATH}`,
    otlpHttpUrl: `http://127.0.0.1:${httpPort}${OTLP_PATH}`,
    otlpGrpcUrl: `http://127.0.0.1:${grpcPort}`,
    spans,
    requests,
    pending: () => held.size,
    waitFor(pred, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!pred(spans)) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve(spans)
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`trace receiver: condition not met in ${timeoutMs} ms; spans received: ${spans.map((s) => `${s.name} (${s.transport})`).join(', ') || 'none'}`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    waitForRequests(n, timeoutMs = 5000) {
      const total = (): number => requests.zipkin + requests['otlp-http'] + requests['otlp-grpc']
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (total() < n) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`trace receiver: ${total()} of ${n} export requests in ${timeoutMs} ms`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    async setMode(next) {
      if (closed) throw new Error('trace receiver is closed')
      const previous = mode
      mode = next
      if (next === previous) return
      if (next === 'refuse') {
        await stopListening()
        return
      }
      if (previous === 'refuse') {
        // The same ports again, so exporters configured earlier reach it.
        http.listen(httpPort, '127.0.0.1')
        await once(http, 'listening')
        listening = true
        await startGrpc(grpcPort)
      }
      if (previous === 'hang') releaseHeld(next)
    },
    async close() {
      if (closed) return
      closed = true
      if (mode !== 'refuse') await stopListening()
    },
  }
  t.teardown(() => receiver.close())
  return receiver
}

/** sluice_tracing_dropped_spans_total in a Prometheus text scrape (0 while absent). */
/** The one span named `name` (of `service`, when given); throws naming what there is otherwise. */
export function oneSpan(spans: readonly ReceivedSpan[], name: string, service?: string): ReceivedSpan {
  const found = spans.filter((s) => s.name === name && (service === undefined || s.serviceName === service))
  if (found.length !== 1) throw new Error(`expected one span ${name}${service ? ` of ${service}` : ''}, got ${found.length}: ${spans.map((s) => `${s.serviceName}:${s.name}`).join(', ')}`)
  return found[0]!
}

export function droppedSpansIn(metricsText: string): number {
  const m = /^sluice_tracing_dropped_spans_total (\d+)/m.exec(metricsText)
  return m === null ? 0 : Number(m[1])
}
