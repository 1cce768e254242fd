import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { createServer as createHttp2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2'
import t, { type Test } from 'tap'
import {
  GrpcProbe,
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  formatGoDuration,
} from '@sluice/queue-proxy/readiness/grpc-probe'

interface Call {
  headers: IncomingHttpHeaders
  body: Buffer
  /** Service name decoded from the request by the test's own protobuf reader. */
  service: string
}

type Reply =
  | { kind: 'status'; status: number }
  | { kind: 'trailers-only'; grpcStatus: number; message: string }
  | { kind: 'http'; status: number }
  | { kind: 'hang' }

/** Reads HealthCheckRequest.service (field 1, length-delimited) from a gRPC frame. */
function serviceOf(frame: Buffer): string {
  const len = frame.readUInt32BE(1)
  const msg = frame.subarray(5, 5 + len)
  if (msg.length === 0) return ''
  if (msg[0] !== 0x0a) throw new Error('unexpected field')
  // Test names stay short: a one-byte length varint.
  return msg.subarray(2, 2 + msg[1]!).toString('utf8')
}

/** HealthCheckResponse{status} framed; proto3 omits status 0. */
function responseFrame(status: number): Buffer {
  const msg = status === 0 ? Buffer.alloc(0) : Buffer.from([0x08, status])
  const frame = Buffer.alloc(5 + msg.length)
  frame.writeUInt32BE(msg.length, 1)
  msg.copy(frame, 5)
  return frame
}

/** A minimal grpc.health.v1 server on node:http2 (h2c prior knowledge). */
async function healthServer(t: Test, reply: (call: Call) => Reply): Promise<{ port: number; calls: Call[] }> {
  const calls: Call[] = []
  const srv = createHttp2Server()
  srv.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('error', () => {})
    stream.on('end', () => {
      const body = Buffer.concat(chunks)
      const call = { headers, body, service: serviceOf(body) }
      calls.push(call)
      const r = reply(call)
      if (r.kind === 'hang') return
      if (r.kind === 'http') {
        stream.respond({ ':status': r.status, 'content-type': 'text/plain' }, { endStream: true })
        return
      }
      if (r.kind === 'trailers-only') {
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(r.grpcStatus), 'grpc-message': encodeURIComponent(r.message) },
          { endStream: true },
        )
        return
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
      stream.end(responseFrame(r.status))
    })
  })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  t.teardown(() => srv.close())
  return { port: (srv.address() as AddressInfo).port, calls }
}

t.test('SERVING passes; the call is a proper gRPC health Check', async (t) => {
  const { port, calls } = await healthServer(t, () => ({ kind: 'status', status: 1 }))
  await new GrpcProbe({ port, service: 'my.Service' }).run(1000)
  t.equal(calls.length, 1)
  const h = calls[0]!.headers
  t.equal(h[':method'], 'POST')
  t.equal(h[':path'], '/grpc.health.v1.Health/Check')
  t.equal(h['content-type'], 'application/grpc')
  t.equal(h['te'], 'trailers')
  t.equal(h['user-agent'], 'kube-probe//')
  t.match(h['grpc-timeout'], /^\d+m$/)
  t.equal(calls[0]!.service, 'my.Service')
})

t.test('empty service name sends an empty HealthCheckRequest (5-byte frame)', async (t) => {
  const { port, calls } = await healthServer(t, () => ({ kind: 'status', status: 1 }))
  await new GrpcProbe({ port, service: '' }).run(1000)
  t.same([...calls[0]!.body], [0, 0, 0, 0, 0])
})

t.test('NOT_SERVING and UNKNOWN fail as "service unhealthy"', async (t) => {
  const notServing = await healthServer(t, () => ({ kind: 'status', status: 2 }))
  await t.rejects(new GrpcProbe({ port: notServing.port, service: '' }).run(1000), {
    message: 'service unhealthy (responded with "NOT_SERVING")',
  })
  const unknown = await healthServer(t, () => ({ kind: 'status', status: 0 }))
  await t.rejects(new GrpcProbe({ port: unknown.port, service: '' }).run(1000), {
    message: 'service unhealthy (responded with "UNKNOWN")',
  })
})

t.test('grpc-status 12 (UNIMPLEMENTED) says the server does not implement the health protocol', async (t) => {
  const { port } = await healthServer(t, () => ({ kind: 'trailers-only', grpcStatus: 12, message: 'unknown service grpc.health.v1.Health' }))
  await t.rejects(new GrpcProbe({ port, service: '' }).run(1000), {
    message:
      'this server does not implement the grpc health protocol (grpc.health.v1.Health) rpc error: code = Unimplemented desc = unknown service grpc.health.v1.Health',
  })
})

t.test('other grpc-status codes fail as "health rpc probe failed"', async (t) => {
  const { port } = await healthServer(t, () => ({ kind: 'trailers-only', grpcStatus: 5, message: 'unknown service' }))
  await t.rejects(new GrpcProbe({ port, service: 'x' }).run(1000), {
    message: 'health rpc probe failed: rpc error: code = NotFound desc = unknown service',
  })
})

t.test('a non-200 HTTP status maps like grpc-go (404 -> Unimplemented)', async (t) => {
  const { port } = await healthServer(t, () => ({ kind: 'http', status: 404 }))
  await t.rejects(new GrpcProbe({ port, service: '' }).run(1000), {
    message: /^this server does not implement the grpc health protocol .*code = Unimplemented desc = unexpected HTTP status code received from server: 404$/,
  })
})

t.test('a server that never answers fails with a deadline message', async (t) => {
  const { port, calls } = await healthServer(t, () => ({ kind: 'hang' }))
  const started = Date.now()
  await t.rejects(new GrpcProbe({ port, service: '' }).run(150), {
    message: 'health rpc did not complete within 150ms: rpc error: code = DeadlineExceeded desc = context deadline exceeded',
  })
  t.equal(calls.length, 1)
  t.ok(Date.now() - started < 1000, 'gave up at the timeout')
})

t.test('connection refused fails as Unavailable', async (t) => {
  const srv = createServer().listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address() as AddressInfo
  srv.close()
  await once(srv, 'close')
  await t.rejects(new GrpcProbe({ port, service: '' }).run(1000), {
    message: `health rpc probe failed: rpc error: code = Unavailable desc = connection error: dial tcp 127.0.0.1:${port}: connect: connection refused`,
  })
})

t.test('protobuf helpers: request encoding, response decoding with unknown fields, Go durations', async (t) => {
  t.same([...encodeHealthCheckRequest('ab')], [0, 0, 0, 0, 4, 0x0a, 2, 0x61, 0x62])
  // field 2 (string "zz") before field 1 = SERVING, then a fixed32 field 3.
  t.equal(decodeHealthCheckResponse(Buffer.from([0x12, 2, 0x7a, 0x7a, 0x08, 1, 0x1d, 0, 0, 0, 0])), 1)
  t.equal(decodeHealthCheckResponse(Buffer.alloc(0)), 0)
  t.throws(() => decodeHealthCheckResponse(Buffer.from([0x08])))
  t.equal(formatGoDuration(100), '100ms')
  t.equal(formatGoDuration(1000), '1s')
  t.equal(formatGoDuration(2500), '2.5s')
})
