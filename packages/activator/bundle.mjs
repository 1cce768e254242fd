// Bundles the built activator into two CommonJS files that dist/main.js starts
// (see core's entry-choice.ts). Run by `npm run build` after tsc.
// - dist/activator.bundle.cjs: serve.js and everything it imports, Sluice's
//   core included;
// - dist/kubernetes.bundle.cjs: the Kubernetes endpoint source with
//   @kubernetes/client-node, loaded only in kubernetes mode. Bundled, client-node
//   loads in ~0.1 s and ~45 MiB instead of ~0.4 s and ~85 MiB as ~900 modules.
// Packages loaded through createRequire (undici's Agent, prom-client's parts)
// and tracing (loaded only when configured) stay in node_modules.

import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

const dist = fileURLToPath(new URL('./dist/', import.meta.url))

const common = {
  bundle: true,
  platform: 'node',
  // CommonJS: required synchronously from main.js (measured ~15 ms sooner than ESM for the queue-proxy).
  format: 'cjs',
  target: 'node22',
  logLevel: 'warning',
  minifyWhitespace: true,
  minifySyntax: true,
  // Optional native helpers of ws, and tracing, which is loaded only when turned on.
  external: ['bufferutil', 'utf-8-validate', '@opentelemetry/*', '@sluice/core/tracing/tracer'],
  // The modules' createRequire(import.meta.url) resolves from the bundle's own file.
  define: { 'import.meta.url': 'sluiceBundleUrl' },
  banner: { js: "const sluiceBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
}

/** serve.js's import of the Kubernetes source becomes an import of its bundle. */
const kubernetesApart = {
  name: 'kubernetes-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/endpoints\/kubernetes\.js$/ }, () => ({ path: './kubernetes.bundle.cjs', external: true }))
  },
}

/**
 * Keeps the Kubernetes bundle to what the source uses:
 * - client-node's modules are marked free of import side effects, so the ~900
 *   generated model and API modules its index re-exports are left out (only
 *   polyfill.js has a side effect: a File global Node >= 20 already has);
 * - one undici, and only its fetch and agents: `undici` resolves to
 *   undici-slim.cjs, whose requires resolve to the copy client-node uses (the
 *   same version as ours, installed apart).
 */
const kubernetesLean = {
  name: 'kubernetes-lean',
  setup(b) {
    const clientNode = fileURLToPath(new URL('.', import.meta.resolve('@kubernetes/client-node')))
    const slimUndici = fileURLToPath(new URL('./undici-slim.cjs', import.meta.url))
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'kubernetes-lean') return undefined
      const fromClientNode = args.resolveDir.startsWith(clientNode)
      if (args.path === 'undici') return { path: slimUndici }
      const isUndici = args.path.startsWith('undici/')
      if (!isUndici && !fromClientNode && !args.path.startsWith('@kubernetes/client-node')) return undefined
      const resolveDir = isUndici ? clientNode : args.resolveDir
      const r = await b.resolve(args.path, { kind: args.kind, resolveDir, importer: args.importer, pluginData: 'kubernetes-lean' })
      if (r.errors.length > 0 || r.external) return r
      const pure = r.path.startsWith(clientNode) && !r.path.endsWith('polyfill.js')
      return pure ? { ...r, sideEffects: false } : r
    })
  },
}

await Promise.all([
  build({ ...common, entryPoints: [`${dist}serve.js`], outfile: `${dist}activator.bundle.cjs`, plugins: [kubernetesApart] }),
  build({ ...common, entryPoints: [`${dist}endpoints/kubernetes.js`], outfile: `${dist}kubernetes.bundle.cjs`, plugins: [kubernetesLean] }),
])
