// `npm start` until the local runtime lands: the helloworld app behind a real
// queue-proxy process, configured with the environment Knative would give it.
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
const node = process.execPath
const appPort = Number(process.env.SLUICE_DEMO_APP_PORT ?? 18080)
const port = Number(process.env.SLUICE_DEMO_PORT ?? 8012)

const children: ChildProcess[] = []
function run(args: string[], env: Record<string, string>): ChildProcess {
  const c = spawn(node, args, { cwd: root, env: { ...process.env, ...env }, stdio: 'inherit' })
  children.push(c)
  c.on('exit', (code, sig) => {
    if (!stopping) {
      console.error(`${args[0]} exited (${code ?? sig}); stopping`)
      stop(1)
    }
  })
  return c
}

let stopping = false
function stop(code: number): void {
  if (stopping) return
  stopping = true
  for (const c of children) c.kill('SIGKILL')
  process.exit(code)
}
process.on('SIGINT', () => stop(0))
process.on('SIGTERM', () => stop(0))

run(['examples/helloworld/app.js'], { PORT: String(appPort), TARGET: 'Sluice' })
run(['packages/queue-proxy/dist/main.js'], {
  SERVING_NAMESPACE: 'default', SERVING_SERVICE: 'helloworld', SERVING_CONFIGURATION: 'helloworld',
  SERVING_REVISION: 'helloworld-00001', SERVING_POD: 'helloworld-00001-local', SERVING_POD_IP: '127.0.0.1',
  QUEUE_SERVING_PORT: String(port), QUEUE_SERVING_TLS_PORT: '8112', USER_PORT: String(appPort),
  CONTAINER_CONCURRENCY: '0', REVISION_TIMEOUT_SECONDS: '300', SERVING_LOGGING_CONFIG: '', SERVING_LOGGING_LEVEL: 'info',
  SERVING_READINESS_PROBE: JSON.stringify({ tcpSocket: { port: appPort, host: '127.0.0.1' }, successThreshold: 1 }),
  SLUICE_ADMIN_PORT: process.env.SLUICE_ADMIN_PORT ?? '18022', SLUICE_METRICS_PORT: process.env.SLUICE_METRICS_PORT ?? '19090',
  SLUICE_BIND_ADDRESS: '127.0.0.1', SLUICE_DRAIN_QUIET_PERIOD: '0s',
})
setTimeout(() => {
  console.log(`\nhelloworld is served through a Sluice queue-proxy at http://127.0.0.1:${port}/`)
  console.log(`  curl http://127.0.0.1:${port}/`)
  console.log(`  curl -s http://127.0.0.1:${process.env.SLUICE_METRICS_PORT ?? 19090}/metrics | xxd   # the autoscaler's protobuf Stat`)
  console.log('Ctrl-C stops everything.\n')
}, 500)
