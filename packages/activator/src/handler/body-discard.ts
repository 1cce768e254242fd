// What happens to the unread body of a request the activator answered itself
// (503 shed, 504 timeout, 404) while the client was still sending it.
//
// Closing such a connection with bytes unread makes the kernel send a RST,
// and a client still writing its body then gets EPIPE or ECONNRESET and may
// never read the answer. So the connection stays open and what still arrives
// is read and dropped (Node's http server does that for a request whose
// response finished unread, without buffering it), and the connection then
// serves the next request as usual. Bounded, like Go's server (256 KiB) and
// nginx's lingering close: once MAX_BYTES more have been read, or MAX_MS have
// passed, the activator half-closes (a FIN after the answer: the client sees
// the end) and destroys the socket LINGER_MS later. Node drops the bytes
// before any 'data' event, so progress is watched on the socket's byte count.

import type http from 'node:http'

/** Most body bytes dropped after an early answer before the connection is closed. */
export const DISCARD_MAX_BYTES = 4 * 1024 * 1024
/** Longest time spent dropping them. */
export const DISCARD_MAX_MS = 10_000
/** How often progress is checked. */
const CHECK_MS = 100
/** Between the FIN and the close: time for the client to read the answer. */
const LINGER_MS = 500

class Discard {
  readonly req: http.IncomingMessage
  readonly byteLimit: number
  readonly deadline: number
  readonly timer: NodeJS.Timeout

  constructor(req: http.IncomingMessage, maxBytes: number, maxMs: number) {
    this.req = req
    this.byteLimit = req.socket.bytesRead + maxBytes
    this.deadline = performance.now() + maxMs
    this.timer = setInterval(check, Math.min(CHECK_MS, maxMs), this)
    this.timer.unref()
  }
}

/** After an early answer to `req` (fully written): drop the rest of its body, within the bounds. */
export function discardRestOfBody(req: http.IncomingMessage, maxBytes = DISCARD_MAX_BYTES, maxMs = DISCARD_MAX_MS): void {
  if (req.complete || req.socket.destroyed) return
  // Node resumes an unread request when its response finishes; make sure of it.
  req.resume()
  void new Discard(req, maxBytes, maxMs)
}

function check(d: Discard): void {
  const socket = d.req.socket
  if (d.req.complete || socket.destroyed) {
    clearInterval(d.timer)
    return
  }
  if (socket.bytesRead <= d.byteLimit && performance.now() < d.deadline) return
  clearInterval(d.timer)
  socket.end()
  setTimeout(destroySocket, LINGER_MS, socket).unref()
}

function destroySocket(socket: http.IncomingMessage['socket']): void {
  socket.destroy()
}
