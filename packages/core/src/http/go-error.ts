// Replies shaped like Go's http.Error: text/plain, nosniff, the message as
// given (callers include the trailing "\n"), with a Content-Length.

import type http from 'node:http'
import { GoErrorHeaders } from '../constants.ts'

export function replyGoError(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { ...GoErrorHeaders, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
