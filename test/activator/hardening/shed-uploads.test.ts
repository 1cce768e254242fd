// Uploads the activator answers itself while their bodies are still on the
// way get the whole answer, never a reset: shed ones (queue full) a complete
// 503 with Retry-After, waiting ones whose revision timeout ran out a complete
// 504; the activator drops the rest of each body as it arrives, so every
// client finishes writing without EPIPE or ECONNRESET.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { waitFor } from '../../helpers/request-path.ts'
import { revisionInfo, startActivator } from '../../helpers/activator.ts'
import { rawUpload, type RawUpload } from './raw-upload.ts'

const REV = 'cold-00001'
const MiB = 1024 * 1024
const SHED = 20
const h = { 'knative-serving-namespace': 'default', 'knative-serving-revision': REV }

t.test(`queue full: ${SHED} 1 MiB uploads all get a complete 503 with Retry-After; the 2 waiting ones a complete 504; no connection breaks`, async (t) => {
  const act = await startActivator({ env: { SLUICE_MAX_QUEUED_PER_REVISION: '2' }, revisions: [revisionInfo(REV, { timeoutSeconds: 2 })] })
  t.teardown(() => act.stop())
  const body = randomBytes(MiB)
  const errors: string[] = []
  const upload = (path: string): RawUpload => {
    const u = rawUpload(act.ports.http, path, h, MiB, body)
    u.socket.on('error', (err: NodeJS.ErrnoException) => errors.push(`${path}: ${err.code}`))
    return u
  }
  const waiting = [upload('/wait/0'), upload('/wait/1')]
  const rt = act.activator.ctx.throttler.get(`default/${REV}`)!
  t.ok(await waitFor(() => rt.queue.length === 2), 'two wait, their bodies left unread')
  const shed = Array.from({ length: SHED }, (_, i) => upload(`/shed/${i}`))

  const shedOutcomes = await Promise.all(shed.map((u) => u.done))
  t.same(shedOutcomes.map((o) => [o.status, o.body, o.error]), Array(SHED).fill([503, 'pending request queue full\n', undefined]), 'complete 503s')
  t.ok(shedOutcomes.every((o) => Number(o.headers['retry-after']) >= 1), 'each with Retry-After')
  const timedOut = await Promise.all(waiting.map((u) => u.done))
  t.same(timedOut.map((o) => [o.status, o.body, o.error]), Array(2).fill([504, 'activator request timeout', undefined]), 'complete 504s at the revision timeout')

  const all = [...waiting, ...shed]
  t.ok(await waitFor(() => all.every((u) => u.socket.writableLength === 0 && u.socket.bytesWritten > MiB), 5000), 'every client wrote its whole body')
  t.same(errors, [], 'no reset, no broken pipe')
  t.ok(all.every((u) => !u.socket.destroyed), 'connections still open (keep-alive)')
  for (const u of all) u.socket.destroy()
})
