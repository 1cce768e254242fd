// TCP readiness probe (spec §1.7): connect within the attempt timeout, then
// close. Error texts follow Go's net.Dial wording, which is what Knative logs.
import { connect } from 'node:net'
import type { TCPSocketAction } from './probe-spec.ts'

/** `host:port`, IPv6 hosts bracketed (Go's net.JoinHostPort). */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

const DIAL_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connect: connection refused',
  EHOSTUNREACH: 'connect: no route to host',
  ENETUNREACH: 'connect: network is unreachable',
  EADDRNOTAVAIL: 'connect: cannot assign requested address',
  ETIMEDOUT: 'i/o timeout',
}

/** Go-style text for a connect failure, or undefined when `err` is not one. */
export function dialErrorText(err: NodeJS.ErrnoException, address: string): string | undefined {
  const code = err.code ?? ''
  const text = DIAL_ERRORS[code]
  if (text !== undefined) return `dial tcp ${address}: ${text}`
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `dial tcp: lookup ${address}: no such host`
  return undefined
}

export class TcpProbe {
  readonly host: string
  readonly port: number
  readonly address: string

  constructor(action: TCPSocketAction) {
    this.host = action.host
    this.port = action.port
    this.address = joinHostPort(action.host, action.port)
  }

  /** Resolves once a connection opened (and was closed again); rejects with a one-line reason. */
  run(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.host, port: this.port })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`dial tcp ${this.address}: i/o timeout`))
      }, timeoutMs)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.destroy()
        resolve()
      })
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        socket.destroy()
        reject(new Error(dialErrorText(err, this.address) ?? `dial tcp ${this.address}: ${err.message}`))
      })
    })
  }
}
