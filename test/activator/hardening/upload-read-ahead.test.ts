// Uploads waiting for a revision with no pods leave their bodies in the
// kernel: the activator reads one socket read (64 KiB, the head included) of
// each, plus at most a grant from the shared read-ahead pool, however long
// they wait. When a pod appears every upload streams to it whole.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { ActivationExchange } from '@sluice/activator/handler/activation-exchange'
import { EXTRA_READ_AHEAD_BYTES } from '@sluice/activator/handler/waiting-uploads'
import { READ_AHEAD_BYTES, waitingBodyCharge } from '@sluice/activator/net/revision-queue'
import type { RevisionThrottler } from '@sluice/activator/net/throttler'
import { sleep } from '../../helpers/servers.ts'
import { waitFor } from '../../helpers/request-path.ts'
import { revisionInfo, startActivator } from '../../helpers/activator.ts'
import { sha256, startFakePod } from './fake-pod.ts'
import { rawUpload } from './raw-upload.ts'

const REV = 'cold-00001'
const N = 24
const MiB = 1024 * 1024
/** Room in the pool for 8 uploads' extra read-ahead. */
const POOL = 8 * EXTRA_READ_AHEAD_BYTES
const h = { 'knative-serving-namespace': 'default', 'knative-serving-revision': REV }

/** Each waiting request's bytes read from its socket (head included) and its read-ahead grant. */
function reads(rt: RevisionThrottler): Array<{ read: number; grant: number }> {
  const out: Array<{ read: number; grant: number }> = []
  for (let w = rt.queue.peek() as ActivationExchange | null | undefined; w !== undefined && w !== null; w = w.queueNext as ActivationExchange | null) {
    out.push({ read: w.req.socket.bytesRead, grant: w.upload?.grant ?? -1 })
  }
  return out
}

t.test(`${N} waiting 1 MiB uploads: 64 KiB of each read, plus pool grants; a pod appears and gets each of them whole`, async (t) => {
  const pod = await startFakePod()
  const act = await startActivator({ env: { SLUICE_MAX_READ_AHEAD_BYTES: String(POOL) }, revisions: [revisionInfo(REV, { timeoutSeconds: 30 })] })
  t.teardown(async () => {
    await act.stop()
    await pod.close()
  })
  const bodies = Array.from({ length: N }, () => randomBytes(MiB))
  const uploads = bodies.map((b, i) => rawUpload(act.ports.http, `/upload/${i}`, h, MiB, b))
  const rt = act.activator.ctx.throttler.get(`default/${REV}`)!
  t.ok(await waitFor(() => rt.queue.length === N, 5000), 'all wait')
  // A measuring window: reading, if it went on, would show here (it used to go to 128 KiB and more).
  await sleep(300)
  const seen = reads(rt)
  t.equal(seen.length, N)
  t.same(seen.filter((r) => r.grant > 0).map((r) => r.grant), Array(8).fill(EXTRA_READ_AHEAD_BYTES), 'the pool covers 8 uploads')
  t.same(seen.filter((r) => r.grant === 0).length, N - 8, 'the others get none')
  const over = seen.filter((r) => r.read > r.grant + READ_AHEAD_BYTES)
  t.same(over, [], `each read at most 64 KiB beyond its grant (without: ${Math.max(...seen.filter((r) => r.grant === 0).map((r) => r.read))} bytes at most, of ${MiB})`)
  const total = seen.reduce((n, r) => n + r.read, 0)
  t.ok(total <= N * READ_AHEAD_BYTES + POOL, `${(total / MiB).toFixed(1)} MiB read in all, of ${N} MiB sent`)
  t.equal(act.activator.ctx.uploads.readAheadBytes, POOL, 'the pool is in use')
  t.equal(rt.queue.bufferedBytes, N * waitingBodyCharge(MiB), 'each is charged its read-ahead and overhead')

  act.source.setEndpoints('default', REV, { ready: [pod.dest], notReady: [] })
  const outcomes = await Promise.all(uploads.map((u) => u.done))
  t.same(outcomes.map((o) => [o.status, o.error]), Array(N).fill([200, undefined]), 'every upload answered 200')
  const byUrl = new Map(pod.seen.map((s) => [s.url, s]))
  t.equal(pod.seen.length, N, 'each reached the pod once')
  t.ok(bodies.every((b, i) => byUrl.get(`/upload/${i}`)?.bytes === MiB && byUrl.get(`/upload/${i}`)?.sha256 === sha256(b)), 'intact: sizes and SHA-256 match')
  t.equal(act.activator.ctx.uploads.size, 0, 'none held any more')
  t.equal(act.activator.ctx.uploads.readAheadBytes, 0, 'the pool is free again')
  for (const u of uploads) u.socket.destroy()
})
