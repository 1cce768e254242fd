// Dockerfile.queue and Dockerfile.activator read as text (no Docker engine
// runs here): the stage layout, Node 24 everywhere, a numeric non-root USER
// (runAsNonRoot can only verify a number), the documented start command, and
// a final image holding nothing but the production runtime tree.
// runtime-tree.test.ts builds and starts that tree.

import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Port } from '@sluice/core/constants'
import { all, execForm, parseCopy, parseEnv, readDockerfile, REPO_ROOT, stage } from './dockerfile.ts'

interface ImageSpec {
  file: string
  workspace: string
  dir: string
  ports: number[]
  /** Where the start command is documented. */
  doc: string
}

const IMAGES: ImageSpec[] = [
  {
    file: 'Dockerfile.queue',
    workspace: '@sluice/queue-proxy',
    dir: 'packages/queue-proxy',
    ports: [Port.queueHttp, Port.queueH2c, Port.queueAdmin, Port.queueMetrics, Port.queueUserMetrics],
    doc: 'README.md',
  },
  {
    file: 'Dockerfile.activator',
    workspace: '@sluice/activator',
    dir: 'packages/activator',
    ports: [Port.activatorHttp, Port.activatorH2c, Port.activatorMetrics, Port.profiling],
    doc: 'deploy/README.md',
  },
]

const readJson = (p: string) => JSON.parse(readFileSync(join(REPO_ROOT, p), 'utf8')) as Record<string, unknown>
const rootPkg = readJson('package.json') as { workspaces: string[] }

/** `dir` and every workspace it depends on, transitively (npm ci installs these from their package.json). */
function workspaceClosure(dir: string): string[] {
  const byName = new Map(rootPkg.workspaces.map((ws) => [(readJson(`${ws}/package.json`) as { name: string }).name, ws]))
  const out = new Set<string>()
  const visit = (ws: string): void => {
    if (out.has(ws)) return
    out.add(ws)
    const deps = (readJson(`${ws}/package.json`) as { dependencies?: Record<string, string> }).dependencies ?? {}
    for (const d of Object.keys(deps)) if (byName.has(d)) visit(byName.get(d)!)
  }
  visit(dir)
  return [...out].sort()
}

/** Node 24: the official image or distroless nodejs24. */
const NODE_24_IMAGE = /^(node:24([-.@].*)?|gcr\.io\/distroless\/nodejs24-[^:@]+([:@].*)?)$/

