// Knative's reachability locally: a revision no route sends traffic to is
// "unreachable", so min-scale no longer holds it up and it scales to zero
// (it is kept, as Knative keeps it); the routed revision keeps its minimum.

import t from 'tap'
import { revision, runCli, startRuntime, tempDir, waitFor, writeService } from '../../helpers/local.ts'

t.test('a revision held up by min-scale scales to zero once no route sends it traffic (Knative reachability)', async (t) => {
  const dir = tempDir(t)
  const annotations = { 'autoscaling.knative.dev/min-scale': '1' }
  const run = await startRuntime(writeService(dir, { name: 'pinned', annotations, env: { TARGET: 'one' } }))
  t.teardown(() => run.stop())
  t.teardown(() => { if (!t.passing()) t.comment(run.lines.join('\n')) })
  const { rt } = run
  await new Promise((r) => setTimeout(r, 500))
  const applied = await runCli(['apply', '-f', writeService(dir, { name: 'pinned', file: 'two.yaml', annotations, env: { TARGET: 'two' } })], { SLUICE_STATUS_PORT: String(rt.statusPort) })
  t.equal(applied.stdout, 'service.serving.knative.dev/pinned configured (revision pinned-00002)\n')
  t.ok(await waitFor(() => rt.status().services[0]!.traffic[0]?.revision === 'pinned-00002', 15_000), 'the latest revision takes all traffic')
  t.ok(await waitFor(() => { const r = revision(rt, 'pinned-00001'); return r.desired === 0 && r.instances.length === 0 }, 40_000, 100), 'the old one goes to zero despite min-scale 1')
  t.equal(revision(rt, 'pinned-00002').desired, 1, 'the routed one stays at its min-scale')
  t.match(run.lines.join('\n'), 'autoscaler: default/pinned-00001 is unreachable (no route sends it traffic): min-scale no longer applies')
})
