// The byte-level part of an HTTP/1.1 Upgrade (websocket) through either
// component: the request head and its Content-Length body go upstream, the
// client's other bytes are held back, and the upstream's answer decides.
//
// Only a 101 for the requested protocol splices the two sockets into a raw
// tunnel. Any other final answer is an ordinary response (as in Go's reverse
// proxy): it is relayed as framed by its own headers, and the connection then
// goes back to the HTTP/1.1 server, so the client's next request on it is
// parsed, counted and forwarded like any other (Knative's server does the
// same). Held bytes are that next request: they never reach the upstream raw.
// Where the response cannot be delimited without closing (no length), or the
// request body was not all sent, it goes out with Connection: close instead.
//
// The owner (a component's tunnel) does admission, accounting, timeouts and
// error answers; the relay tells it how the exchange ended.

import net from 'node:net'
import { refusedResponse, UpgradeResponse, UpstreamHeadError, type ResponseBody } from './upgrade-response.ts'
import { serveAgain } from './listener.ts'

/** What a relay reports to the component that owns it. */
export interface UpgradeOwner {
  /**
   * No final answer can be relayed: the upstream failed (dial error, reset),
   * closed (UpstreamHeadError "EOF"), or sent a head to answer 502
   * (UpstreamHeadError, its message the body). `bytesRead` is what came
   * from upstream. The owner answers and closes.
   */
  upstreamFailed(err: Error, bytesRead: number): void
  /** The exchange is over. `released`: the client connection went back to HTTP and is no longer ours. */
  relayEnded(released: boolean): void
}

/** Client bytes held back before the answer; past this the client is not read (TCP backpressure). */
const HELD_MAX = 16 * 1024

const WAITING = 0
const RELAYING = 1
const SPLICED = 2
const ENDED = 3

const kRelay = Symbol('sluice.upgradeRelay')
interface Tagged { [kRelay]?: UpgradeRelay }

export interface UpgradeRequest {
  method: string
  /** The Upgrade header: what a 101 must name. */
  protocol: string
  /** Request body bytes (Content-Length) that belong to the upgrade request. */
  bodyLength: number
  /** The client may keep the connection after a refusal (HTTP/1.1, no Connection: close). */
  keepAlive: boolean
  maxHeaderBytes: number
}

export class UpgradeRelay {
  /** performance.now() of the last byte either way (idle timeouts). */
  lastTrafficAt: number
  private readonly owner: UpgradeOwner
  private readonly client: net.Socket
  private readonly req: UpgradeRequest
  private upstream: net.Socket | null = null
  private connected = false
  private phase = WAITING
  private held: Buffer[] = []
  private heldBytes = 0
  private bodyLeft: number
  private drainWait = false
  private answer: UpgradeResponse | null = null
  private body: ResponseBody | null = null
  private keepAlive = false
  /** The upstream's final answer relayed: 101, or the refusal's status; 0 before (or without) one. */
  private status = 0

  constructor(owner: UpgradeOwner, client: net.Socket, head: Buffer, req: UpgradeRequest) {
    this.owner = owner
    this.client = client
    this.req = req
    this.bodyLeft = req.bodyLength
    this.lastTrafficAt = performance.now()
    ;(client as Tagged)[kRelay] = this
    if (head.length > 0) this.hold(head)
    // Read from the start: a client leaving while its request waits is noticed (its EOF ends the socket).
    client.on('data', onClientData)
    client.on('close', onClientClose)
    client.on('error', onClientClose)
  }

  /** Before the final answer (an owner's timeout answers 504 then). */
  get waiting(): boolean {
    return this.phase === WAITING
  }

  /** The final answer the upstream gave and the client got (spans' http.status_code): 101, a refusal's status, or 0. */
  get answerStatus(): number {
    return this.status
  }

  /** Dials upstream and sends `head` (request line and headers, blank line included). */
  /** `dial`: how the upstream socket is opened (the activator's system-internal-tls passes tls.connect). */
  connect<O>(opts: O, head: string, dial: (o: O) => net.Socket = net.connect as (o: O) => net.Socket): void {
    if (this.phase === ENDED) return
    const up = dial(opts)
    up.setNoDelay(true)
    ;(up as Tagged)[kRelay] = this
    this.upstream = up
    up.write(head)
    up.on('connect', onUpstreamConnect)
    up.on('data', onUpstreamData)
    up.on('error', onUpstreamError)
    up.on('close', onUpstreamClose)
    this.answer = new UpgradeResponse(this.req.maxHeaderBytes, this.req.protocol)
  }

  /** Ends both sides (idempotent); the owner hears relayEnded(false). */
  close(): void {
    if (this.phase === ENDED) return
    this.phase = ENDED
    this.held = []
    this.upstream?.destroy()
    const c = this.client
    if (!c.writableEnded) c.end()
    c.destroySoon()
    this.owner.relayEnded(false)
  }

  /** Cuts at once (shutdown). */
  destroy(): void {
    this.close()
    this.client.destroy()
  }

  /** @internal */
  upstreamConnected(): void {
    this.connected = true
    this.sendBody()
  }

  /** @internal */
  clientData(chunk: Buffer): void {
    this.lastTrafficAt = performance.now()
    // Spliced: the pipe forwards. Ended: ignored.
    if (this.phase === SPLICED || this.phase === ENDED) return
    this.hold(chunk)
    if (this.phase === WAITING && this.connected) this.sendBody()
  }

  private hold(chunk: Buffer): void {
    this.held.push(chunk)
    this.heldBytes += chunk.length
    if (this.heldBytes >= HELD_MAX) this.client.pause()
  }

