// dist/main.js starts the bundle `npm run build` makes, unless a TypeScript
// build is newer than it (then the bundle could be stale: serve.js instead).
// Checked on a copy of the built main.js, with a bundle and a serve.js that
// only say who they are.

import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MAIN_JS } from '../helpers/process.ts'

function layout(t: Test): { dir: string; at: (file: string, secondsAgo: number) => void; run: () => string } {
  const root = mkdtempSync(join(tmpdir(), 'sluice-entry-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const qp = join(root, 'packages/queue-proxy')
  mkdirSync(join(qp, 'dist'), { recursive: true })
  mkdirSync(join(root, 'packages/core'), { recursive: true })
  writeFileSync(join(root, 'package.json'), '{"type":"module"}')
  copyFileSync(MAIN_JS, join(qp, 'dist/main.js'))
  writeFileSync(join(qp, 'dist/serve.js'), "process.stdout.write('serve')\n")
  writeFileSync(join(qp, 'dist/queue-proxy.bundle.cjs'), "process.stdout.write('bundle')\n")
  const now = Date.now() / 1000
  return {
    dir: root,
    at: (file, secondsAgo) => {
      const path = join(root, 'packages', file)
      writeFileSync(path, '{}', { flag: 'a' })
      utimesSync(path, now - secondsAgo, now - secondsAgo)
    },
    run: () => {
      const r = spawnSync(process.execPath, [join(qp, 'dist/main.js')], { encoding: 'utf8' })
      t.equal(r.status, 0, r.stderr)
      return r.stdout
    },
  }
}

t.test('no build info (the image): the bundle', async (t) => {
  const l = layout(t)
  t.equal(l.run(), 'bundle')
})

t.test('the bundle newer than both builds (npm run build): the bundle', async (t) => {
  const l = layout(t)
  l.at('queue-proxy/tsconfig.tsbuildinfo', 60)
  l.at('core/tsconfig.tsbuildinfo', 60)
  l.at('queue-proxy/dist/queue-proxy.bundle.cjs', 30)
  t.equal(l.run(), 'bundle')
})

t.test('a queue-proxy or core build newer than the bundle (tsc -b alone): serve.js', async (t) => {
  const l = layout(t)
  l.at('queue-proxy/dist/queue-proxy.bundle.cjs', 60)
  l.at('queue-proxy/tsconfig.tsbuildinfo', 30)
  t.equal(l.run(), 'serve', 'queue-proxy rebuilt')
  l.at('queue-proxy/tsconfig.tsbuildinfo', 90)
  l.at('core/tsconfig.tsbuildinfo', 30)
  t.equal(l.run(), 'serve', 'core rebuilt')
})

t.test('no bundle: serve.js', async (t) => {
  const l = layout(t)
  rmSync(join(l.dir, 'packages/queue-proxy/dist/queue-proxy.bundle.cjs'))
  t.equal(l.run(), 'serve')
})
