// The http2 server reads a net.Socket natively and would miss the bytes the
// listener already read to sniff the protocol. Handing it a JS Duplex over
// the socket (with those bytes pushed back in) makes Node wrap it in a JS
// stream socket that sees them. Per connection, not per request.

import { Duplex } from 'node:stream'
import type net from 'node:net'

export class H2cSocket extends Duplex {
  readonly socket: net.Socket
  readonly remoteAddress: string | undefined
  readonly remotePort: number | undefined
  readonly remoteFamily: string | undefined
  readonly localAddress: string | undefined
  readonly localPort: number | undefined

  constructor(socket: net.Socket, head: Buffer) {
    super({ allowHalfOpen: false })
    this.socket = socket
    this.remoteAddress = socket.remoteAddress
    this.remotePort = socket.remotePort
    this.remoteFamily = socket.remoteFamily
    this.localAddress = socket.localAddress
    this.localPort = socket.localPort
    this.push(head)
    socket.on('data', (c: Buffer) => {
      if (!this.push(c)) socket.pause()
    })
    socket.on('end', () => this.push(null))
    socket.on('close', () => this.destroy())
    socket.on('error', (err) => this.destroy(err))
  }

  override _read(): void {
    this.socket.resume()
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.socket.write(chunk, cb)
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end(cb)
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy(err ?? undefined)
    cb(err)
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay)
    return this
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay)
    return this
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.socket.setTimeout(ms, cb)
    return this
  }
}
