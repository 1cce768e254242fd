// Byte-for-byte forwarding between a TCP port and a Unix socket, to reach
// into or out of a network namespace: a socket file is not tied to a network
// namespace, so a process inside one and the test outside meet at it and no
// route between the namespaces is needed. Used in-process by netns.ts and, as
// `node netns-bridge.ts <listen> <target>` (tcp:HOST:PORT or unix:PATH), run
// inside the namespace; it prints "ready" once listening and exits when its
// stdin closes (its parent is gone).

import net from 'node:net'
import { fileURLToPath } from 'node:url'

export type BridgeAddress = { path: string } | { host: string; port: number }

export function parseAddress(s: string): BridgeAddress {
  if (s.startsWith('unix:')) return { path: s.slice('unix:'.length) }
  const m = /^tcp:(.+):(\d+)$/.exec(s)
  if (m === null) throw new Error(`not tcp:HOST:PORT or unix:PATH: ${s}`)
  return { host: m[1]!, port: Number(m[2]) }
}

/** Listens on `listen`; every connection is piped to a new connection to `target`. */
export function forward(listen: BridgeAddress, target: BridgeAddress): Promise<net.Server> {
  const server = net.createServer((client) => {
    const upstream = net.connect(target as net.NetConnectOpts)
    client.pipe(upstream).pipe(client)
    const end = (): void => {
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) {
      s.on('error', end)
      s.on('close', end)
    }
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(listen, () => resolve(server))
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [listen, target] = process.argv.slice(2)
  if (listen === undefined || target === undefined) throw new Error('usage: netns-bridge.ts <listen> <target>')
  await forward(parseAddress(listen), parseAddress(target))
  process.stdout.write('ready\n')
  process.stdin.on('close', () => process.exit(0)).resume()
}
