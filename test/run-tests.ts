// Runs every test/**/*.test.ts with tap and ends with the plain
// "N passed, N failed" line CI reads. Passing assertion lines are left out
// of the output (they number in the thousands); everything else passes through.
// Usage: node test/run-tests.ts [path-prefix ...]

import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { createInterface } from 'node:readline'

const root = join(import.meta.dirname, '..')
const prefixes = process.argv.slice(2)

function find(dir: string, out: string[]): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) find(p, out)
    else if (e.name.endsWith('.test.ts')) out.push(relative(root, p))
  }
  return out
}

const files = find(join(root, 'test'), []).sort()
  .filter((f) => prefixes.length === 0 || prefixes.some((p) => f.startsWith(p.replace(/^\.\//, ''))))
if (files.length === 0) {
  console.error(`no test files match ${prefixes.join(' ')}`)
  process.exit(1)
}

// The repo's Node 24 first on PATH, as npm scripts have it, also when run directly.
const env = { ...process.env, PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH ?? ''}` }
// .taprc drops tap's ts-node plugin (Node 24 strips types itself); a fresh
// install still has the default plugin set built in, so rebuild it (~3 s).
// Skipped when already built without it: a rebuild racing another run breaks both.
const builtIndex = join(root, 'node_modules/@tapjs/test/test-built/dist/esm/index.js')
const upToDate = existsSync(builtIndex) && !readFileSync(builtIndex, 'utf8').includes('@tapjs/typescript')
const built = upToDate ? { status: 0, stdout: '', stderr: '' } : spawnSync(join(root, 'node_modules/.bin/tap'), ['build'], { cwd: root, env, encoding: 'utf8' })
if (built.status !== 0) {
  process.stderr.write(built.stdout + built.stderr)
  process.stdout.write('\n0 passed, 1 failed\n')
  process.exit(1)
}
const tap = spawn(join(root, 'node_modules/.bin/tap'), ['--reporter=tap', ...files], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] })
let summary: { pass: number; fail: number; todo?: number; skip?: number } | null = null
const lines = createInterface({ input: tap.stdout })
lines.on('line', (line) => {
  const m = /^# \{ total: \d+(.*)\}$/.exec(line)
  if (m) {
    const get = (k: string) => Number(new RegExp(`${k}: (\\d+)`).exec(m[1]!)?.[1] ?? 0)
    summary = { pass: get('pass'), fail: get('fail'), skip: get('skip'), todo: get('todo') }
  }
  if (/^\s+ok \d+/.test(line)) return
  process.stdout.write(line + '\n')
})
tap.on('close', (code) => {
  const s = summary ?? { pass: 0, fail: code === 0 ? 0 : 1 }
  const skipped = (s.skip ?? 0) + (s.todo ?? 0)
  process.stdout.write(`\n${s.pass} passed, ${s.fail} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`)
  process.exit(code ?? 1)
})
