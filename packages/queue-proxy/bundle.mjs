// Bundles the built queue-proxy (dist/serve.js and what it imports, Sluice's
// core included) into dist/queue-proxy.bundle.cjs, which dist/main.js starts
// (see src/main.ts). Run by `npm run build` after tsc. Packages loaded through
// createRequire (undici's Pool, prom-client's parts) stay in node_modules.

import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

const dist = fileURLToPath(new URL('./dist/', import.meta.url))

await build({
  entryPoints: [`${dist}serve.js`],
  outfile: `${dist}queue-proxy.bundle.cjs`,
  bundle: true,
  platform: 'node',
  // CommonJS: required from main.js it starts ~15 ms sooner than an ESM
  // bundle (measured with the bench's start-up timing).
  format: 'cjs',
  target: 'node22',
  logLevel: 'warning',
  // The modules' createRequire(import.meta.url) resolves from the bundle's own file.
  define: { 'import.meta.url': 'sluiceBundleUrl' },
  // The tracer and OpenTelemetry are loaded (from node_modules) only when tracing is on.
  external: ['@opentelemetry/*', '@sluice/core/tracing/tracer'],
  banner: { js: "const sluiceBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
})
