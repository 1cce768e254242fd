// How much of a waiting HTTP/1.1 upload's body the activator reads, and how
// it notices the client leaving.
//
// Read-ahead. Node reads a request body while its stream buffer is below the
// high-water mark (64 KiB), and each socket read takes up to 64 KiB: an
// unread body costs ~128 KiB of buffers (~167 KiB of RSS for a waiting 1 MiB
// upload). A waiting upload's socket is held instead, as node:http holds one
// whose responses back up, right after the read that brought the head: at
// most 64 KiB of body is in memory, the rest stays in the kernel and the
// client is held back by TCP flow control until a pod slot is free. Then the
// socket is let go and the body streams to the pod.
//
// Noticing aborts. A socket not being read does not see its client go: a FIN
// arrives only after every byte sent before it, so behind an unread body it
// never arrives (it waits in the client's send buffer behind a zero window),
// and the request would wait, counted as concurrency for the autoscaler, until
// its revision timeout. Two measures, and a limit:
//  - A shared read-ahead pool (maxReadAheadBytes, 8 MiB by default) lets the
//    first waiting uploads read up to EXTRA_READ_AHEAD_BYTES more: a client
//    that gave up after sending less than ~256 KiB is then read to its FIN,
//    and Node ends the request at once. The pool bounds what this costs
//    however many uploads wait; later ones keep the 64 KiB.
//  - Every interval the kernel's connection table (tcp-table.ts) is read for
//    the held sockets: a connection reset by the client is gone from it, one
//    whose FIN did reach this host (the unread rest fitted in the receive
//    window) is in CLOSE_WAIT; either is destroyed, as Node would on reading
//    the FIN. The table is read off the event loop and costs ~130 ms of
//    kernel time at 16,000 connections, so the interval stretches to 10x the
//    last scan (at most 5 s): about 10 % of a core at worst.
//  - A client that closed (not reset) after sending more than its read-ahead
//    plus a receive window cannot be told from one still sending; it is
//    noticed when its request is released or times out. Reading further would
//    spend the memory this saves.
// Where the table cannot be read (not Linux) only the first measure applies.
//
// HTTP/2 uploads need none of this: a stream's flow-control window bounds
// what is read ahead (64 KiB), and the session keeps reading, so a client's
// RST_STREAM is seen at once.

import type net from 'node:net'
import type { Logger } from '@sluice/core/logging'
import { readTcpStates, TcpState, tcpFamily, tcpKey, type TcpFamily } from '../net/tcp-table.ts'

/** Most a waiting upload may read beyond its first 64 KiB, from the shared pool. */
export const EXTRA_READ_AHEAD_BYTES = 192 * 1024
/** Default size of that pool, activator-wide. */
export const DEFAULT_READ_AHEAD_POOL_BYTES = 8 * 1024 * 1024

// node:http internals used here (the tests on read-ahead would catch a change):
//  - socket._paused: the server's own "do not read this connection" flag (set
//    when responses back up). readStart() from the request stream and the
//    server's 'resume' handler honour it; a bare socket.pause() is undone by
//    them (on a connection's first request the listener's deferred resume
//    restarts the socket after the handler ran, and reading never stops).
//  - socket.parser: paused by the server once _paused is seen; resumed with it.
//  - req._readableState.highWaterMark: how much body Node buffers unread.

interface HttpSocket extends net.Socket {
  _paused?: boolean
  parser?: { resume(): void } | null
}

interface RequestStream {
  readonly socket: HttpSocket
  readonly complete: boolean
  readonly _readableState: { highWaterMark: number }
}

/** A waiting request with a body (the exchange implements it). */
export interface WaitingUpload {
  readonly req: { readonly socket: net.Socket; readonly complete: boolean }
  /** Bookkeeping owned by WaitingUploads. */
  upload: UploadState | null
}

export class UploadState {
  /** Connection-table key of the socket ('' if unknown). */
  key = ''
  /** The scan round it started waiting in. */
  round = 0
  /** Found ESTABLISHED in a scan: its key is right, so once missing it is gone. */
  seen = false
  /** Read-ahead granted from the pool. */
  grant = 0
  /** The request stream's own high-water mark, restored on release. */
  highWaterMark = 0
}

export interface WaitingUploadsOptions {
  log?: Logger
  /** The shared read-ahead pool (SLUICE_MAX_READ_AHEAD_BYTES); 0: 64 KiB each, no more. */
  maxReadAheadBytes?: number
  /** Shortest time between two scans of the connection table (default 250 ms). */
  minIntervalMs?: number
  /** Called for each upload ended because its client had gone. */
  onAbandoned?: () => void
}

const FAMILIES: readonly TcpFamily[] = ['tcp', 'tcp6']
/** Scans repeat after 10x the last one's duration, within these bounds. */
const MAX_INTERVAL_MS = 5000

export class WaitingUploads {
  /** Uploads ended because the connection table showed their client gone. */
  abandoned = 0
  /** Read-ahead granted from the pool right now. */
  readAheadBytes = 0
  /** Duration of the last scan of the connection table, ms. */
  lastScanMs = 0
  readonly maxReadAheadBytes: number
  private readonly uploads = new Set<WaitingUpload>()
  private readonly log: Logger | undefined
  private readonly minIntervalMs: number
  private readonly onAbandoned: (() => void) | undefined
  private intervalMs: number
  private timer: NodeJS.Timeout | null = null
  private scanning = false
  private closed = false
  private round = 0
  /** Families whose table could not be read. */
  private readonly unreadable = new Set<TcpFamily>()
  /** Some key of ours was found in a table: keys are formed right, so a missing one is gone. */
  private matched = false

