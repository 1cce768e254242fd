// :8008 when profiling is enabled (spec §1.18). Node has no pprof; this
// serves V8's equivalents under the same paths: a CPU profile
// (/debug/pprof/profile?seconds=N, .cpuprofile JSON for Chrome DevTools) and
// a heap snapshot (/debug/pprof/heap). Loaded only when enabled.

import type http from 'node:http'
import { httpModule } from '../builtins.ts'
import { Session } from 'node:inspector/promises'
import { SIDE_PORT_OPTIONS } from './connection-limits.ts'

const INDEX = '<html><body>/debug/pprof/<br><a href="profile?seconds=10">profile</a> (V8 .cpuprofile)<br><a href="heap">heap</a> (V8 .heapsnapshot)<br><a href="cmdline">cmdline</a></body></html>\n'

/** `enabled` is read per request: the activator listens always and answers 404 while off (as Knative HEAD). */
export function createProfilingServer(enabled: () => boolean = () => true): http.Server {
  return httpModule().createServer(SIDE_PORT_OPTIONS, (req, res) => {
    if (!enabled()) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      res.end('profiling is disabled\n')
      return
    }
    const url = new URL(req.url!, 'http://localhost')
    switch (url.pathname) {
      case '/debug/pprof/':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
        res.end(INDEX)
        return
      case '/debug/pprof/cmdline':
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
        res.end(process.argv.join('\x00'))
        return
      case '/debug/pprof/profile': {
        const seconds = Math.min(Math.max(Number(url.searchParams.get('seconds') ?? '30') || 30, 1), 300)
        cpuProfile(seconds * 1000).then((json) => send(res, json, 'profile.cpuprofile'), (err: Error) => fail(res, err))
        return
      }
      case '/debug/pprof/heap':
        heapSnapshot().then((json) => send(res, json, 'heap.heapsnapshot'), (err: Error) => fail(res, err))
        return
      default:
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' })
        res.end('404 page not found\n')
    }
  })
}

async function cpuProfile(ms: number): Promise<string> {
  const s = new Session()
  s.connect()
  try {
    await s.post('Profiler.enable')
    await s.post('Profiler.start')
    await new Promise((r) => setTimeout(r, ms))
    const { profile } = await s.post('Profiler.stop')
    return JSON.stringify(profile)
  } finally {
    s.disconnect()
  }
}

async function heapSnapshot(): Promise<string> {
  const s = new Session()
  s.connect()
  const chunks: string[] = []
  s.on('HeapProfiler.addHeapSnapshotChunk', (m) => chunks.push(m.params.chunk))
  try {
    await s.post('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
    return chunks.join('')
  } finally {
    s.disconnect()
  }
}

function send(res: http.ServerResponse, body: string, name: string): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-disposition': `attachment; filename="${name}"` })
  res.end(body)
}

function fail(res: http.ServerResponse, err: Error): void {
  res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
  res.end(`${err.message}\n`)
}
