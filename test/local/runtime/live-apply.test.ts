// Live apply (issue 11) with `sluice apply -f` as a process against a running
// runtime, under steady load: a template change makes a new revision, a 50/50
// split is measured over > 2,000 requests (± 5 % is 4.5 standard deviations), then 0/100 moves everything; no
// request fails on the way, and the old revision is kept and scales to zero.

import t from 'tap'
import { revision, runCli, startLoad, startRuntime, tempDir, waitFor, writeService, type LoadResult } from '../../helpers/local.ts'

const HOST = 'roll.default.example.com'
const V1 = 'roll-00001'
const V2 = 'roll-00002'
// Real processes and windows of several seconds: more than the default 60 s on a busy machine.
t.setTimeout(120_000)

/** Answers per revision between two snapshots of a load. */
function delta(a: LoadResult, b: LoadResult): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(b.byRevision)) out[k] = v - (a.byRevision[k] ?? 0)
  return out
}

t.test('apply a new template with a 50/50 split, then 0/100, under load: no failed request, the split holds', async (t) => {
  const dir = tempDir(t)
  const v1 = writeService(dir, { name: 'roll', env: { TARGET: 'one' } })
  const run = await startRuntime(v1)
  t.teardown(() => run.stop())
  t.teardown(() => { if (!t.passing()) t.comment(run.lines.join('\n')) })
  const { rt, url } = run
  const env = { SLUICE_STATUS_PORT: String(rt.statusPort) }

  const load = startLoad(url, { concurrency: 4, host: HOST })
  t.teardown(async () => { await load.stop() })
  t.ok(await waitFor(() => load.now().ok >= 50, 10_000), 'load flows to the first revision')

  // The template changes (TARGET) and the traffic names the old revision and the latest.
  const split = writeService(dir, {
    name: 'roll', file: 'split.yaml', env: { TARGET: 'two' },
    traffic: [{ revisionName: V1, percent: 50 }, { latestRevision: true, percent: 50 }],
  })
  const applied = await runCli(['apply', '-f', split], env)
  t.equal(applied.code, 0, `sluice apply exits 0 (${applied.stderr.trim()})`)
  t.equal(applied.stdout, `service.serving.knative.dev/roll configured (revision ${V2})\n`, 'it says what changed, as kubectl does, and names the new revision')
  t.ok(await waitFor(() => {
    const tr = rt.status().services[0]!.traffic
    return tr.length === 2 && tr[1]!.revision === V2
  }, 15_000), 'the route splits between both revisions once the new one is ready')
  t.same(rt.status().services[0]!.traffic.map((x) => [x.revision, x.percent]), [[V1, 50], [V2, 50]], 'status shows 50/50')

  const before = load.now()
  t.ok(await waitFor(() => load.now().ok - before.ok >= 2000, 40_000), 'over 2,000 requests under the split')
  const seen = delta(before, load.now())
  const total = (seen[V1] ?? 0) + (seen[V2] ?? 0)
  const share = (seen[V2] ?? 0) / total
  t.ok(Math.abs(share - 0.5) <= 0.05, `the new revision got ${(share * 100).toFixed(1)} % of ${total} requests (50 ± 5 %)`)
  t.same(Object.keys(seen).sort(), [V1, V2], 'only the two revisions answered')

  // Traffic only: no new revision; everything moves to the latest.
  const all = writeService(dir, {
    name: 'roll', file: 'all.yaml', env: { TARGET: 'two' },
    traffic: [{ revisionName: V1, percent: 0 }, { latestRevision: true, percent: 100 }],
  })
  const moved = await runCli(['apply', '-f', all], env)
  t.equal(moved.stdout, 'service.serving.knative.dev/roll configured\n', 'a traffic change configures the service without a revision')
  const again = await runCli(['apply', '-f', all], env)
  t.equal(again.stdout, 'service.serving.knative.dev/roll unchanged\n', 'applying the same manifest again changes nothing')
  t.same(rt.status().services[0]!.revisions.map((r) => r.name), [V1, V2], 'still two revisions')
  const after = load.now()
  t.ok(await waitFor(() => load.now().ok - after.ok >= 300, 20_000), '300 more requests')
  const last = delta(after, load.now())
  t.equal(last[V1] ?? 0, 0, `none reaches the old revision after 0/100 (${JSON.stringify(last)})`)

  const result = await load.stop()
  t.equal(result.failed, 0, `no request failed (${result.ok} answered; failures ${JSON.stringify(result.failures)})`)

  // The old revision has no traffic: kept, and down to zero (stable window then grace period, 6 s each).
  t.ok(await waitFor(() => { const r = revision(rt, V1); return r.desired === 0 && r.instances.length === 0 }, 40_000, 100), 'the old revision scales to zero')
  t.same(rt.status().services[0]!.revisions.map((r) => r.name), [V1, V2], 'and is kept, as Knative keeps it')
})