for (const img of IMAGES) {
  t.test(img.file, async (t) => {
    const stages = readDockerfile(img.file)
    const final = stages.at(-1)!

    t.test('is multi-stage: build, runtime-tree, then the final image', async (t) => {
      t.same(stages.map((s) => s.name), ['build', 'runtime-tree', undefined])
    })

    t.test('every stage is based on Node 24', async (t) => {
      for (const s of stages) t.match(s.image, NODE_24_IMAGE, `FROM ${s.image}`)
      t.match(final.image, /^gcr\.io\/distroless\//, 'the final image is distroless (no shell, no npm)')
    })

    t.test('the final stage runs as a numeric non-root user', async (t) => {
      const users = all(final, 'USER')
      t.equal(users.length, 1)
      const m = /^(\d+)(?::(\d+))?$/.exec(users[0]!.args)
      t.ok(m, `USER ${users[0]!.args} is numeric uid[:gid]`)
      t.not(Number(m![1]), 0, 'uid is not root')
      if (m![2] !== undefined) t.not(Number(m![2]), 0, 'gid is not root')
    })

    t.test('CMD is the documented start command: the workspace bin under the distroless node entrypoint', async (t) => {
      const cmds = all(final, 'CMD')
      t.equal(cmds.length, 1)
      const cmd = execForm(cmds[0]!.args)
      t.ok(cmd, 'exec form (there is no shell in the image)')
      t.equal(all(final, 'ENTRYPOINT').length, 0, 'the base image entrypoint (node) is kept')
      const bin = Object.values((readJson(`${img.dir}/package.json`) as { bin: Record<string, string> }).bin)
      t.same(cmd, [`${img.dir}/${bin[0]}`])
      t.same(all(final, 'WORKDIR').map((w) => w.args), ['/app'], 'CMD is relative to /app')
      const doc = readFileSync(join(REPO_ROOT, img.doc), 'utf8')
      t.ok(doc.includes(`node ${cmd![0]}`), `${img.doc} documents "node ${cmd![0]}"`)
      t.same(Object.assign({}, ...all(final, 'ENV').map((e) => parseEnv(e.args))), { NODE_ENV: 'production' })
    })

    t.test('runtime-tree installs only the production dependencies of its own workspace', async (t) => {
      const runs = all(stage(stages, 'runtime-tree'), 'RUN').map((r) => r.args)
      const ci = runs.filter((r) => /\bnpm ci\b/.test(r))
      t.equal(ci.length, 1, 'one npm ci')
      const words = ci[0]!.split(/\s+/)
      t.ok(words.includes('--omit=dev'), '--omit=dev')
      t.ok(words.includes('--ignore-scripts'), '--ignore-scripts (no install scripts run)')
      const ws = words.indexOf('--workspace')
      t.equal(words[ws + 1], img.workspace, `--workspace ${img.workspace}`)
      for (const other of IMAGES.filter((o) => o !== img)) {
        t.ok(runs.some((r) => r.includes(`rm -rf ${other.dir}`)), `the other workspace (${other.dir}) is removed`)
      }
    })

    t.test('the final stage holds only the runtime tree; the runtime tree takes only dist from the build', async (t) => {
      const finalCopies = all(final, 'COPY').map((c) => parseCopy(c.args))
      t.same(finalCopies, [{ from: 'runtime-tree', sources: ['/app'], dest: '/app' }])
      t.equal(all(final, 'RUN').length, 0, 'nothing runs in the final stage (no shell)')
      const fromBuild = all(stage(stages, 'runtime-tree'), 'COPY').map((c) => parseCopy(c.args)).filter((c) => c.from !== undefined)
      t.ok(fromBuild.length > 0)
      for (const c of fromBuild) {
        t.equal(c.from, 'build')
        for (const src of c.sources) t.match(src, /^\/src\/packages\/[^/]+\/dist$/, `${src} is build output`)
      }
      t.same(fromBuild.flatMap((c) => c.sources).sort(), [`/src/packages/core/dist`, `/src/${img.dir}/dist`].sort(),
        'core and the component, nothing else')
    })

    t.test('both install stages copy the lockfile and the package.json of the workspace and the workspaces it depends on', async (t) => {
      const needed = workspaceClosure(img.dir)
      t.ok(needed.includes('packages/core'), needed.join(', '))
      for (const name of ['build', 'runtime-tree']) {
        const copied = all(stage(stages, name), 'COPY').map((c) => parseCopy(c.args))
          .filter((c) => c.from === undefined).flatMap((c) => c.sources)
        for (const ws of needed) t.ok(copied.includes(`${ws}/package.json`), `${name}: ${ws}/package.json`)
        t.ok(copied.includes('package.json') && copied.includes('package-lock.json'), `${name}: package.json, package-lock.json`)
      }
    })

    t.test('EXPOSE lists the component ports', async (t) => {
      const exposed = all(final, 'EXPOSE').flatMap((e) => e.args.split(/\s+/)).map((p) => Number(p.replace(/\/tcp$/, '')))
      t.same([...exposed].sort(), [...img.ports].sort())
    })
  })
}

t.test('.dockerignore keeps installed modules and build output out of the build context', async (t) => {
  const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim())
  t.ok(ignored.includes('**/node_modules'), '**/node_modules')
  t.ok(ignored.includes('**/dist'), '**/dist (the image compiles its own)')
})
