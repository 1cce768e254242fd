// Child processes of the local runtime, output prefixed. Each gets its own
// process group, so Ctrl-C reaches only the runtime, which then stops them in
// order (drain first); on any exit of the runtime, survivors are killed.

import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

const children = new Set<ChildProcess>()

export interface SpawnOptions {
  command: string
  args: string[]
  env: Record<string, string>
  cwd: string
  /** Prefix for the child's output lines printed to stdout; null: not printed. */
  label: string | null
  /** Every output line (stdout and stderr), e.g. for `sluice logs`. */
  onLine?: (line: string) => void
}

export function spawnChild(opts: SpawnOptions): ChildProcess {
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue
    const { label, onLine } = opts
    if (label === null && onLine === undefined) {
      stream.resume()
      continue
    }
    createInterface({ input: stream }).on('line', (line) => {
      if (label !== null) process.stdout.write(`${label} ${line}\n`)
      onLine?.(line)
    })
  }
  return child
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** Last resort on exit: kill every child still running. */
export function killAllChildren(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL')
    } catch {}
  }
}
