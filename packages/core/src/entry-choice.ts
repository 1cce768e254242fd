// Which form of a component a dist/main.js starts. `npm run build` bundles the
// component's modules into one CommonJS file (esbuild): measured, that starts
// ~20 ms (queue-proxy) to ~0.5 s (activator, with @kubernetes/client-node)
// sooner and keeps 8–50 MiB less resident than resolving and compiling each
// module. The bundle runs only when no TypeScript build is newer than it, so a
// plain `tsc -b` never starts stale code; an image has no build info and
// always runs the bundle.

import { statSync } from 'node:fs'
import { createRequire } from 'node:module'

function modified(relative: string, base: string): number {
  try {
    return statSync(new URL(relative, base)).mtimeMs
  } catch {
    return -1
  }
}

/**
 * Requires `bundle` (relative to `mainUrl`) when it exists and is at least as new as
 * every build-info file, else `modules` (the unbundled entry).
 */
export function startNewest(mainUrl: string, bundle: string, modules: string, buildInfos: readonly string[]): void {
  const built = modified(bundle, mainUrl)
  const fresh = built >= 0 && buildInfos.every((info) => built >= modified(info, mainUrl))
  // Synchronous require: no trip through the asynchronous module loader.
  createRequire(mainUrl)(fresh ? bundle : modules)
}
