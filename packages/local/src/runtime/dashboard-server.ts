// The dashboard: one static page (packages/local/dashboard/) with uPlot from
// node_modules, and a server-sent event stream that carries one DashboardTick
// a second; a new page first gets the kept history.

import type http from 'node:http'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { DashboardData, DashboardTick } from './dashboard-data.ts'

const PAGE_DIR = join(import.meta.dirname, '..', '..', 'dashboard')
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot'))

// URL path → file and content type; nothing else is served.
const FILES: Record<string, [string, string]> = {
  '/': [join(PAGE_DIR, 'index.html'), 'text/html; charset=utf-8'],
  '/dashboard.js': [join(PAGE_DIR, 'dashboard.js'), 'text/javascript; charset=utf-8'],
  '/dashboard.css': [join(PAGE_DIR, 'dashboard.css'), 'text/css; charset=utf-8'],
  '/vendor/uPlot.iife.min.js': [join(UPLOT_DIR, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8'],
  '/vendor/uPlot.min.css': [join(UPLOT_DIR, 'uPlot.min.css'), 'text/css; charset=utf-8'],
}

export const TICK_MS = 1000

export class DashboardServer {
  private readonly data: DashboardData
  private readonly clients = new Set<http.ServerResponse>()
  private timer: NodeJS.Timeout | undefined
  private last: DashboardTick | undefined

  constructor(data: DashboardData) {
    this.data = data
  }

  /** Samples once a second, page open or not (so the history is there when one opens). */
  start(): void {
    this.timer ??= setInterval(() => this.tick(), TICK_MS)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    for (const c of this.clients) c.end()
    this.clients.clear()
  }

  private tick(): void {
    this.last = this.data.tick()
    if (this.clients.size === 0) return
    const msg = `data: ${JSON.stringify(this.last)}\n\n`
    for (const c of this.clients) c.write(msg)
  }

  /** Serves GET `path` when it is the dashboard's; false otherwise. */
  handle(path: string, req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (path === '/events') {
      this.events(req, res)
      return true
    }
    const file = FILES[path]
    if (file === undefined) return false
    readFile(file[0]).then((body) => {
      res.writeHead(200, { 'content-type': file[1], 'content-length': body.length, 'cache-control': 'no-cache' })
      res.end(body)
    }, (err: Error) => {
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end(`cannot read ${file[0]}: ${err.message}\n`)
    })
    return true
  }

  private events(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.socket.setTimeout(0)
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    res.write(`retry: 1000\nevent: history\ndata: ${JSON.stringify(this.data.history())}\n\n`)
    if (this.last !== undefined) res.write(`data: ${JSON.stringify(this.last)}\n\n`)
    this.clients.add(res)
    res.once('close', () => this.clients.delete(res))
  }
}
