// What `npm run build` bundles for the activator (packages/activator/bundle.mjs):
// the activator itself without @kubernetes/client-node, and the Kubernetes source
// in its own file with only the client-node and undici parts it uses. The
// kubernetes-mode tests (main.test.ts, runtime-tree.test.ts) run these bundles;
// this checks what they hold and that the Kubernetes bundle loads on its own.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from '../deploy/dockerfile.ts'

const DIST = join(REPO_ROOT, 'packages/activator/dist')
const ACTIVATOR = join(DIST, 'activator.bundle.cjs')
const KUBERNETES = join(DIST, 'kubernetes.bundle.cjs')
const built = existsSync(ACTIVATOR) && existsSync(KUBERNETES)

t.test('the activator bundle leaves the Kubernetes client to its own bundle', { skip: built ? false : 'not bundled (npm run build)' }, async (t) => {
  const text = readFileSync(ACTIVATOR, 'utf8')
  // test() rather than t.match: a failure would print the whole bundle.
  t.ok(/import\("\.\/kubernetes\.bundle\.cjs"\)/.test(text), 'kubernetes mode imports the Kubernetes bundle')
  t.notOk(/applySecurityAuthentication|class Watch\b/.test(text), 'no client-node code')
  t.notOk(/opentelemetry/.test(text), 'no tracing code (loaded only when turned on)')
})

t.test('the Kubernetes bundle holds only what the source uses', { skip: built ? false : 'not bundled (npm run build)' }, async (t) => {
  const text = readFileSync(KUBERNETES, 'utf8')
  t.notOk(/ObjectSerializer|class V1PodSpec\b|CoreV1Api/.test(text), "none of client-node's generated models and API clients")
  t.notOk(/MockAgent|SnapshotAgent|RetryAgent/.test(text), "not undici's index (mock, snapshot and retry agents)")
  t.equal(text.split('Symbol("kIdleSocketValidation")').length - 1, 1, 'one copy of undici')
  t.ok(text.length < 1_500_000, `small: ${text.length} bytes`)
})

t.test('the Kubernetes bundle loads by itself and exports the source and the config loader', { skip: built ? false : 'not bundled (npm run build)' }, async (t) => {
  const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(KUBERNETES)}); process.stdout.write(typeof m.KubernetesSource + ' ' + typeof m.loadKubeConfig)`], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stdout, 'function function')
})
