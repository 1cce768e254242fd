// The durable websocket to the autoscaler's stat server (spec §2.11, §3.3;
// knative.dev/pkg/websocket's durable sending connection): one binary
// WireStatMessages frame per batch, pings with a pong deadline, reconnect
// with jittered exponential back-off. Batches are dropped, not buffered,
// while the connection is down, as in Knative.

import { WebSocket } from 'ws'
import { encodeWireStatMessages, type WireStatMessage } from '@sluice/core/stat-proto'
import type { Logger } from '@sluice/core/logging'

export interface BackoffOptions {
  initialMs: number
  factor: number
  /** Each wait is stretched by up to this fraction, at random. */
  jitter: number
  /** Attempts per cycle; after a failed cycle the next one starts at once. */
  steps: number
}

/** k8s wait.Backoff{Duration: 100ms, Factor: 1.3, Jitter: 0.5, Steps: 20}. */
export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = { initialMs: 100, factor: 1.3, jitter: 0.5, steps: 20 }

export interface StatSenderOptions {
  /** ws:// or wss:// URL of the stat server (see autoscaler-url.ts). */
  url: string
  log: Logger
  /** Ping period; 10 s / 3 as Knative. */
  pingIntervalMs?: number
  /** The connection is dropped when no pong arrives for this long; 10 s. */
  pongTimeoutMs?: number
  /** Dial (TCP + upgrade) timeout; 3 s. */
  handshakeTimeoutMs?: number
  backoff?: Partial<BackoffOptions>
  /**
   * A batch is dropped instead of queued when this much is still unsent (an
   * autoscaler that stopped reading must not grow our memory); 1 MiB.
   */
  maxBufferedBytes?: number
  onStateChange?: (connected: boolean) => void
}

/** Close code the stat server sends when it shuts down: come back at once. */
export const CLOSE_SERVICE_RESTART = 1012

export class StatSender {
  readonly url: string
  /** Connection state changes (after `connected` changed). */
  onStateChange: ((connected: boolean) => void) | undefined
  /** Failed connection attempts. */
  connectErrors = 0
  /** Established connections that broke (close, error, pong timeout). */
  disconnects = 0
  /** Batches dropped because no connection was up (or it was backed up). */
  dropped = 0
  /** Batches handed to the socket. */
  sent = 0

  private readonly log: Logger
  private readonly pingIntervalMs: number
  private readonly pongTimeoutMs: number
  private readonly handshakeTimeoutMs: number
  private readonly backoff: BackoffOptions
  private readonly maxBufferedBytes: number
  private ws: WebSocket | undefined
  private isConnected = false
  private running = false
  /** Failed attempts in the current back-off cycle. */
  private failures = 0
  private retryTimer: NodeJS.Timeout | undefined
  private pingTimer: NodeJS.Timeout | undefined
  private pongTimer: NodeJS.Timeout | undefined

