// `sluice run --watch`: the manifest file (or folder) is read again after it
// changes (a short debounce: editors write in several steps) and handed on.
// Watching the folder, not the file, survives editors that save by rename.

import { watch, type FSWatcher } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { isManifestName, readManifestPath, type ManifestText } from '../manifest/files.ts'

export const DEBOUNCE_MS = 150

export async function watchManifests(path: string, onChange: (files: ManifestText[]) => Promise<void>, onError: (err: Error) => void): Promise<() => void> {
  const abs = resolve(path)
  const isDir = (await stat(abs)).isDirectory()
  const dir = isDir ? abs : dirname(abs)
  const file = isDir ? null : basename(abs)
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  const fire = (): void => {
    timer = undefined
    running = running.then(() => readManifestPath(abs)).then(onChange).catch(onError)
  }
  const watcher: FSWatcher = watch(dir, (_event, name) => {
    if (name !== null && (file !== null ? name !== file : !isManifestName(name))) return
    clearTimeout(timer)
    timer = setTimeout(fire, DEBOUNCE_MS)
  })
  watcher.on('error', onError)
  return () => {
    clearTimeout(timer)
    watcher.close()
  }
}
