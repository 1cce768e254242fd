// Upgrade requests (websockets) through the activator: identified and
// admitted like any request (reporter + throttler), then tunnelled as raw TCP
// to the chosen queue-proxy with the activator's headers. The tunnel holds its
// pod slot until either side closes; the revision timeout bounds it.

import type http from 'node:http'
import net from 'node:net'
import { clientIp } from '@sluice/core/http/client-ip'
import { upstreamErrorText } from '@sluice/core/http/upstream-errors'
import type { ActivatorContext } from '../context.ts'
import type { RejectReason, ThrottleWaiter } from '../net/throttler.ts'
import { revisionKey, type RevisionInfo } from '../revision.ts'
import { identifyRevision } from './context-handler.ts'
import { scanActivatorRequest, type ScannedActivatorRequest } from './request-headers.ts'

class UpgradeTunnel implements ScannedActivatorRequest, ThrottleWaiter {
  userAgent = ''
  kubeletProbe = false
  networkProbe = ''
  networkHash = ''
  revisionNamespace = ''
  revisionName = ''
  host = ''
  contentLength = 0
  upstreamHeaders: string[] = []
  queuedIn?: object | null
  throttleStart?: number

  private readonly ctx: ActivatorContext
  private readonly req: http.IncomingMessage
  private readonly client: net.Socket
  private readonly head: Buffer
  private rev: RevisionInfo | null = null
  private upstream: net.Socket | null = null
  private timer: NodeJS.Timeout | null = null
  private waiting = false
  private holdsSlot = false
  private done = false

  constructor(ctx: ActivatorContext, req: http.IncomingMessage, client: net.Socket, head: Buffer) {
    this.ctx = ctx
    this.req = req
    this.client = client
    this.head = head
    ctx.active++
    scanActivatorRequest(req.rawHeaders, clientIp(client.remoteAddress), this)
    client.on('close', () => this.close())
    client.on('error', () => this.close())
  }

  start(): void {
    const found = identifyRevision(this.ctx.source, this.revisionNamespace, this.revisionName, this.host, this.ctx.clusterDomain)
    if (!found.ok) return this.reply(found.status, found.body)
    const rev = found.revision
    this.rev = rev
    this.ctx.reporter.requestIn(rev.namespace, rev.name)
    this.timer = setTimeout(() => this.timeout(), rev.timeoutSeconds * 1000)
    this.waiting = true
    this.ctx.throttler.try(revisionKey(rev.namespace, rev.name), this, 0, rev.timeoutSeconds * 1000)
  }

  onDest(dest: string): void {
    this.waiting = false
    this.holdsSlot = true
    if (this.done) return this.close()
    const i = dest.lastIndexOf(':')
    const up = net.connect({ host: dest.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(dest.slice(i + 1)), noDelay: true })
    this.upstream = up
    up.on('connect', () => {
      let head = `${this.req.method} ${this.req.url} HTTP/1.1\r\nhost: ${dest}\r\n`
      const h = this.upstreamHeaders
      for (let j = 0; j < h.length; j += 2) head += `${h[j]}: ${h[j + 1]}\r\n`
      head += `connection: upgrade\r\nupgrade: ${this.req.headers.upgrade}\r\n\r\n`
      up.write(head)
      if (this.head.length > 0) up.write(this.head)
      up.pipe(this.client)
      this.client.pipe(up)
    })
    up.on('error', (err) => {
      if (up.bytesRead === 0) {
        this.ctx.throttler.reportFailure(revisionKey(this.rev!.namespace, this.rev!.name), dest)
        // Go's error text, as for any request (spec §2.9).
        this.reply(502, `${upstreamErrorText(err, dest)}\n`)
      } else this.close()
    })
    up.on('close', () => this.close())
  }

  onReject(reason: RejectReason, retryAfterSec: number): void {
    this.waiting = false
    this.reply(reason === 'no-revision' ? 404 : 503, reason === 'full' ? 'pending request queue full\n' : 'context deadline exceeded\n', retryAfterSec)
  }

  private timeout(): void {
    if (this.upstream === null) this.reply(504, 'activator request timeout')
    else this.close()
  }

  private reply(status: number, body: string, retryAfterSec = 0): void {
    if (this.client.writable && (this.upstream === null || this.upstream.bytesRead === 0)) {
      const extra = retryAfterSec > 0 ? `retry-after: ${retryAfterSec}\r\n` : ''
      this.client.end(`HTTP/1.1 ${status} ${reasonPhrase(status)}\r\ncontent-type: text/plain; charset=utf-8\r\n${extra}connection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    }
    this.close()
  }

  close(): void {
    if (this.done) return
    this.done = true
    const ctx = this.ctx
    if (this.timer !== null) clearTimeout(this.timer)
    if (this.waiting) ctx.throttler.cancel(this)
    if (this.holdsSlot) ctx.throttler.release(this)
    this.upstream?.destroy()
    this.client.destroySoon()
    if (this.rev !== null) ctx.reporter.requestOut(this.rev.namespace, this.rev.name)
    if (--ctx.active === 0 && ctx.onIdle !== null) ctx.onIdle()
  }
}

function reasonPhrase(status: number): string {
  return status === 404 ? 'Not Found' : status === 502 ? 'Bad Gateway' : status === 503 ? 'Service Unavailable' : status === 504 ? 'Gateway Timeout' : 'Error'
}

export function createUpgradeHandler(ctx: ActivatorContext) {
  return function onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    new UpgradeTunnel(ctx, req, socket, head).start()
  }
}
