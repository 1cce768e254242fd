// A request that failed on one pod goes to another only if that cannot run it
// twice: a request no pod received (connection refused), or an idempotent one
// without a body. A POST a pod read before dropping the connection may have
// run there: it gets a 502, as in Knative, whose proxy never replays one.
//
// Two fake pods per case, containerConcurrency 1, so the activator's policy is
// first-available over pods sorted by address: a lone request always tries
// the "first" pod, the one that misbehaves, before the other.
import t, { type Test } from 'tap'
import type http from 'node:http'
import { request } from '../../helpers/servers.ts'
import { waitFor } from '../../helpers/request-path.ts'
import { revisionInfo, startActivator, type RunningActivator } from '../../helpers/activator.ts'
import { sha256, startFakePod, type FakePod, type PodBehaviour } from './fake-pod.ts'

t.jobs = 3

const route = (rev: string) => ({ 'Knative-Serving-Namespace': 'default', 'Knative-Serving-Revision': rev })

/** Reads the request, then drops the connection instead of answering. */
const dropConnection: PodBehaviour = (req: http.IncomingMessage) => req.socket.destroy()

interface Setup {
  act: RunningActivator
  first: FakePod
  second: FakePod
  healthy(): Promise<boolean>
}

/** A revision on two fake pods; the one with the lower address (tried first) behaves as `firstBehaviour`. */
async function setup(t: Test, rev: string, firstBehaviour: PodBehaviour): Promise<Setup> {
  const [first, second] = [await startFakePod(), await startFakePod()].sort((a, b) => (a.dest < b.dest ? -1 : 1)) as [FakePod, FakePod]
  first.behaviour = firstBehaviour
  const act = await startActivator({ revisions: [revisionInfo(rev, { containerConcurrency: 1, timeoutSeconds: 10 })] })
  act.source.setEndpoints('default', rev, { ready: [first.dest, second.dest], notReady: [] })
  t.teardown(async () => {
    await act.stop()
    await first.close()
    await second.close()
  })
  const rt = () => act.activator.ctx.throttler.get(`default/${rev}`)!
  const healthy = () => waitFor(() => rt().healthyDests.length === 2, 3000)
  t.ok(await healthy(), 'both pods probed healthy')
  return { act, first, second, healthy }
}

t.test('a bodyless POST the pod read before dropping the connection is not replayed: 502, one pod ran it', async (t) => {
  const { act, first, second } = await setup(t, 'post-00001', dropConnection)
  const r = await request(`${act.url}/order`, { method: 'POST', headers: route('post-00001') })
  t.equal(r.status, 502)
  t.same(first.seen.map((s) => s.method), ['POST'], 'the first pod read it')
  t.same(second.seen, [], 'and no other pod ran it')
  t.ok(await waitFor(() => act.activator.ctx.active === 0), 'nothing left in flight')
})

t.test('a POST with a body, read and dropped the same way: 502, one pod ran it', async (t) => {
  const { act, first, second } = await setup(t, 'body-00001', dropConnection)
  const r = await request(`${act.url}/order`, { method: 'POST', headers: route('body-00001'), body: 'item=1' })
  t.equal(r.status, 502)
  t.equal(first.seen.length, 1)
  t.same(second.seen, [])
})

t.test('a GET in the same situation is retried on the other pod and succeeds', async (t) => {
  const { act, first, second, healthy } = await setup(t, 'get-00001', dropConnection)
  const r = await request(`${act.url}/item`, { headers: route('get-00001') })
  t.equal(r.status, 200)
  t.equal(r.body, `pod ${second.port}`)
  t.same(first.seen.map((s) => s.url), ['/item'], 'tried on the first pod')
  t.same(second.seen.map((s) => s.url), ['/item'], 'then run on the second')
  // DELETE is idempotent too (RFC 9110): same outcome once the first pod is back.
  t.ok(await healthy(), 'the first pod passes its probe again')
  const d = await request(`${act.url}/item`, { method: 'DELETE', headers: route('get-00001') })
  t.equal(d.status, 200)
  t.same(first.seen.map((s) => s.method), ['GET', 'DELETE'])
  t.same(second.seen.map((s) => s.method), ['GET', 'DELETE'])
})

t.test('a POST with a body to a pod that refuses the connection is sent, whole, to the other pod', async (t) => {
  const { act, first, second } = await setup(t, 'refused-00001', dropConnection)
  first.stopListening()
  const body = Buffer.alloc(200_000, 7)
  const r = await request(`${act.url}/upload`, { method: 'POST', headers: route('refused-00001'), body })
  t.equal(r.status, 200)
  t.equal(r.body, `pod ${second.port}`)
  t.same(first.seen, [], 'the first pod never got it')
  t.same(second.seen, [{ method: 'POST', url: '/upload', bytes: body.length, sha256: sha256(body) }], 'the second got all of it, once')
})
