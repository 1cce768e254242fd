// Manifests from a path, as `kubectl apply -f` takes them: a file, or every
// .yaml/.yml/.json file of a folder (not its subfolders), in name order.

import { readdir, readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'

export interface ManifestText {
  /** Absolute path. */
  path: string
  text: string
}

const MANIFEST_EXT = /\.(ya?ml|json)$/i

export async function readManifestPath(path: string): Promise<ManifestText[]> {
  const abs = resolve(path)
  if (!(await stat(abs)).isDirectory()) return [{ path: abs, text: await readFile(abs, 'utf8') }]
  const names = (await readdir(abs)).filter((n) => MANIFEST_EXT.test(n)).sort()
  return Promise.all(names.map(async (n) => ({ path: join(abs, n), text: await readFile(join(abs, n), 'utf8') })))
}

/** Whether a file name in a watched folder is a manifest. */
export function isManifestName(name: string): boolean {
  return MANIFEST_EXT.test(name)
}
