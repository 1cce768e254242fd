// The two memory governors every start path gets without command-line flags:
// the young generation stops growing at 16 MiB (heap-tuning.ts), and streamed
// body bytes trigger young-generation GCs (http/body-memory.ts). Both act
// through V8 flags set at run time, so these check their effect in a fresh
// process, with V8's own GC records and heap statistics.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

const ROOT = join(import.meta.dirname, '../..')
const NODE = join(ROOT, 'node_modules/.bin/node')

function run(script: string): string {
  const r = spawnSync(NODE, ['--conditions=sluice-source', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`)
  return r.stdout.trim()
}

// Allocates short-lived garbage with a few long-lived survivors (what grows
// V8's young generation), yielding so timers run; prints new space in MiB.
const CHURN = `
const v8 = await import('node:v8')
let keep = []
for (let round = 0; round < 40; round++) {
  for (let i = 0; i < 100000; i++) { keep.push({ a: i, b: 'x' + i }); if (keep.length > 30000) keep = [] }
  await new Promise((r) => setTimeout(r, 25))
}
const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')
console.log((ns.space_size / 1048576).toFixed(1))
`

t.test('the young generation stops growing near 16 MiB; left alone it grows past it', async (t) => {
  const alone = Number(run(CHURN))
  const capped = Number(run(`import { capYoungGeneration } from '@sluice/core/heap-tuning'\ncapYoungGeneration()\n${CHURN}`))
  // A 200 ms check may see it after one more doubling: 32 MiB at most.
  t.ok(capped <= 32, `capped: new space ${capped} MiB`)
  t.ok(alone > capped, `uncapped: new space ${alone} MiB`)
})

t.test('every 8 MiB of response body runs a young-generation GC (gc reached without --expose-gc)', async (t) => {
  const out = run(`
import { bodyBytes } from '@sluice/core/http/body-memory'
const { PerformanceObserver, constants } = await import('node:perf_hooks')
let minor = 0
const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++ })
obs.observe({ entryTypes: ['gc'] })
for (let i = 0; i < 40; i++) bodyBytes(1 << 20) // 40 MiB in 1 MiB chunks: 5 GCs, nothing else allocates much
await new Promise((r) => setTimeout(r, 100))
console.log(JSON.stringify({ minor, gcGlobal: typeof globalThis.gc }))
`)
  const r = JSON.parse(out) as { minor: number; gcGlobal: string }
  t.ok(r.minor >= 5, `${r.minor} young-generation GCs for 40 MiB`)
  t.equal(r.gcGlobal, 'undefined', 'no gc function leaks into the global scope')
})