  constructor(opts: StatSenderOptions) {
    this.url = opts.url
    this.log = opts.log
    this.pingIntervalMs = opts.pingIntervalMs ?? 10_000 / 3
    this.pongTimeoutMs = opts.pongTimeoutMs ?? 10_000
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 3_000
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff }
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 1 << 20
    this.onStateChange = opts.onStateChange
  }

  get connected(): boolean {
    return this.isConnected
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.failures = 0
    this.log.info({ url: this.url }, 'Connecting to the autoscaler')
    this.dial()
  }

  /** Encodes the batch and sends it as ONE binary frame, or drops it. */
  /** Returns false when the batch was dropped. */
  send(msgs: WireStatMessage[]): boolean {
    const ws = this.ws
    if (!this.isConnected || ws === undefined || ws.readyState !== WebSocket.OPEN) {
      this.drop(msgs.length, 'not connected')
      return false
    }
    if (ws.bufferedAmount > this.maxBufferedBytes) {
      this.drop(msgs.length, 'send buffer full')
      return false
    }
    // A Buffer always goes out as a binary frame.
    ws.send(encodeWireStatMessages(msgs))
    this.sent++
    return true
  }

  /** Stops reconnecting and closes the connection cleanly (close 1000). */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.clearRetry()
    this.clearKeepalive()
    this.setConnected(false)
    const ws = this.ws
    if (ws === undefined) return
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
    if (ws.readyState === WebSocket.CONNECTING) {
      ws.terminate()
    } else if (ws.readyState === WebSocket.OPEN) {
      ws.close(1000)
      // A peer that never answers the close frame must not hold stop() up.
      const force = setTimeout(() => ws.terminate(), 2_000)
      force.unref()
      void closed.then(() => clearTimeout(force))
    }
    await closed
  }

  private drop(count: number, reason: string): void {
    this.dropped++
    this.log.debug({ url: this.url, messages: count, reason }, 'Dropping stats batch')
  }

  private dial(): void {
    this.retryTimer = undefined
    if (!this.running) return
    const ws = new WebSocket(this.url, {
      handshakeTimeout: this.handshakeTimeoutMs,
      // gorilla's dialer offers no compression; neither do we.
      perMessageDeflate: false,
    })
    this.ws = ws
    let lastError: Error | undefined
    ws.on('open', () => this.opened(ws))
    ws.on('pong', () => this.pongTimer?.refresh())
    ws.on('error', (err) => {
      lastError = err
    })
    ws.on('close', (code) => this.closed(ws, code, lastError))
  }

  private opened(ws: WebSocket): void {
    if (ws !== this.ws) return
    this.failures = 0
    this.log.info({ url: this.url }, 'Connected to the autoscaler')
    // Knative's read deadline: only a pong extends it.
    this.pongTimer = setTimeout(() => {
      this.log.warn({ url: this.url, timeoutMs: this.pongTimeoutMs }, 'No pong from the autoscaler, dropping the connection')
      ws.terminate()
    }, this.pongTimeoutMs)
    this.pongTimer.unref()
    this.pingTimer = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.ping()
    }, this.pingIntervalMs)
    this.pingTimer.unref()
    this.setConnected(true)
  }

  private closed(ws: WebSocket, code: number, err: Error | undefined): void {
    if (ws !== this.ws) return
    this.ws = undefined
    this.clearKeepalive()
    if (!this.running) return
    const error = err?.message
    if (this.isConnected) {
      this.disconnects++
      this.setConnected(false)
      this.log.warn({ url: this.url, code, error }, 'Connection to the autoscaler broke down, reconnecting')
      this.failures = 0
      // The stat server is restarting: its successor is (or soon will be) up.
      if (code === CLOSE_SERVICE_RESTART) {
        this.schedule(0)
        return
      }
      // Any other drop counts as the first failure of a new back-off cycle.
    } else {
      this.connectErrors++
      this.log.debug({ url: this.url, code, error, attempt: this.failures + 1 }, 'Connecting to the autoscaler failed')
    }
    this.failures++
    if (this.failures >= this.backoff.steps) {
      // As wait.ExponentialBackoff running out: report, then a new cycle at once.
      this.log.error({ url: this.url, attempts: this.failures, error }, 'Failed connecting to the autoscaler')
      this.failures = 0
      this.schedule(0)
      return
    }
    this.schedule(this.delay(this.failures - 1))
  }

  /** k8s wait.Backoff.Step: initial * factor^n, plus up to jitter * that. */
  private delay(step: number): number {
    const { initialMs, factor, jitter } = this.backoff
    const d = initialMs * factor ** step
    return jitter > 0 ? d + Math.random() * jitter * d : d
  }

  private schedule(ms: number): void {
    this.retryTimer = setTimeout(() => this.dial(), ms)
    this.retryTimer.unref()
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
  }

  private clearKeepalive(): void {
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer)
    if (this.pongTimer !== undefined) clearTimeout(this.pongTimer)
    this.pingTimer = undefined
    this.pongTimer = undefined
  }

  private setConnected(connected: boolean): void {
    if (this.isConnected === connected) return
    this.isConnected = connected
    this.onStateChange?.(connected)
  }
}
