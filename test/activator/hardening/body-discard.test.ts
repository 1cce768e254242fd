// The bounds on dropping an answered request's body (handler/body-discard.ts),
// with small bounds on a plain server that answers every request at once: a
// body within them is dropped and the connection kept; past the byte bound or
// the time bound the connection is closed, after the answer and a FIN.
import t, { type Test } from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import { discardRestOfBody } from '@sluice/activator/handler/body-discard'
import { close, listen } from '../../helpers/servers.ts'
import { rawUpload } from './raw-upload.ts'

const KiB = 1024

async function earlyAnswerServer(t: Test, maxBytes: number, maxMs: number): Promise<number> {
  const server = http.createServer((req, res) => {
    res.on('close', () => discardRestOfBody(req, maxBytes, maxMs))
    res.writeHead(503, { 'retry-after': '1', 'content-length': 5 }).end('full\n')
  })
  t.teardown(() => close(server))
  return listen(server)
}

t.test('a body within the bounds is dropped; the connection serves the next request', async (t) => {
  const port = await earlyAnswerServer(t, 256 * KiB, 5000)
  const u = rawUpload(port, '/', {}, 100 * KiB, Buffer.alloc(100 * KiB))
  const o = await u.done
  t.equal(o.status, 503)
  const second = new Promise<string>((resolve) => u.socket.once('data', (d: string) => resolve(d)))
  u.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n')
  t.match(await second, /^HTTP\/1\.1 503 /, 'answered on the same connection')
  u.socket.destroy()
})

t.test('past the byte bound (a client that keeps sending): the answer, then the connection closes', async (t) => {
  const port = await earlyAnswerServer(t, 256 * KiB, 5000)
  const u = rawUpload(port, '/', {}, 64 * 1024 * KiB, Buffer.alloc(64 * KiB))
  u.socket.on('error', () => {})
  const more = setInterval(() => u.socket.write(Buffer.alloc(64 * KiB)), 10)
  t.teardown(() => clearInterval(more))
  const o = await u.done
  t.equal(o.status, 503, 'the 503 came first')
  const started = performance.now()
  if (!u.socket.destroyed) await once(u.socket, 'close')
  const took = performance.now() - started
  t.ok(took < 3000, `closed soon after the bound (${took.toFixed(0)} ms), not at the 5 s time bound`)
})

t.test('past the time bound: a client that stalls mid-body is closed after the answer', async (t) => {
  const port = await earlyAnswerServer(t, 256 * KiB, 300)
  const u = rawUpload(port, '/', {}, 1024 * KiB, Buffer.alloc(10 * KiB))
  u.socket.on('error', () => {})
  const o = await u.done
  t.equal(o.status, 503)
  const started = performance.now()
  await once(u.socket, 'end')
  const took = performance.now() - started
  t.ok(took >= 200 && took < 3000, `FIN after the time bound (${took.toFixed(0)} ms)`)
  u.socket.destroy()
})
