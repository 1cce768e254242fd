import http2 from 'node:http2'
import http from 'node:http'
import net from 'node:net'
import { knativeEnv, startQueueProxy, listen, sleep, startApp, close } from './helpers/servers.ts'
const log: string[] = []
const app = http2.createServer((req, res) => {
  let bytes = 0
  req.on('data', (c: Buffer) => { bytes += c.length })
  req.on('end', () => log.push('h2 end ' + bytes))
  req.on('aborted', () => log.push('h2 aborted ' + bytes))
  req.on('close', () => log.push(`h2 close ended=${req.readableEnded} rst=${req.stream.rstCode} bytes=${bytes}`))
})
const port = await listen(app as unknown as net.Server)
const qp = await startQueueProxy(knativeEnv(port))
const c = http2.connect(qp.url)
const s = c.request({ ':path': '/upload', ':method': 'POST' })
s.on('error', () => {})
s.write(Buffer.alloc(10 * 1024, 'x'))
await sleep(100)
s.close(http2.constants.NGHTTP2_CANCEL)
await sleep(200)
console.log('h2->h2', log)
// h1 client -> h1 app
const log1: string[] = []
const app1 = await startApp((req, res) => {
  let bytes = 0
  req.on('data', (c: Buffer) => { bytes += c.length })
  req.on('end', () => log1.push('end ' + bytes))
  req.on('aborted', () => log1.push('aborted ' + bytes))
  req.on('close', () => log1.push(`close complete=${req.complete} bytes=${bytes}`))
})
const qp1 = await startQueueProxy(knativeEnv(app1.port))
const r = http.request(qp1.url + '/up', { method: 'POST', agent: false })  // chunked
r.on('error', () => {})
r.write(Buffer.alloc(10 * 1024, 'x'))
await sleep(100)
r.destroy()
await sleep(200)
console.log('h1 chunked', log1)
c.destroy(); await qp.stop(); await qp1.stop(); app.close(); await close(app1.server)