  /** Sends what is held of the request body; reads the client only while upstream keeps up and little is held. */
  private sendBody(): void {
    const up = this.upstream!
    while (this.bodyLeft > 0 && this.held.length > 0) {
      const c = this.held[0]!
      const n = Math.min(this.bodyLeft, c.length)
      if (n === c.length) this.held.shift()
      else this.held[0] = c.subarray(n)
      this.heldBytes -= n
      this.bodyLeft -= n
      up.write(n === c.length ? c : c.subarray(0, n))
    }
    if (up.writableNeedDrain) {
      if (!this.drainWait) up.once('drain', onUpstreamDrain)
      this.drainWait = true
      this.client.pause()
    } else if (this.heldBytes < HELD_MAX) this.client.resume()
  }

  /** @internal */
  upstreamDrained(): void {
    this.drainWait = false
    if (this.phase === WAITING) this.sendBody()
  }

  /** @internal */
  upstreamData(chunk: Buffer): void {
    this.lastTrafficAt = performance.now()
    if (this.phase === RELAYING) return this.relayBody(chunk)
    if (this.phase !== WAITING) return
    const a = this.answer!
    a.append(chunk)
    try {
      for (;;) {
        const step = a.next()
        if (step === 'more') return
        if (step === 'interim') this.client.write(a.head!.raw)
        else if (step === 'switched') return this.splice(a.head!.raw, a.rest())
        else return this.refused(a.rest())
      }
    } catch (err) {
      if (!(err instanceof UpstreamHeadError)) throw err
      this.failed(err)
    }
  }

  /** 101: the held bytes go first, then both sides are piped. */
  private splice(head: Buffer, rest: Buffer): void {
    this.phase = SPLICED
    this.status = 101
    const up = this.upstream!
    const client = this.client
    client.write(head)
    if (rest.length > 0) client.write(rest)
    for (const c of this.held) up.write(c)
    this.held = []
    this.heldBytes = 0
    up.pipe(client)
    client.pipe(up)
    client.resume()
  }

  /** Any other answer: relayed as one response; the held bytes wait for the HTTP server. */
  private refused(rest: Buffer): void {
    let r: ReturnType<typeof refusedResponse>
    try {
      r = refusedResponse(this.answer!.head!, this.req.method === 'HEAD')
    } catch (err) {
      return this.failed(err as Error)
    }
    // Keep the connection only where the next request's first byte is known.
    this.keepAlive = this.req.keepAlive && this.bodyLeft === 0 && !r.body.untilClose
    this.phase = RELAYING
    this.status = this.answer!.head!.status
    this.body = r.body
    this.client.write(this.keepAlive ? r.head : r.head.replace(/\r\n\r\n$/, '\r\nconnection: close\r\n\r\n'))
    if (!this.keepAlive) {
      // Read and drop what the client still sends: closing with unread bytes would reset the connection under the response.
      this.held = []
      this.heldBytes = 0
      this.client.resume()
    }
    this.relayBody(rest)
  }

  private relayBody(chunk: Buffer): void {
    const body = this.body!
    let n: number
    try {
      n = body.take(chunk)
    } catch {
      return this.close() // broken chunked framing: cut, the client sees a truncated body
    }
    if (n > 0 && !this.client.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
      this.upstream!.pause()
      this.client.once('drain', onClientDrain)
    }
    if (body.done) this.responseDone()
  }

  /** The refusal's body is complete: hand the connection back, or close it. */
  private responseDone(): void {
    const client = this.client
    if (!this.keepAlive || client.destroyed || !client.writable) return this.close()
    this.phase = ENDED
    this.upstream!.destroy()
    client.removeListener('data', onClientData)
    client.removeListener('close', onClientClose)
    client.removeListener('error', onClientClose)
    client.removeListener('drain', onClientDrain)
    const unread = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held)
    this.held = []
    this.owner.relayEnded(true)
    if (!serveAgain(client, unread)) client.destroy()
  }

  /** @internal */
  clientDrained(): void {
    if (this.phase === RELAYING) this.upstream!.resume()
  }

  /** @internal */
  upstreamClosed(): void {
    // Closed before answering: Go's transport reports EOF (mid-head: unexpected EOF).
    if (this.phase === WAITING) return this.failed(new UpstreamHeadError(this.answer?.partial === true ? 'unexpected EOF' : 'EOF'))
    // Relaying: the end of a body read until close, or a truncated one.
    if (this.phase === RELAYING) this.close()
  }

  /** @internal */
  failed(err: Error): void {
    if (this.phase !== WAITING) return this.close()
    this.owner.upstreamFailed(err, this.upstream?.bytesRead ?? 0)
  }
}

function relayOf(s: net.Socket): UpgradeRelay {
  return (s as Tagged)[kRelay]!
}
function onClientData(this: net.Socket, chunk: Buffer): void { relayOf(this).clientData(chunk) }
function onClientClose(this: net.Socket): void { relayOf(this).close() }
function onClientDrain(this: net.Socket): void { relayOf(this).clientDrained() }
function onUpstreamClose(this: net.Socket): void { relayOf(this).upstreamClosed() }
function onUpstreamData(this: net.Socket, chunk: Buffer): void { relayOf(this).upstreamData(chunk) }
function onUpstreamConnect(this: net.Socket): void { relayOf(this).upstreamConnected() }
function onUpstreamDrain(this: net.Socket): void { relayOf(this).upstreamDrained() }
function onUpstreamError(this: net.Socket, err: Error): void { relayOf(this).failed(err) }

/** Whether the client asked to keep the connection (HTTP/1.1 without a close token). */
export function clientKeepsAlive(httpVersion: string, connection: string | undefined): boolean {
  if (httpVersion !== '1.1') return false
  if (connection === undefined) return true
  for (const t of connection.split(',')) if (t.trim().toLowerCase() === 'close') return false
  return true
}
