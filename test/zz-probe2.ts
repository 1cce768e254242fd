import http2 from 'node:http2'
import { sleep } from './helpers/servers.ts'
const ev: string[] = []
const srv = http2.createServer((req, res) => {
  res.on('finish', () => { ev.push(`res finish closed=${res.stream.closed} remoteClose=${res.stream.state.remoteClose} localClose=${res.stream.state.localClose} sEnded=${res.stream.readableEnded}`); })
  res.on('close', () => ev.push('res close'))
  if (req.url === '/early') { res.end('early'); return }
  req.resume(); req.on('end', () => res.end('done'))
})
srv.listen(0)
await new Promise((r) => srv.once('listening', r))
const c = http2.connect(`http://127.0.0.1:${(srv.address() as any).port}`)
for (const [path, end] of [['/early', false], ['/full', true], ['/get', null]] as const) {
  ev.length = 0
  const s = c.request({ ':path': path, ':method': end === null ? 'GET' : 'POST' }, { endStream: end === null })
  s.on('error', () => {}); s.resume()
  if (end !== null) { s.write('abc'); if (end) s.end() }
  await sleep(100)
  console.log(path, ev)
}
c.destroy(); srv.close()
