// `sluice run --watch`: saving the manifest applies it (a new revision takes
// the traffic); a bad save is reported and changes nothing; a Service removed
// from the watched folder is deleted.

import t from 'tap'
import { renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../../helpers/process.ts'
import { descendants, killCli, send, serviceYaml, spawnCli, TEST_AUTOSCALER_CONFIG, tempDir, waitFor, type ProcessInfo } from '../../helpers/local.ts'

t.test('sluice run --watch <dir> applies saved changes and deletes removed Services', async (t) => {
  const dir = tempDir(t)
  const [ingressPort, statusPort] = [await freePort(), await freePort()]
  writeFileSync(join(dir, 'w.yaml'), serviceYaml({ name: 'w', env: { TARGET: 'one' } }))
  writeFileSync(join(dir, 'v.yaml'), serviceYaml({ name: 'v' }))
  const cli = spawnCli(['run', '--watch', dir], { SLUICE_INGRESS_PORT: String(ingressPort), SLUICE_STATUS_PORT: String(statusPort), SLUICE_AUTOSCALER_CONFIG: TEST_AUTOSCALER_CONFIG })
  let started: ProcessInfo[] = []
  t.teardown(() => killCli(cli, started.length > 0 ? started : descendants(cli.child.pid!)))
  t.teardown(() => { if (!t.passing()) t.comment(cli.lines.join('\n')) })
  await cli.waitForLine(/^watching /)
  t.match(cli.lines.join('\n'), `dashboard: http://127.0.0.1:${statusPort}/`, 'the dashboard address is printed')
  const url = `http://127.0.0.1:${ingressPort}`
  const target = async (host: string) => {
    const r = await send(url, { host })
    return r.status === 200 ? (JSON.parse(r.body) as { target: string; revision: string }) : { target: `status ${r.status}`, revision: '' }
  }
  const first = await target('w.default.example.com')
  t.same([first.target, first.revision], ['one', 'w-00001'], 'the first version answers')

  // An editor's save: write a temporary file, rename it over the manifest.
  const tmp = join(dir, '.w.yaml.swp')
  writeFileSync(tmp, serviceYaml({ name: 'w', env: { TARGET: 'two' } }))
  renameSync(tmp, join(dir, 'w.yaml'))
  await cli.waitForLine(/^service\.serving\.knative\.dev\/w configured \(revision w-00002\)$/)
  t.ok(await waitFor(async () => (await target('w.default.example.com')).target === 'two', 15_000), 'the saved change answers once its revision is ready')

  writeFileSync(join(dir, 'w.yaml'), serviceYaml({ name: 'w', env: { TARGET: 'two' } }).replace('containers:', 'containerz:'))
  await cli.waitForLine(/^watch: .*w\.yaml: spec\.template\.spec\.containerz: unknown field/)
  t.equal((await target('w.default.example.com')).target, 'two', 'a bad save is reported, naming the field, and changes nothing')

  started = descendants(cli.child.pid!)
  unlinkSync(join(dir, 'v.yaml'))
  writeFileSync(join(dir, 'w.yaml'), serviceYaml({ name: 'w', env: { TARGET: 'two' } }))
  await cli.waitForLine(/^service default\/v deleted/)
  t.equal((await target('v.default.example.com')).target, 'status 404', 'a Service removed from the folder is deleted')
  t.equal((await target('w.default.example.com')).revision, 'w-00002', 'the unchanged one keeps its revision')

  cli.child.kill('SIGINT')
  t.same(await cli.exited, { code: 0, signal: null }, 'Ctrl-C stops it')
})
