// Several Services side by side from a folder, each on its own host; a bad
// manifest refused with its field named and nothing changed; `sluice delete
// ksvc` stopping one Service's processes; `sluice logs` (with -f and
// --revision) showing the apps' lines with instance prefixes.

import t from 'tap'
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { processesMentioning, runCli, send, serviceYaml, spawnCli, startRuntime, tempDir, waitFor, writeService } from '../../helpers/local.ts'

t.test('a folder of Services, a refused apply, delete ksvc, and logs', async (t) => {
  const dir = tempDir(t)
  const marker = `--marker=${randomUUID()}`
  writeService(dir, { name: 'alpha', env: { TARGET: 'a' } })
  writeService(dir, { name: 'beta', env: { TARGET: 'b' }, args: [marker] })
  const run = await startRuntime(dir)
  t.teardown(() => run.stop())
  t.teardown(() => { if (!t.passing()) t.comment(run.lines.join('\n')) })
  const { rt, url } = run
  const env = { SLUICE_STATUS_PORT: String(rt.statusPort) }
  const body = async (host: string) => {
    const r = await send(url, { host })
    return r.status === 200 ? (JSON.parse(r.body) as { revision: string }).revision : `status ${r.status}`
  }

  t.same(rt.status().services.map((s) => s.name), ['alpha', 'beta'], 'both Services of the folder run')
  t.equal(await body('alpha.default.example.com'), 'alpha-00001', 'alpha\'s host reaches alpha')
  t.equal(await body('beta.default.example.com'), 'beta-00001', 'beta\'s host reaches beta')
  t.equal(await body('localhost'), 'status 404', 'with two Services, localhost names none')

  // One bad document among good ones: nothing is applied, the field is named.
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, serviceYaml({ name: 'alpha', env: { TARGET: 'changed' } }) + '---\n' +
    serviceYaml({ name: 'beta', containerConcurrency: -1 }))
  const refused = await runCli(['apply', '-f', bad], env)
  t.equal(refused.code, 1, 'sluice apply exits 1')
  t.match(refused.stderr, /bad\.yaml \(document 2\): spec\.template\.spec\.containerConcurrency: /, `the message names the document and field: ${refused.stderr.trim()}`)
  t.same(rt.status().services.map((s) => s.revisions.length), [1, 1], 'no revision was created for the good document either')
  const unknownRev = await runCli(['apply', '-f', writeService(dir, { name: 'alpha', file: 'x.yaml', traffic: [{ revisionName: 'alpha-00001', percent: 50 }, { latestRevision: true, percent: 40 }] })], env)
  t.match(unknownRev.stderr, /spec\.traffic: percent values sum to 90, want 100/, 'traffic that does not add up is refused')
  t.equal(await body('alpha.default.example.com'), 'alpha-00001', 'alpha still answers as before')

  // Logs: the app's own lines with the instance prefix, live with -f.
  const logs = await runCli(['logs', 'alpha'], env)
  t.equal(logs.code, 0)
  t.match(logs.stdout, /^\[alpha-00001-\d+\] app: listening on port \d+ \(revision alpha-00001\)$/m, 'the app\'s start-up line, prefixed with its instance')
  t.match(logs.stdout, /^\[sluice\] instance alpha-00001-\d+: ready/m, 'and the runtime\'s lines about the revision')
  t.notMatch(logs.stdout, /beta/, 'nothing of the other Service')
  const follow = spawnCli(['logs', 'alpha', '-f'], env)
  t.teardown(() => { follow.child.kill('SIGKILL') })
  await follow.waitForLine(/listening on port/)
  const token = randomUUID()
  await send(url, { host: 'alpha.default.example.com', path: `/?log=out-${token}&err=err-${token}` })
  await follow.waitForLine(new RegExp(`^\\[alpha-00001-\\d+\\] out-${token}$`))
  await follow.waitForLine(new RegExp(`^\\[alpha-00001-\\d+\\] err-${token}$`))
  t.pass('sluice logs -f shows new stdout and stderr lines as they are written')

  const changed = await runCli(['apply', '-f', writeService(dir, { name: 'alpha', file: 'alpha2.yaml', env: { TARGET: 'a2' } })], env)
  t.equal(changed.stdout, 'service.serving.knative.dev/alpha configured (revision alpha-00002)\n')
  t.ok(await waitFor(async () => await body('alpha.default.example.com') === 'alpha-00002', 15_000), 'the new revision takes the traffic once ready')
  const onlyNew = await runCli(['logs', 'alpha', '--revision', 'alpha-00002'], env)
  t.match(onlyNew.stdout, /^\[alpha-00002-\d+\] app: listening/m, '--revision shows that revision\'s lines')
  t.notMatch(onlyNew.stdout, /alpha-00001-/, 'and not the other revision\'s')
  const noRev = await runCli(['logs', 'alpha', '--revision', 'alpha-00009'], env)
  t.equal(noRev.code, 1, 'an unknown revision is an error')
  t.match(noRev.stderr, 'revision "alpha-00009" of service default/alpha not found')

  // Delete: beta's host stops answering and its processes stop; alpha runs on.
  t.ok(processesMentioning(marker).length >= 1, 'beta\'s app runs')
  const deleted = await runCli(['delete', 'ksvc', 'beta'], env)
  t.equal(deleted.code, 0)
  t.equal(deleted.stdout, 'service.serving.knative.dev "beta" deleted\n', 'as kubectl says it')
  t.equal(await body('beta.default.example.com'), 'status 404', 'beta\'s host answers 404')
  t.ok(await waitFor(() => processesMentioning(marker).length === 0, 5000), 'beta\'s app process is gone')
  t.same(rt.status().services.map((s) => s.name), ['alpha'], 'only alpha is left')
  t.equal(await body('alpha.default.example.com'), 'alpha-00002', 'alpha still answers')
  t.equal(await body('localhost'), 'alpha-00002', 'and, now the only one, on localhost')
  const again = await runCli(['delete', 'ksvc', 'beta'], env)
  t.equal(again.code, 1, 'deleting it again fails')
  t.match(again.stderr, 'services.serving.knative.dev "beta" not found in namespace default')

  // Re-created under the same name: revisions count from 1 again, as in Knative.
  const back = await runCli(['apply', '-f', writeService(dir, { name: 'beta', file: 'beta2.yaml' })], env)
  t.equal(back.stdout, 'service.serving.knative.dev/beta created (revision beta-00001)\n')
  t.ok(await waitFor(async () => await body('beta.default.example.com') === 'beta-00001', 15_000), 'the re-created Service answers')
})
