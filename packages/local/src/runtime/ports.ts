// Port helpers for the local runtime: ephemeral ports for instances, and a
// clear error when a fixed port the user asked for is already taken.

import net from 'node:net'

/** An ephemeral port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

export class PortInUseError extends Error {
  override name = 'PortInUseError'
}

/** Fails with a message naming the port and what wanted it. */
export function assertPortFree(port: number, what: string, host = '127.0.0.1'): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE'
        ? new PortInUseError(`port ${port} (${what}) is already in use; free it or choose another port`)
        : err)
    })
    s.listen(port, host, () => s.close(() => resolve()))
  })
}
