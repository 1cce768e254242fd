// A network namespace for a test: pods get addresses such as 10.244.0.1/32
// on the namespace's own loopback (a real API server refuses 127.0.0.0/8 in
// Endpoints), and the processes that talk to them run inside it. Nothing is
// routed between the namespace and the host: ports cross over through Unix
// sockets (netns-bridge.ts), so traffic to those addresses never leaves the
// namespace. delete() kills whatever still runs inside and removes it.
// Needs root and iproute2's `ip`; netnsUnavailable() says what is missing.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import type net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { forward } from './netns-bridge.ts'
import type { Exit } from './process.ts'
import { onPath, underWatchdog } from './real-kube-api.ts'
import { close, sleep } from './servers.ts'

const run = promisify(execFile)
const BRIDGE = join(import.meta.dirname, 'netns-bridge.ts')
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Why a network namespace cannot be made here, or undefined when it can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  if (!onPath('ip')) return 'iproute2 (`ip`) is not on PATH'
  return undefined
}

export interface NsProcess {
  child: ChildProcess
  exited: Promise<Exit>
  stdout(): string
  stderr(): string
}

let counter = 0

export class NetNs {
  readonly name: string
  private readonly ip: string
  private readonly dir: string
  private readonly servers: net.Server[] = []
  private readonly bridges: ChildProcess[] = []

  private constructor(name: string, ip: string) {
    this.name = name
    this.ip = ip
    this.dir = mkdtempSync(join(tmpdir(), 'sluice-netns-'))
  }

  /** A new namespace with its loopback up. */
  static async create(): Promise<NetNs> {
    const missing = netnsUnavailable()
    if (missing !== undefined) throw new Error(missing)
    const ns = new NetNs(`sluice-${process.pid}-${++counter}`, onPath('ip')!)
    await run(ns.ip, ['netns', 'add', ns.name])
    await run(ns.ip, ['-n', ns.name, 'link', 'set', 'lo', 'up'])
    return ns
  }

  /** Adds `address` (e.g. 10.244.0.1) as a /32 on the namespace's loopback. */
  async addAddress(address: string): Promise<void> {
    await run(this.ip, ['-n', this.name, 'addr', 'add', `${address}/32`, 'dev', 'lo'])
  }

  /** Runs `bin args` inside the namespace with exactly `env` (plus PATH); output is collected. */
  spawn(bin: string, args: string[], env: Record<string, string>): NsProcess {
    const [sh, shArgs] = underWatchdog(bin, args)
    const child = spawn(this.ip, ['netns', 'exec', this.name, sh, ...shArgs], {
      env: { PATH: SYSTEM_PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d })
    const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })))
    return { child, exited, stdout: () => out, stderr: () => err }
  }

  /** Makes the host's 127.0.0.1:`hostPort` reachable inside the namespace at 127.0.0.1:`nsPort`. */
  async forwardIn(hostPort: number, nsPort = hostPort): Promise<void> {
    const sock = join(this.dir, `in-${hostPort}.sock`)
    this.servers.push(await forward({ path: sock }, { host: '127.0.0.1', port: hostPort }))
    await this.bridge(`tcp:127.0.0.1:${nsPort}`, `unix:${sock}`)
  }

  /** Makes `nsHost`:`nsPort` inside the namespace reachable on the host; resolves with the host port (127.0.0.1). */
  async forwardOut(nsPort: number, nsHost = '127.0.0.1'): Promise<number> {
    const sock = join(this.dir, `out-${nsPort}.sock`)
    await this.bridge(`unix:${sock}`, `tcp:${nsHost}:${nsPort}`)
    const server = await forward({ host: '127.0.0.1', port: 0 }, { path: sock })
    this.servers.push(server)
    return (server.address() as net.AddressInfo).port
  }

  private async bridge(listen: string, target: string): Promise<void> {
    // Not under the watchdog: the bridge ends itself when its stdin (this process) goes away.
    const child = spawn(this.ip, ['netns', 'exec', this.name, process.execPath, BRIDGE, listen, target], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.bridges.push(child)
    let out = ''
    let err = ''
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d })
    await new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d
        if (out.includes('ready\n')) resolve()
      })
      child.once('exit', (code) => reject(new Error(`netns bridge ${listen} -> ${target} exited (${code}): ${err}`)))
    })
  }

  /** Kills every process left in the namespace, removes it and the socket files. */
  async delete(): Promise<void> {
    for (const b of this.bridges) b.stdin?.end()
    for (let i = 0; i < 50; i++) {
      const pids = (await run(this.ip, ['netns', 'pids', this.name]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean)
      if (pids.length === 0) break
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL')
        } catch { /* already gone */ }
      }
      await sleep(20)
    }
    await run(this.ip, ['netns', 'del', this.name]).catch(() => {})
    await Promise.all(this.servers.map((s) => close(s)))
    rmSync(this.dir, { recursive: true, force: true })
  }
}
