// An upload as the harshest well-behaved client sends it: its own connection,
// the request head and as much of the body as it wants written at once (what
// the kernel does not take waits in the client's buffer), the response read
// as it arrives. The outcome says whether a complete response came back, and
// how the connection ended.

import net from 'node:net'

export interface UploadOutcome {
  /** Status of a complete response (head and Content-Length body), 0 if none. */
  status: number
  headers: Record<string, string>
  body: string
  /** The error that ended the connection (ECONNRESET, EPIPE), if one did. */
  error: string | undefined
}

export interface RawUpload {
  socket: net.Socket
  /** Resolves once a complete response arrived or the connection ended. */
  done: Promise<UploadOutcome>
}

/**
 * POST `path` declaring `declared` body bytes and writing `body` (all of it,
 * or a prefix to leave the upload unfinished).
 */
export function rawUpload(port: number, path: string, headers: Record<string, string>, declared: number, body: Buffer): RawUpload {
  const socket = net.connect(port, '127.0.0.1')
  let head = `POST ${path} HTTP/1.1\r\nhost: example.com\r\ncontent-length: ${declared}\r\n`
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`
  socket.write(`${head}\r\n`)
  if (body.length > 0) socket.write(body)
  const done = new Promise<UploadOutcome>((resolve) => {
    let text = ''
    let error: string | undefined
    const finish = (): void => resolve({ ...parse(text), error })
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      text += chunk
      if (parse(text).status !== 0) finish()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => { error = err.code ?? err.message })
    socket.on('close', finish)
  })
  return { socket, done }
}

function parse(text: string): Omit<UploadOutcome, 'error'> {
  const none = { status: 0, headers: {}, body: '' }
  const end = text.indexOf('\r\n\r\n')
  if (end < 0) return none
  const lines = text.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
  }
  const body = text.slice(end + 4)
  if (body.length < Number(headers['content-length'] ?? 0)) return none
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0]!)?.[1] ?? 0), headers, body }
}
