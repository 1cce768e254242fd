// The control server's edges: only loopback Host headers are served, changes
// need a JSON body (a page elsewhere cannot post one without CORS), bad
// bodies and unknown paths are answered plainly; the dashboard's files and
// its event stream; and `sluice load` against the runtime.

import t from 'tap'
import http from 'node:http'
import { runCli, startRuntime, tempDir, writeService } from '../../helpers/local.ts'

function request(port: number, o: { method?: string; path: string; host?: string; type?: string; body?: string }): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: o.host ?? `127.0.0.1:${port}` }
    if (o.type !== undefined) headers['content-type'] = o.type
    const req = http.request({ host: '127.0.0.1', port, path: o.path, method: o.method ?? 'GET', headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }))
    })
    req.on('error', reject)
    req.end(o.body)
  })
}

/** The event stream's text until `until` matches it; then the connection is closed. */
function firstEvents(port: number, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/events', agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        text += c
        if (until.test(text)) {
          req.destroy()
          resolve(text)
        }
      })
    })
    req.on('error', reject)
  })
}

t.test('control server: loopback only, JSON only, dashboard files and events; sluice load', async (t) => {
  const dir = tempDir(t)
  const run = await startRuntime(writeService(dir, { name: 'ctl' }))
  t.teardown(() => run.stop())
  const port = run.rt.statusPort

  t.equal((await request(port, { path: '/status', host: 'evil.example.com' })).status, 403, 'a non-loopback Host (DNS rebinding) is refused')
  t.equal((await request(port, { path: '/status', host: `localhost:${port}` })).status, 200, 'localhost is served')
  const plain = await request(port, { method: 'POST', path: '/apply', type: 'text/plain', body: '{"files":[]}' })
  t.equal(plain.status, 415, 'apply needs application/json (a cross-site form cannot send it)')
  const shape = await request(port, { method: 'POST', path: '/apply', type: 'application/json', body: '{"files":[{"path":1}]}' })
  t.same([shape.status, JSON.parse(shape.body).error], [400, 'the body must be {"files":[{"path":"...","text":"..."}]}'], 'a bad body is named')
  t.equal((await request(port, { method: 'DELETE', path: '/services/default' })).status, 404, 'delete needs namespace and name')
  t.equal((await request(port, { path: '/nothing' })).status, 404)
  const logs = await request(port, { path: '/logs?service=default/none' })
  t.same([logs.status, JSON.parse(logs.body).error], [404, 'services.serving.knative.dev "none" not found'])

  const page = await request(port, { path: '/' })
  t.equal(page.type, 'text/html; charset=utf-8')
  t.match(page.body, '<script src="/vendor/uPlot.iife.min.js"></script>', 'the page loads uPlot from the server')
  const uplot = await request(port, { path: '/vendor/uPlot.iife.min.js' })
  t.ok(uplot.status === 200 && uplot.body.includes('uPlot'), 'uPlot is served from node_modules')
  t.equal((await request(port, { path: '/dashboard.js' })).status, 200)
  t.equal((await request(port, { path: '/dashboard.css' })).type, 'text/css; charset=utf-8')

  const events = await firstEvents(port, /\n\ndata: .*\n\n/s)
  t.match(events, /^retry: 1000\nevent: history\ndata: \{"default\/ctl-00001":\[/, 'a new page first gets the history')
  const tick = JSON.parse(/\n\ndata: (.*)\n\n/.exec(events)![1]!) as { services: { key: string; revisions: { name: string; percent: number; latest: { actual: number } }[] }[] }
  t.same(tick.services.map((s) => [s.key, s.revisions[0]!.name, s.revisions[0]!.percent]), [['default/ctl', 'ctl-00001', 100]], 'then a tick a second with every service and revision')

  const load = await runCli(['load', '-c', '2', '-d', '1500ms'], { SLUICE_STATUS_PORT: String(port) })
  t.equal(load.code, 0, load.stderr)
  t.match(load.stdout, /^2 workers on ctl\.default\.example\.com through http:\/\/127\.0\.0\.1:\d+ for 1500ms$/m)
  t.match(load.stdout, /^\d+ req\/s {2}p50 \d+ ms {2}p99 \d+ ms {2}\{"200":\d+\}$/m, 'a line a second')
  t.match(load.stdout, /^\d+ requests: \{"200":\d+\}$/m, 'and a summary, all answered 200')
  const bad = await runCli(['load', '-c', '0'], { SLUICE_STATUS_PORT: String(port) })
  t.match(bad.stderr, 'sluice: -c must be an integer 1-1000, got "0"')
})
