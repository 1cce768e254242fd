// The part of the `ws` package (present through tap's dependencies, without
// @types/ws) that the websocket tests use.

declare module 'ws' {
  import type { EventEmitter } from 'node:events'
  import type http from 'node:http'
  import type { Duplex } from 'node:stream'

  export class WebSocket extends EventEmitter {
    static readonly OPEN: number
    constructor(url: string, options?: { headers?: Record<string, string> })
    readonly readyState: number
    send(data: string | Buffer, cb?: (err?: Error) => void): void
    ping(data?: string | Buffer): void
    close(code?: number, reason?: string): void
    terminate(): void
    on(event: 'open', listener: () => void): this
    on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this
    on(event: 'close', listener: (code: number, reason: Buffer) => void): this
    on(event: 'error', listener: (err: Error) => void): this
    on(event: 'unexpected-response', listener: (req: http.ClientRequest, res: http.IncomingMessage) => void): this
  }

  export class WebSocketServer extends EventEmitter {
    constructor(options: { noServer: true })
    readonly clients: Set<WebSocket>
    handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket, req: http.IncomingMessage) => void): void
    close(cb?: () => void): void
  }

  export default WebSocket
}
