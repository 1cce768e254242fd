// The `sluice` CLI as a user runs it: `sluice run` in its own process,
// `sluice get ksvc|revisions|routes` against its status API, and Ctrl-C
// (SIGINT) stopping everything it started — activator, queue-proxy, app.

import t from 'tap'
import { randomUUID } from 'node:crypto'
import { freePort } from '../../helpers/process.ts'
import { descendants, killCli, stillAlive, type ProcessInfo, processesMentioning, runCli, send, spawnCli, TEST_AUTOSCALER_CONFIG, tempDir, waitFor, writeService } from '../../helpers/local.ts'

/** A kubectl-style table as rows of header → cell, cut at the header's column starts. */
function parseTable(text: string): Record<string, string>[] {
  const [header, ...rows] = text.trimEnd().split('\n')
  const names = header!.trim().split(/\s{2,}/)
  let from = 0
  const starts = names.map((n) => {
    const at = header!.indexOf(n, from)
    from = at + n.length
    return at
  })
  return rows.map((line) => Object.fromEntries(names.map((n, i) => [n, line.slice(starts[i], starts[i + 1] ?? line.length).trim()])))
}

t.test('sluice run, then sluice get ksvc|revisions|routes, then Ctrl-C leaves no process behind', async (t) => {
  const dir = tempDir(t)
  // Every process the runtime starts inherits PATH (the app and queue-proxy
  // through their environment, the activator too): a unique entry finds them in /proc.
  const marker = `/nonexistent/sluice-test-${randomUUID()}`
  const [ingressPort, statusPort] = [await freePort(), await freePort()]
  const env = {
    SLUICE_INGRESS_PORT: String(ingressPort),
    SLUICE_STATUS_PORT: String(statusPort),
    SLUICE_AUTOSCALER_CONFIG: TEST_AUTOSCALER_CONFIG,
    PATH: `${process.env.PATH}:${marker}`,
  }
  const manifest = writeService(dir, { name: 'clitest', args: [`--marker=${marker}`] })
  const cli = spawnCli(['run', manifest], env)
  let started: ProcessInfo[] = []
  t.teardown(() => killCli(cli, started))
  t.teardown(() => { if (!t.passing()) t.comment(cli.lines.join('\n')) })

  const served = await cli.waitForLine(/service default\/clitest is served at/)
  t.match(served, `http://clitest.default.example.com through http://127.0.0.1:${ingressPort}`)
  const reply = await send(`http://127.0.0.1:${ingressPort}`, { host: 'clitest.default.example.com' })
  t.equal(reply.status, 200, 'the ingress on SLUICE_INGRESS_PORT answers for the service host')

  const get = async (what: string) => {
    const r = await runCli(['get', what], { SLUICE_STATUS_PORT: String(statusPort) })
    t.equal(r.code, 0, `sluice get ${what} exits 0`)
    return { rows: parseTable(r.stdout), header: r.stdout.split('\n')[0]!.trim().split(/\s{2,}/) }
  }
  const ksvc = await get('ksvc')
  t.same(ksvc.header, ['NAME', 'URL', 'LATESTCREATED', 'LATESTREADY', 'READY', 'REASON'], 'ksvc columns')
  t.same(ksvc.rows, [{ NAME: 'clitest', URL: 'http://clitest.default.example.com', LATESTCREATED: 'clitest-00001', LATESTREADY: 'clitest-00001', READY: 'True', REASON: '' }])

  const revs = await get('revisions')
  t.same(revs.header, ['NAME', 'CONFIG NAME', 'K8S SERVICE NAME', 'GENERATION', 'READY', 'REASON', 'ACTUAL REPLICAS', 'DESIRED REPLICAS'], 'revision columns')
  t.same(revs.rows, [{ NAME: 'clitest-00001', 'CONFIG NAME': 'clitest', 'K8S SERVICE NAME': '', GENERATION: '1', READY: 'True', REASON: '', 'ACTUAL REPLICAS': '1', 'DESIRED REPLICAS': '1' }])

  const routes = await get('routes')
  t.same(routes.header, ['NAME', 'URL', 'READY', 'REASON'], 'route columns')
  t.same(routes.rows, [{ NAME: 'clitest', URL: 'http://clitest.default.example.com', READY: 'True', REASON: '' }])

  // Ctrl-C: the runtime drains and stops every process it started, then exits.
  started = descendants(cli.child.pid!)
  const found = processesMentioning(marker).filter((p) => p.pid !== cli.child.pid)
  t.ok(found.length >= 3, `activator, queue-proxy and app are running (${found.length} processes found by marker)`)
  t.ok(found.every((p) => started.some((s) => s.pid === p.pid)), 'all of them started by the CLI')
  cli.child.kill('SIGINT')
  const exit = await Promise.race([cli.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000).unref())])
  t.same(exit, { code: 0, signal: null }, 'sluice run exits 0 on SIGINT')
  t.ok(cli.lines.includes('stopping: draining and stopping every process'), 'and says what it does')
  const leftovers = await waitFor(() => processesMentioning(marker).length === 0, 1000) ? [] : processesMentioning(marker)
  t.same(leftovers, [], 'no process with the marker is left')
  t.same(stillAlive(started), [], 'none of the processes the CLI started is alive')
})

t.test('sluice get with no runtime running says so and exits 1', async (t) => {
  const port = await freePort()
  const r = await runCli(['get', 'ksvc'], { SLUICE_STATUS_PORT: String(port) })
  t.equal(r.code, 1)
  t.match(r.stderr, `sluice: no sluice runtime answers on 127.0.0.1:${port} (start one with: sluice run service.yaml)`)
})
