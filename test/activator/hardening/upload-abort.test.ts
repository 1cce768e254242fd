// A client that gives up on an upload while it waits for a cold revision is
// released at once, although the activator reads little of its body: its
// queue slot frees and the concurrency reported to the autoscaler returns to
// 0, as for a bodyless request aborted the same way. With the read-ahead pool
// (default) a partial upload is read to its FIN or RST; without it the
// kernel's connection table shows the RST, or the FIN once it got here.
import t from 'tap'
import type { ActivationExchange } from '@sluice/activator/handler/activation-exchange'
import { revisionInfo, startActivator } from '../../helpers/activator.ts'
import { waitFor } from '../../helpers/request-path.ts'
import { startTestAutoscaler } from '../../helpers/test-autoscaler.ts'
import { rawUpload } from './raw-upload.ts'

const MiB = 1024 * 1024
const KiB = 1024

interface Case {
  name: string
  env: Record<string, string>
  /** Body bytes sent of the 1 MiB declared. */
  sent: number
  reset: boolean
  /** Read to the FIN or RST at once; or seen in a scan of the connection table (every 250 ms, longer when scans are slow). */
  releasedWithinMs: number
}

const CASES: Case[] = [
  { name: '256 KiB sent, then the client closes (FIN)', env: {}, sent: 256 * KiB, reset: false, releasedWithinMs: 2500 },
  { name: '256 KiB sent, then the client resets (RST)', env: {}, sent: 256 * KiB, reset: true, releasedWithinMs: 2500 },
  { name: 'no read-ahead pool: 256 KiB sent, then a RST (seen in the connection table)', env: { SLUICE_MAX_READ_AHEAD_BYTES: '0' }, sent: 256 * KiB, reset: true, releasedWithinMs: 5000 },
  { name: 'no read-ahead pool: 96 KiB sent, then a FIN (CLOSE_WAIT in the table)', env: { SLUICE_MAX_READ_AHEAD_BYTES: '0' }, sent: 96 * KiB, reset: false, releasedWithinMs: 5000 },
]

t.jobs = 2

for (const [i, c] of CASES.entries()) {
  t.test(`a waiting upload, 1 MiB declared, ${c.name}: released within ${c.releasedWithinMs / 1000} s, concurrency 0 reported`, async (t) => {
    const rev = `abort${i}-00001`
    const autoscaler = await startTestAutoscaler()
    const act = await startActivator({ env: c.env, autoscalerUrl: autoscaler.url, revisions: [revisionInfo(rev, { timeoutSeconds: 60 })] })
    t.teardown(async () => {
      await act.stop()
      await autoscaler.stop()
    })
    const h = { 'knative-serving-namespace': 'default', 'knative-serving-revision': rev }
    const upload = rawUpload(act.ports.http, '/upload', h, MiB, Buffer.alloc(c.sent, 1))
    upload.socket.on('error', () => {})
    const rt = act.activator.ctx.throttler.get(`default/${rev}`)!
    t.ok(await waitFor(() => rt.queue.length === 1), 'it waits')
    await autoscaler.waitForStat((s) => s.name === rev && s.stat.averageConcurrentRequests === 1, 3000)
    t.pass('the autoscaler was poked (concurrency 1)')
    t.equal(act.activator.ctx.uploads.size, 1, 'its reading is held back')
    const waiting = rt.queue.peek() as ActivationExchange
    t.ok(await waitFor(() => waiting.upload?.seen === true), 'its connection was seen in the kernel\'s table')

    const abortedAt = performance.now()
    if (c.reset) upload.socket.resetAndDestroy()
    else upload.socket.destroy()
    t.ok(await waitFor(() => rt.queue.length === 0 && act.activator.ctx.active === 0, c.releasedWithinMs + 1000), 'released: out of the queue, nothing in flight')
    const releasedAt = performance.now()
    t.ok(releasedAt - abortedAt < c.releasedWithinMs, `released ${(releasedAt - abortedAt).toFixed(0)} ms after the abort`)
    t.equal(act.activator.ctx.uploads.size, 0)
    // Reports cover 1 s windows: the one with the release shows a fraction, the next one 0.
    const zero = await autoscaler.waitForStat((s) => s.name === rev && s.at > releasedAt && s.stat.averageConcurrentRequests === 0, 3000)
    t.ok(zero.at - releasedAt < 2500, `concurrency 0 reported ${(zero.at - abortedAt).toFixed(0)} ms after the abort`)
  })
}
