// Faults through the real local stack: an app that crashes with a request in
// flight, an app that never listens again, a port that is already taken and
// manifests the runtime must refuse — each a clear answer, never a hang.

import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LocalRuntime } from '@sluice/local/runtime/runtime'
import { FIXTURES, processesMentioning, revision, runtimeOptions, send, startRuntime, tempDir, waitFor, writeService } from '../../helpers/local.ts'

t.test('an app crash mid-request gets 502 and the app restarts; a dead queue-proxy restarts the instance; an app that never listens again gets 504 at the revision timeout', async (t) => {
  const dir = tempDir(t)
  const hangFlag = join(dir, 'hang')
  const manifest = writeService(dir, { name: 'faults', timeoutSeconds: 2, env: { HANG_IF_EXISTS: hangFlag, START_DELAY_MS: '300' } })
  const run = await startRuntime(manifest)
  t.teardown(() => run.stop())
  t.teardown(() => { if (!t.passing()) t.comment(run.lines.join('\n')) })
  const { rt, url } = run

  const before = await send(url)
  t.equal(before.status, 200)
  const appStartMs = revision(rt, 'faults-00001').instances[0]!.appStartMs
  t.ok(appStartMs >= 300 && appStartMs < 3000, `status reports the app's own time to listen (${appStartMs.toFixed(0)} ms, the app waits 300 ms)`)
  const firstPid = JSON.parse(before.body).pid as number

  // The app exits with the request in flight: an error status at once, not a hang.
  const crashed = await send(url, { path: '/crash', timeoutMs: 10_000 })
  t.ok(crashed.status === 502 || crashed.status === 503, `the in-flight request gets ${crashed.status} (502/503)`)
  t.ok(crashed.ms < 1500, `and gets it at once (${crashed.ms.toFixed(0)} ms)`)

  // The instance restarts its app (kubelet-style) and serves again. A request sent
  // before the runtime has seen the exit can still meet the dead app (as in a pod
  // before its probe fails), so the next one goes once the exit is noticed.
  t.ok(await waitFor(() => run.lines.includes('instance faults-00001-001: app exited (3); restarting it'), 5000), 'the crash is noticed')
  const next = await send(url, { timeoutMs: 10_000 })
  t.equal(next.status, 200, `the next request is answered 200 (after ${next.ms.toFixed(0)} ms)`)
  t.not(JSON.parse(next.body).pid, firstPid, 'by a new app process')
  const inst = revision(rt, 'faults-00001').instances
  t.equal(inst.length, 1, 'still one instance')
  t.equal(inst[0]!.restarts, 1, 'whose app was restarted once')
  t.ok(run.lines.includes('instance faults-00001-001: app exited (3); restarting it'), 'the crash is logged in one line')

  // The queue-proxy dies: the whole "pod" restarts (a new queue-proxy and app) and serves again.
  const marker = `SERVING_POD=${inst[0]!.id}`
  const qps = processesMentioning(marker, process.pid).filter((p) => p.cmdline.includes('queue-proxy/dist/main.js'))
  t.equal(qps.length, 1, 'the instance\'s queue-proxy is found by its SERVING_POD')
  process.kill(qps[0]!.pid, 'SIGKILL')
  t.ok(await waitFor(() => revision(rt, 'faults-00001').instances[0]?.restarts === 2, 5000), 'the instance restarts')
  t.ok(run.lines.includes('instance faults-00001-001: queue-proxy exited (SIGKILL); restarting the instance'), 'and says so in one line')
  const afterQp = await send(url, { timeoutMs: 10_000 })
  t.equal(afterQp.status, 200, `the next request is answered 200 (after ${afterQp.ms.toFixed(0)} ms)`)
  t.not(processesMentioning(marker, process.pid).find((p) => p.cmdline.includes('queue-proxy/dist/main.js'))?.pid, qps[0]!.pid, 'by a new queue-proxy')

  // Now the restarted app never listens: the request waits for it only until
  // the revision timeout (timeoutSeconds: 2), then 504.
  writeFileSync(hangFlag, '')
  const crashedAgain = await send(url, { path: '/crash', timeoutMs: 10_000 })
  t.ok(crashedAgain.status === 502 || crashedAgain.status === 503, `the in-flight request gets ${crashedAgain.status}`)
  // As above: once the exit is noticed (its second crash line), requests no longer meet the dead app.
  const crashLines = () => run.lines.filter((l) => l === 'instance faults-00001-001: app exited (3); restarting it').length
  t.ok(await waitFor(() => crashLines() >= 2, 5000), 'the second crash is noticed')
  const stuck = await send(url, { timeoutMs: 10_000 })
  t.equal(stuck.status, 504, 'a request to the never-ready app gets 504')
  t.ok(stuck.ms >= 1800 && stuck.ms <= 3500, `after the 2 s revision timeout (${stuck.ms.toFixed(0)} ms)`)
  t.equal(revision(rt, 'faults-00001').actual, 0, 'no instance is ready')

  // Stopping does not wait on the readiness probe the queue-proxy holds open
  // for the app: only the drain quiet period (1 s).
  const stopping = performance.now()
  await run.stop()
  const stopMs = performance.now() - stopping
  t.ok(stopMs < 3000, `the runtime stops in ${stopMs.toFixed(0)} ms with a never-ready instance`)
})

t.test('an ingress port already taken: start() fails naming the port', async (t) => {
  const dir = tempDir(t)
  const blocker = net.createServer()
  blocker.listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  t.teardown(() => blocker.close())
  const port = (blocker.address() as net.AddressInfo).port
  const rt = new LocalRuntime(runtimeOptions(writeService(dir, { name: 'taken' }), [], { ingressPort: port }))
  t.teardown(() => rt.stop())
  await t.rejects(rt.start(), { name: 'PortInUseError', message: new RegExp(`port ${port} \\(ingress \\(SLUICE_INGRESS_PORT\\)\\) is already in use`) })
})

t.test('an invalid manifest: start() fails naming the field', async (t) => {
  const rt = new LocalRuntime(runtimeOptions(join(FIXTURES, 'invalid-service.yaml'), []))
  t.teardown(() => rt.stop())
  await t.rejects(rt.start(), { name: 'ManifestError', message: /invalid-service\.yaml: spec\.template\.spec\.containerConcurrency: / })
})

t.test('an invalid autoscaling annotation: start() fails naming the annotation', async (t) => {
  const dir = tempDir(t)
  const manifest = writeService(dir, { name: 'badscale', annotations: { 'autoscaling.knative.dev/max-scale': 'lots' } })
  const lines: string[] = []
  const rt = new LocalRuntime(runtimeOptions(manifest, lines))
  t.teardown(() => rt.stop())
  await t.rejects(rt.start(), { message: /autoscaling\.knative\.dev\/max-scale/ })
  t.notOk(await waitFor(() => lines.some((l) => /instance .*: ready/.test(l)), 300), 'no instance was started')
})
