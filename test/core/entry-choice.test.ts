// Each component's dist/main.js starts the bundle `npm run build` makes, unless a
// TypeScript build is newer than it (then the bundle could be stale: serve.js
// instead). Checked on copies of the built main.js files and core's
// entry-choice.js, with bundles and serve.js files that only say who they are.

import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from '../deploy/dockerfile.ts'

const COMPONENTS = [
  { pkg: 'queue-proxy', bundle: 'queue-proxy.bundle.cjs' },
  { pkg: 'activator', bundle: 'activator.bundle.cjs' },
] as const

interface Layout {
  dir: string
  at: (file: string, secondsAgo: number) => void
  run: () => string
}

function layout(t: Test, pkg: string, bundle: string): Layout {
  const root = mkdtempSync(join(tmpdir(), 'sluice-entry-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dist = join(root, 'packages', pkg, 'dist')
  const core = join(root, 'packages/core')
  mkdirSync(dist, { recursive: true })
  mkdirSync(join(core, 'dist'), { recursive: true })
  writeFileSync(join(root, 'package.json'), '{"type":"module"}')
  // @sluice/core as the workspace link resolves it: its exports map and the built chooser.
  writeFileSync(join(core, 'package.json'), JSON.stringify({ name: '@sluice/core', type: 'module', exports: { './*': './dist/*.js' } }))
  copyFileSync(join(REPO_ROOT, 'packages/core/dist/entry-choice.js'), join(core, 'dist/entry-choice.js'))
  mkdirSync(join(root, 'node_modules/@sluice'), { recursive: true })
  symlinkSync(core, join(root, 'node_modules/@sluice/core'))
  copyFileSync(join(REPO_ROOT, 'packages', pkg, 'dist/main.js'), join(dist, 'main.js'))
  writeFileSync(join(dist, 'serve.js'), "process.stdout.write('serve')\n")
  writeFileSync(join(dist, bundle), "process.stdout.write('bundle')\n")
  const now = Date.now() / 1000
  return {
    dir: root,
    at: (file, secondsAgo) => {
      const path = join(root, 'packages', file)
      writeFileSync(path, '{}', { flag: 'a' })
      utimesSync(path, now - secondsAgo, now - secondsAgo)
    },
    run: () => {
      const r = spawnSync(process.execPath, [join(dist, 'main.js')], { encoding: 'utf8' })
      t.equal(r.status, 0, r.stderr)
      return r.stdout
    },
  }
}

for (const { pkg, bundle } of COMPONENTS) {
  t.test(`${pkg}: no build info (the image): the bundle`, async (t) => {
    t.equal(layout(t, pkg, bundle).run(), 'bundle')
  })

  t.test(`${pkg}: the bundle newer than both builds (npm run build): the bundle`, async (t) => {
    const l = layout(t, pkg, bundle)
    l.at(`${pkg}/tsconfig.tsbuildinfo`, 60)
    l.at('core/tsconfig.tsbuildinfo', 60)
    l.at(`${pkg}/dist/${bundle}`, 30)
    t.equal(l.run(), 'bundle')
  })

  t.test(`${pkg}: a build of the component or of core newer than the bundle (tsc -b alone): serve.js`, async (t) => {
    const l = layout(t, pkg, bundle)
    l.at(`${pkg}/dist/${bundle}`, 60)
    l.at(`${pkg}/tsconfig.tsbuildinfo`, 30)
    t.equal(l.run(), 'serve', `${pkg} rebuilt`)
    l.at(`${pkg}/tsconfig.tsbuildinfo`, 90)
    l.at('core/tsconfig.tsbuildinfo', 30)
    t.equal(l.run(), 'serve', 'core rebuilt')
  })

  t.test(`${pkg}: no bundle: serve.js`, async (t) => {
    const l = layout(t, pkg, bundle)
    rmSync(join(l.dir, 'packages', pkg, 'dist', bundle))
    t.equal(l.run(), 'serve')
  })
}
