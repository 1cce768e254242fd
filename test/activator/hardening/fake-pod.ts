// A plain HTTP server standing in for a queue-proxy in activator tests: it
// answers the activator's probes (K-Network-Probe: queue) and records every
// other request with its body's size and SHA-256; what it answers is the
// test's choice, changeable at any time (by default 200 "pod <port>" once the
// body has been read).

import { createHash } from 'node:crypto'
import http from 'node:http'
import type net from 'node:net'
import { close, listen } from '../../helpers/servers.ts'

export interface SeenRequest {
  method: string
  url: string
  bytes: number
  sha256: string
}

export type PodBehaviour = (req: http.IncomingMessage, res: http.ServerResponse, seen: SeenRequest) => void

export interface FakePod {
  readonly port: number
  /** "127.0.0.1:<port>", as endpoints list it. */
  readonly dest: string
  /** Requests other than probes, recorded once their body has been read. */
  readonly seen: SeenRequest[]
  /** What it does with each of them. */
  behaviour: PodBehaviour
  /** Stops accepting connections (new ones are refused); open ones stay. */
  stopListening(): void
  close(): Promise<void>
}

/** 200 "pod <port>". */
export function answer(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.end(`pod ${(res.socket!.address() as net.AddressInfo).port}`)
}

export async function startFakePod(behaviour: PodBehaviour = answer): Promise<FakePod> {
  const seen: SeenRequest[] = []
  // eslint-disable-next-line prefer-const -- assigned once the port is known
  let pod: FakePod
  const server = http.createServer((req, res) => {
    if (req.headers['k-network-probe'] === 'queue') {
      res.end('queue')
      return
    }
    const hash = createHash('sha256')
    let bytes = 0
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      hash.update(chunk)
    })
    req.on('end', () => {
      const s = { method: req.method!, url: req.url!, bytes, sha256: hash.digest('hex') }
      seen.push(s)
      pod.behaviour(req, res, s)
    })
  })
  const port = await listen(server)
  pod = {
    port,
    dest: `127.0.0.1:${port}`,
    seen,
    behaviour,
    stopListening: () => server.close(),
    close: async () => {
      server.closeAllConnections()
      await close(server)
    },
  }
  return pod
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}
