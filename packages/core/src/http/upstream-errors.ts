// Go-style error strings for 502 bodies (what Knative's error handler prints),
// e.g. "dial tcp 127.0.0.1:8080: connect: connection refused".

export function upstreamErrorText(err: Error, origin: string, maxHeaderBytes = 1 << 20): string {
  const code = (err as NodeJS.ErrnoException).code
  const addr = origin.replace(/^https?:\/\//, '')
  switch (code) {
    case 'ECONNREFUSED': return `dial tcp ${addr}: connect: connection refused`
    case 'ECONNRESET': return `read tcp ${addr}: read: connection reset by peer`
    case 'UND_ERR_SOCKET': return err.message === 'other side closed' ? 'EOF' : err.message
    case 'UND_ERR_CONNECT_TIMEOUT': return `dial tcp ${addr}: i/o timeout`
    // Go's transport words it so; a clear cause for the app's owner, never a silent truncation.
    case 'UND_ERR_HEADERS_OVERFLOW': return `net/http: server response headers exceeded ${maxHeaderBytes} bytes; aborted`
    case 'EPIPE': return `write tcp ${addr}: write: broken pipe`
    default: return err.message
  }
}
