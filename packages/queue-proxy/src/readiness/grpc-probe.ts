// gRPC readiness probe (spec §1.7) without a gRPC library: one unary call of
// grpc.health.v1.Health/Check over an h2c prior-knowledge connection to
// 127.0.0.1:<port>. Ready only on status SERVING with grpc-status 0. Error
// texts follow Knative's (which wrap grpc-go's `rpc error: code = X desc = Y`).
import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2'
import { UserAgent } from '@sluice/core/constants'
import type { GRPCAction } from './probe-spec.ts'
import { dialErrorText, joinHostPort } from './tcp-probe.ts'

const HOST = '127.0.0.1'
const CHECK_PATH = '/grpc.health.v1.Health/Check'
const STATUS_SERVING = 1

/** grpc-go's codes.Code String() names. */
const CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented',
  'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
] as const
const CODE_UNKNOWN = 2
const CODE_DEADLINE_EXCEEDED = 4
const CODE_UNIMPLEMENTED = 12
const CODE_INTERNAL = 13
const CODE_UNAVAILABLE = 14

/** HealthCheckResponse.ServingStatus names. */
const SERVING_STATUS_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const

/** What grpc-go reports for a non-200 HTTP status (status mapping of the gRPC HTTP/2 spec). */
const HTTP_TO_GRPC: Readonly<Record<number, number>> = { 400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14 }

class RpcError extends Error {
  readonly code: number
  constructor(code: number, desc: string) {
    super(`rpc error: code = ${CODE_NAMES[code] ?? `Code(${code})`} desc = ${desc}`)
    this.code = code
  }
}

