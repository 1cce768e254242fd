// System-internal TLS (spec §1.16): when tls.crt and tls.key are mounted, a
// TLS 1.3 listener serves the same chain (h2 or HTTP/1.1 by ALPN). The files
// are re-read every minute and the key pair swapped when either changes.

import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import tls from 'node:tls'
import type { Logger } from '@sluice/core/logging'
import type { DualListener } from '@sluice/core/http/listener'

export const CERT_RELOAD_MS = 60_000

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

export async function loadTlsListener(dir: string, listener: DualListener, log: Logger, reloadMs = CERT_RELOAD_MS): Promise<tls.Server | null> {
  const certPath = join(dir, 'tls.crt')
  const keyPath = join(dir, 'tls.key')
  if (!(await exists(certPath)) || !(await exists(keyPath))) return null
  let cert = await readFile(certPath)
  let key = await readFile(keyPath)
  let digest = hashOf(cert, key)
  // A handshake gets as long as a plaintext request head; then the listener's limits apply.
  const server = tls.createServer({ cert, key, minVersion: 'TLSv1.3', ALPNProtocols: ['h2', 'http/1.1'], handshakeTimeout: listener.limits.readHeaderTimeoutMs })
  server.on('secureConnection', (socket: tls.TLSSocket) => listener.serve(socket, socket.alpnProtocol === 'h2'))
  // With a listener here Node leaves the failed socket to it: close it (handshake timeout, bad hello).
  server.on('tlsClientError', destroySocket)
  const timer = setInterval(() => {
    Promise.all([readFile(certPath), readFile(keyPath)]).then(([c, k]) => {
      const d = hashOf(c, k)
      if (d === digest) return
      // A pair read mid-update (new key, old certificate) throws here: keep serving the old
      // one and try again on the next tick, as Knative's watcher does.
      server.setSecureContext({ cert: c, key: k, minVersion: 'TLSv1.3', ALPNProtocols: ['h2', 'http/1.1'] } as tls.SecureContextOptions)
      cert = c
      key = k
      digest = d
      log.info('reloaded TLS certificate')
    }).catch((err: Error) => log.error({ err: err.message }, 'failed to reload TLS certificate'))
  }, reloadMs)
  timer.unref()
  server.once('close', () => clearInterval(timer))
  return server
}

function destroySocket(_err: Error, socket: tls.TLSSocket): void {
  socket.destroy()
}

function hashOf(cert: Buffer, key: Buffer): string {
  return createHash('sha256').update(cert).update(key).digest('hex')
}
