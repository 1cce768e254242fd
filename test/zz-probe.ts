import http2 from 'node:http2'
import net from 'node:net'
import { knativeEnv, startQueueProxy, listen, sleep } from './helpers/servers.ts'
const log: string[] = []
const app = http2.createServer((req, res) => {
  log.push('app got ' + req.url)
  req.on('data', () => {})
  req.on('end', () => log.push('app req end ' + req.url))
  req.stream.on('close', () => log.push(`app stream close ${req.url} rst=${req.stream.rstCode}`))
})
const port = await listen(app as unknown as net.Server)
const qp = await startQueueProxy(knativeEnv(port, { REVISION_TIMEOUT_SECONDS: '1' }))
const c = http2.connect(qp.url)
const s1 = c.request({ ':path': '/slow-upload', ':method': 'POST' }); s1.on('error', () => {}); s1.resume()
let status = 0
s1.on('response', (h) => { status = Number(h[':status']) })
s1.write('partial')
await sleep(2500)
console.log(log, 'client status', status, 'active', qp.qp.ctx.active, 'h2 sessions', app.listenerCount('stream'))
c.destroy(); await qp.stop(); app.close()
