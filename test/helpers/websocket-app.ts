// A user container with websockets and a websocket client, for the tests that
// send upgrades through the queue-proxy or the activator (ws on both ends).

import type http from 'node:http'
import type net from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { close, startApp } from './servers.ts'

export interface SeenWebsocketUpgrade {
  url: string
  headers: http.IncomingHttpHeaders
}

export interface WebsocketApp {
  port: number
  server: http.Server
  wss: WebSocketServer
  /** Every upgrade request the app received, in order (refused ones too). */
  upgrades: SeenWebsocketUpgrade[]
  stop(): Promise<void>
}

/**
 * Paths: `/refuse` answers the upgrade with 400 "no upgrade"; `/never` never
 * answers it; `/hangup` closes the connection without answering; `/slow-echo`
 * echoes after 2 s; any other path accepts, greets with `hello <path>`, then
 * echoes text as `echo:<text>` and binary as it came. Plain requests get
 * `plain <path>`.
 */
export async function startWebsocketApp(): Promise<WebsocketApp> {
  const wss = new WebSocketServer({ noServer: true })
  const app = await startApp((req, res) => res.end(`plain ${req.url}`))
  const upgrades: SeenWebsocketUpgrade[] = []
  // Upgraded sockets leave the http server's bookkeeping: destroyed by stop().
  const sockets = new Set<net.Socket>()
  app.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    upgrades.push({ url: req.url ?? '', headers: req.headers })
    if (req.url === '/refuse') {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 11\r\nconnection: close\r\n\r\nno upgrade\n')
      return
    }
    if (req.url === '/never') return
    if (req.url === '/hangup') return void socket.end()
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(`hello ${req.url}`)
      const delay = req.url === '/slow-echo' ? 2000 : 0
      ws.on('message', (data, isBinary) => {
        const reply = isBinary ? data : `echo:${data.toString()}`
        if (delay === 0) ws.send(reply)
        else setTimeout(() => { if (ws.readyState === WebSocket.OPEN) ws.send(reply) }, delay)
      })
    })
  })
  return {
    port: app.port,
    server: app.server,
    wss,
    upgrades,
    stop: async () => {
      for (const c of wss.clients) c.terminate()
      for (const s of sockets) s.destroy()
      wss.close()
      await close(app.server)
    },
  }
}

export interface WebsocketClient {
  ws: WebSocket
  /** Messages received, as text. */
  messages: string[]
  /** Resolves once open; rejects if the upgrade fails. */
  opened: Promise<void>
  /** Resolves with the close code once the socket is closed. */
  closed: Promise<number>
  /** The status of a refused upgrade (0: no HTTP answer came). */
  refused: Promise<number>
}

export function connectWebsocket(url: string, path: string, headers: Record<string, string> = {}): WebsocketClient {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}${path}`, { headers })
  const messages: string[] = []
  ws.on('message', (d) => messages.push(d.toString()))
  const opened = new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve())
    ws.on('error', reject)
  })
  opened.catch(() => {})
  const refused = new Promise<number>((resolve) => {
    ws.on('unexpected-response', (_req, res) => {
      res.resume()
      ws.terminate()
      resolve(res.statusCode ?? 0)
    })
    ws.on('error', () => resolve(0))
  })
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))
  return { ws, messages, opened, closed, refused }
}

/** The whole HTTP answer to an upgrade that is refused (status 0 if none came); rejects if it is accepted. */
export function upgradeRefusal(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}${path}`, { headers })
    ws.on('open', () => reject(new Error('upgrade unexpectedly accepted')))
    // No HTTP response at all (connection closed): status 0.
    ws.on('error', (err) => resolve({ status: 0, headers: {}, body: err.message }))
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => { ws.terminate(); resolve({ status: res.statusCode!, headers: res.headers, body }) })
    })
  })
}
