// :8022 — `/wait-for-drain`, the user container's PreStop hook (spec §1.17).
// A PreStop without pod termination (the user container restarting after a
// failed liveness probe) must not leave us draining: if no SIGTERM arrives
// within a second, the drain is reset.

import type http from 'node:http'
import { httpModule } from '@sluice/core/builtins'
import type { Drainer } from './drainer.ts'
import { notFound } from './metrics-server.ts'
import { SIDE_PORT_OPTIONS } from '@sluice/core/http/connection-limits'

export interface AdminState {
  /** Set once the process received SIGTERM. */
  terminating: boolean
}

export const RESET_WITHOUT_SIGTERM_MS = 1000

export function createAdminServer(drainer: Drainer, state: AdminState, resetAfterMs = RESET_WITHOUT_SIGTERM_MS): http.Server {
  return httpModule().createServer(SIDE_PORT_OPTIONS, (req, res) => {
    const q = req.url!.indexOf('?')
    const path = q === -1 ? req.url : req.url!.slice(0, q)
    if (path !== '/wait-for-drain') {
      notFound(res)
      return
    }
    setTimeout(() => {
      if (!state.terminating) drainer.reset()
    }, resetAfterMs).unref()
    drainer.drain().then(() => {
      if (!res.destroyed) {
        res.writeHead(200)
        res.end()
      }
    }, () => {})
  })
}