/** Go's time.Duration String() for whole milliseconds. */
export function formatGoDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`
  return `${ms / 1000}s`
}

/** The request message: 5-byte gRPC frame header, then HealthCheckRequest{service = 1}. */
export function encodeHealthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8')
  const field = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name])
  const frame = Buffer.alloc(5 + field.length)
  frame.writeUInt32BE(field.length, 1)
  field.copy(frame, 5)
  return frame
}

/** Decodes HealthCheckResponse (field 1: enum status); unknown fields are skipped. */
export function decodeHealthCheckResponse(msg: Buffer): number {
  let status = 0
  let i = 0
  while (i < msg.length) {
    const [key, afterKey] = readVarint(msg, i)
    i = afterKey
    const wireType = key & 7
    if (wireType === 0) {
      const [value, next] = readVarint(msg, i)
      if (key >>> 3 === 1) status = value
      i = next
    } else if (wireType === 2) {
      const [len, next] = readVarint(msg, i)
      i = next + len
    } else if (wireType === 1) {
      i += 8
    } else if (wireType === 5) {
      i += 4
    } else {
      throw new Error(`unsupported protobuf wire type ${wireType}`)
    }
  }
  if (i > msg.length) throw new Error('truncated protobuf message')
  return status
}

function varint(n: number): Buffer {
  const bytes: number[] = []
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  bytes.push(n)
  return Buffer.from(bytes)
}

function readVarint(buf: Buffer, start: number): [number, number] {
  let value = 0
  let shift = 0
  for (let i = start; i < buf.length && shift < 35; i++) {
    const b = buf[i]!
    value += (b & 0x7f) * 2 ** shift
    shift += 7
    if ((b & 0x80) === 0) return [value, i + 1]
  }
  throw new Error('truncated protobuf varint')
}

export class GrpcProbe {
  readonly port: number
  readonly service: string
  private readonly origin: string
  private readonly body: Buffer

  constructor(action: GRPCAction) {
    this.port = action.port
    this.service = action.service
    this.origin = `http://${joinHostPort(HOST, action.port)}`
    this.body = encodeHealthCheckRequest(action.service)
  }

  /** Resolves when the server reports SERVING; rejects with a one-line reason otherwise. */
  async run(timeoutMs: number): Promise<void> {
    let status: number
    try {
      status = await this.check(timeoutMs)
    } catch (err) {
      if (!(err instanceof RpcError)) throw err
      if (err.code === CODE_UNIMPLEMENTED) {
        throw new Error(`this server does not implement the grpc health protocol (grpc.health.v1.Health) ${err.message}`, { cause: err })
      }
      if (err.code === CODE_DEADLINE_EXCEEDED) {
        throw new Error(`health rpc did not complete within ${formatGoDuration(timeoutMs)}: ${err.message}`, { cause: err })
      }
      throw new Error(`health rpc probe failed: ${err.message}`, { cause: err })
    }
    if (status !== STATUS_SERVING) {
      throw new Error(`service unhealthy (responded with "${SERVING_STATUS_NAMES[status] ?? String(status)}")`)
    }
  }

  /** One Check call; resolves with the serving status, rejects with an RpcError. */
  private check(timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      // node:http2 is loaded on first use: most revisions have no gRPC probe (start-up cost).
      const http2 = process.getBuiltinModule('node:http2')
      const h2 = http2.constants
      const session: ClientHttp2Session = http2.connect(this.origin)
      let settled = false
      const settle = (err: RpcError | undefined, status: number): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        session.destroy()
        if (err) reject(err)
        else resolve(status)
      }
      const timer = setTimeout(() => settle(new RpcError(CODE_DEADLINE_EXCEEDED, 'context deadline exceeded'), 0), timeoutMs)
      const connectionError = (err: NodeJS.ErrnoException): RpcError => {
        const dial = dialErrorText(err, joinHostPort(HOST, this.port))
        return new RpcError(CODE_UNAVAILABLE, `connection error: ${dial ?? err.message}`)
      }
      session.on('error', (err: NodeJS.ErrnoException) => settle(connectionError(err), 0))

      const headers: OutgoingHttpHeaders = {
        [h2.HTTP2_HEADER_METHOD]: 'POST',
        [h2.HTTP2_HEADER_PATH]: CHECK_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
        'user-agent': UserAgent.queueHttpProbe,
        'grpc-timeout': `${Math.max(1, timeoutMs)}m`,
      }
      const stream = session.request(headers)
      const chunks: Buffer[] = []
      let httpStatus = 0
      let grpcStatus: number | undefined
      let grpcMessage = ''
      const readStatus = (h: IncomingHttpHeaders): void => {
        const s = h['grpc-status']
        if (s === undefined) return
        grpcStatus = Number(s)
        grpcMessage = decodeGrpcMessage(h['grpc-message'])
      }
      stream.on('response', (h: IncomingHttpHeaders) => {
        httpStatus = Number(h[h2.HTTP2_HEADER_STATUS])
        readStatus(h) // trailers-only responses carry the status here
        if (httpStatus !== 200) {
          const code = HTTP_TO_GRPC[httpStatus] ?? CODE_UNKNOWN
          settle(new RpcError(code, `unexpected HTTP status code received from server: ${httpStatus}`), 0)
          return
        }
        const type = String(h['content-type'] ?? '')
        if (!type.startsWith('application/grpc')) {
          settle(new RpcError(CODE_INTERNAL, `transport: received unexpected content-type "${type}"`), 0)
        }
      })
      stream.on('trailers', readStatus)
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('error', (err: Error) => {
        // Before response headers it is the connection that failed (a pending
        // stream carries the connection's error as its cause), like grpc-go's Unavailable.
        if (httpStatus !== 0) settle(new RpcError(CODE_INTERNAL, err.message), 0)
        else settle(connectionError(err.cause instanceof Error ? err.cause : err), 0)
      })
      stream.on('close', () => {
        if (grpcStatus === undefined) {
          const rst = stream.rstCode ?? 0
          const desc = rst !== 0 ? `stream terminated by RST_STREAM with error code: ${rst}` : 'server closed the stream without sending trailers'
          settle(new RpcError(CODE_INTERNAL, desc), 0)
          return
        }
        if (grpcStatus !== 0) {
          settle(new RpcError(grpcStatus, grpcMessage), 0)
          return
        }
        try {
          settle(undefined, decodeHealthCheckResponse(firstMessage(Buffer.concat(chunks))))
        } catch (err) {
          settle(new RpcError(CODE_INTERNAL, (err as Error).message), 0)
        }
      })
      stream.end(this.body)
    })
  }
}

/** The single length-prefixed message of a unary response. */
function firstMessage(data: Buffer): Buffer {
  if (data.length < 5) throw new Error('no response message received')
  if (data[0] !== 0) throw new Error('compressed response message but no compression was negotiated')
  const len = data.readUInt32BE(1)
  if (data.length < 5 + len) throw new Error('truncated response message')
  return data.subarray(5, 5 + len)
}

/** grpc-message is percent-encoded (gRPC HTTP/2 spec). */
function decodeGrpcMessage(v: string | string[] | undefined): string {
  const raw = (Array.isArray(v) ? v[0] : v) ?? ''
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
}
