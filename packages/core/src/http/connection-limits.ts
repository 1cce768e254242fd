// Per-connection limits of the serving ports, shared by the queue-proxy and
// the activator. Defaults are Knative's (Go's net/http server as Knative
// configures it, spec §1.4): headers within 1 minute of the connection or of
// the request's first byte, no idle timeout, TCP keep-alive on every accepted
// connection, requests on one HTTP/1.1 connection served one at a time, at
// most 250 concurrent HTTP/2 streams per connection, 1 MiB header blocks.

import { EnvError, type Env, optionalDurationMs, optionalInt } from '../env.ts'

export interface ConnectionLimits {
  /** A connection that has not sent a complete request head within this is closed (Go's ReadHeaderTimeout). */
  readHeaderTimeoutMs: number
  /** Idle keep-alive connections and HTTP/2 sessions are closed after this; 0 = never (Go's default). */
  idleTimeoutMs: number
  /** TCP keep-alive probe delay on accepted connections; 0 = off. Go's default is 15 s. */
  tcpKeepAliveMs: number
  /** Parsed HTTP/1.1 requests that may wait behind the one running on a connection. */
  maxPipelined: number
  /** Concurrent HTTP/2 streams (and running handlers) per connection. */
  maxConcurrentStreams: number
  /** Largest header block accepted from clients and from the app (431 / 502 beyond). */
  maxHeaderBytes: number
}

export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = {
  readHeaderTimeoutMs: 60_000,
  idleTimeoutMs: 0,
  tcpKeepAliveMs: 15_000,
  maxPipelined: 128,
  maxConcurrentStreams: 250,
  maxHeaderBytes: 1 << 20,
}

/** The SLUICE_* connection settings; each bad value names its variable. */
export function loadConnectionLimits(env: Env): ConnectionLimits {
  const d = DEFAULT_CONNECTION_LIMITS
  const atLeast = (name: string, fallback: number, min: number): number => {
    const n = optionalInt(env, name, fallback)
    if (n < min) throw new EnvError(name, `must be at least ${min}, got ${n}`)
    return n
  }
  const readHeaderTimeoutMs = optionalDurationMs(env, 'SLUICE_READ_HEADER_TIMEOUT', d.readHeaderTimeoutMs)
  if (readHeaderTimeoutMs <= 0) throw new EnvError('SLUICE_READ_HEADER_TIMEOUT', 'must be greater than 0')
  return {
    readHeaderTimeoutMs,
    idleTimeoutMs: optionalDurationMs(env, 'SLUICE_IDLE_CONNECTION_TIMEOUT', d.idleTimeoutMs),
    tcpKeepAliveMs: optionalDurationMs(env, 'SLUICE_TCP_KEEPALIVE', d.tcpKeepAliveMs),
    maxPipelined: atLeast('SLUICE_MAX_PIPELINED_REQUESTS', d.maxPipelined, 0),
    maxConcurrentStreams: atLeast('SLUICE_MAX_CONCURRENT_STREAMS', d.maxConcurrentStreams, 1),
    maxHeaderBytes: atLeast('SLUICE_MAX_HEADER_BYTES', d.maxHeaderBytes, 1024),
  }
}

/**
 * Node server options for the side ports (admin, metrics, profiling): Go's
 * ReadHeaderTimeout of 1 minute, no request timeout, TCP keep-alive on accepted
 * connections. Node's own checker closes silent connections there, as its
 * parser is attached at accept.
 */
export const SIDE_PORT_OPTIONS = {
  requestTimeout: 0,
  headersTimeout: 60_000,
  keepAlive: true,
  keepAliveInitialDelay: 15_000,
} as const
