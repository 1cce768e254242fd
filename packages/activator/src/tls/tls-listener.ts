// The activator's TLS port (Knative's `https` server on 8112 with
// system-internal-tls): the same chain as the plain ports, TLS 1.3, h2 or
// HTTP/1.1 by ALPN; the certificate comes from InternalTls (swapped on rotation).

import tls from 'node:tls'
import type { DualListener } from '@sluice/core/http/listener'

export function createTlsServer(listener: DualListener): tls.Server {
  // A handshake gets as long as a plaintext request head; then the listener's limits apply.
  const server = tls.createServer({ minVersion: 'TLSv1.3', ALPNProtocols: ['h2', 'http/1.1'], handshakeTimeout: listener.limits.readHeaderTimeoutMs })
  server.on('secureConnection', (socket: tls.TLSSocket) => listener.serve(socket, socket.alpnProtocol === 'h2'))
  // With a listener here Node leaves the failed socket to it: close it.
  server.on('tlsClientError', (_err: Error, socket: tls.TLSSocket) => socket.destroy())
  return server
}
