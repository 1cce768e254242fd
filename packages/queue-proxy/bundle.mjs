// Bundles the built queue-proxy (dist/serve.js and what it imports, Sluice's
// core included) into dist/queue-proxy.bundle.mjs, which dist/main.js starts
// (see src/main.ts). Run by `npm run build` after tsc. Packages loaded through
// createRequire (undici's Pool, prom-client's parts) stay in node_modules.

import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

const dist = fileURLToPath(new URL('./dist/', import.meta.url))

await build({
  entryPoints: [`${dist}serve.js`],
  outfile: `${dist}queue-proxy.bundle.mjs`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  logLevel: 'warning',
  // pino requires node builtins at run time: give the ESM bundle a require.
  banner: { js: "import { createRequire as sluiceCreateRequire } from 'node:module'; const require = sluiceCreateRequire(import.meta.url);" },
})