  constructor(opts: WaitingUploadsOptions = {}) {
    this.log = opts.log
    this.maxReadAheadBytes = opts.maxReadAheadBytes ?? DEFAULT_READ_AHEAD_POOL_BYTES
    this.minIntervalMs = opts.minIntervalMs ?? 250
    this.intervalMs = this.minIntervalMs
    this.onAbandoned = opts.onAbandoned
  }

  /** Uploads held right now. */
  get size(): number {
    return this.uploads.size
  }

  /**
   * `u` waits with its body still arriving (`contentLength` -1 if unknown):
   * stop reading it after the read in hand, or after its grant from the pool,
   * and watch its connection.
   */
  hold(u: WaitingUpload, contentLength: number): void {
    if (u.upload !== null) return
    const req = u.req as RequestStream
    const s = req.socket
    if (s._paused !== false || s.destroyed) return // held by the server itself, or gone
    const st = new UploadState()
    // A body that fits the extra read-ahead is read whole (so is its client's FIN).
    const wanted = contentLength < 0 || contentLength > EXTRA_READ_AHEAD_BYTES ? EXTRA_READ_AHEAD_BYTES : contentLength
    st.grant = this.readAheadBytes + wanted <= this.maxReadAheadBytes ? wanted : 0
    this.readAheadBytes += st.grant
    st.highWaterMark = req._readableState.highWaterMark
    st.key = tcpKey(s.localAddress, s.localPort, s.remoteAddress, s.remotePort)
    st.round = this.round
    u.upload = st
    this.uploads.add(u)
    s._paused = true
    s.pause()
    // Read on up to the grant once any resume already queued for the socket has run.
    if (st.grant > 0) setImmediate(readGrant, u)
    this.schedule()
  }

  /** `u` got a pod, or ended: its body is read at the usual pace again (to the pod, or discarded). */
  release(u: WaitingUpload): void {
    const st = u.upload
    if (st === null) return
    u.upload = null
    this.uploads.delete(u)
    this.readAheadBytes -= st.grant
    const req = u.req as RequestStream
    req._readableState.highWaterMark = st.highWaterMark
    resumeSocket(req.socket)
  }

  close(): void {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  private schedule(): void {
    if (this.timer !== null || this.scanning || this.closed || this.uploads.size === 0) return
    this.timer = setTimeout(runScan, this.intervalMs, this)
    this.timer.unref()
  }

  /** One pass over the connection table for the held uploads whose body is still arriving. */
  async scan(): Promise<void> {
    this.timer = null
    this.scanning = true
    const round = ++this.round
    const started = performance.now()
    try {
      const wanted: Record<TcpFamily, Set<string>> = { tcp: new Set(), tcp6: new Set() }
      for (const u of this.uploads) {
        const req = u.req as RequestStream
        // A whole body read: Node reads on after it and sees a FIN itself.
        if (req.complete || req.socket.destroyed) continue
        const key = u.upload!.key
        if (key !== '') wanted[tcpFamily(key)].add(key)
      }
      for (const family of FAMILIES) {
        if (wanted[family].size === 0 || this.unreadable.has(family)) continue
        let states: Map<string, string>
        try {
          states = await readTcpStates(family, wanted[family])
        } catch (err) {
          this.unreadable.add(family)
          this.log?.warn({ err: (err as Error).message, family }, 'cannot read the connection table: clients leaving waiting uploads are noticed later')
          continue
        }
        if (states.size > 0) this.matched = true
        this.endAbandoned(family, states, round)
      }
    } finally {
      this.scanning = false
      this.lastScanMs = performance.now() - started
      this.intervalMs = Math.min(MAX_INTERVAL_MS, Math.max(this.minIntervalMs, 10 * this.lastScanMs))
      this.schedule()
    }
  }

  private endAbandoned(family: TcpFamily, states: Map<string, string>, round: number): void {
    for (const u of this.uploads) {
      const st = u.upload!
      const req = u.req as RequestStream
      // Held after the table was read, complete, or in the other table: not judged now.
      if (st.round >= round || st.key === '' || req.complete || tcpFamily(st.key) !== family) continue
      const state = states.get(st.key)
      if (state === TcpState.established) {
        st.seen = true
        continue
      }
      // Missing from the table: reset, unless the key is wrong (never matched anything).
      if (state === undefined && !st.seen && !this.matched) continue
      this.abandoned++
      this.onAbandoned?.()
      // CLOSE_WAIT (FIN) or gone (RST): end it as Node does on reading a FIN under a request.
      req.socket.destroy()
    }
  }
}

function runScan(w: WaitingUploads): void {
  void w.scan()
}

// Node buffers body until the stream holds highWaterMark bytes, a socket read
// (<= 64 KiB) at a time, then stops the socket itself: < grant + 64 KiB read.
function readGrant(u: WaitingUpload): void {
  const st = u.upload
  if (st === null) return
  const req = u.req as RequestStream
  req._readableState.highWaterMark = st.grant
  resumeSocket(req.socket)
}

/** As node:http resumes a socket it held (socketOnDrain). */
function resumeSocket(s: HttpSocket): void {
  if (s.destroyed || s._paused !== true) return
  s._paused = false
  s.parser?.resume()
  s.resume()
}
