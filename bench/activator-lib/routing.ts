// Part 1b, routing: the warm path's activator → queue-proxy traffic (wrk against the activator,
// nginx behind the queue-proxy) through three activators that differ only in how they reach the
// pod, measured side by side in one run, taking turns at each C:
//   pod         config-network defaults (mesh-compatibility-mode auto): the pod passes the probe,
//               requests go to the pod's address (the warm-path part's activator row);
//   cluster-ip  mesh-compatibility-mode enabled: pods are never probed and every request goes to
//               the private Service's ClusterIP, here 127.0.0.2 on the queue-proxy's port (the
//               pod's own address in the Endpoints has nothing listening, so only the ClusterIP
//               can answer); kube-proxy's DNAT is in the kernel, so no extra process is in the way;
//   tls         system-internal-tls enabled: requests go to the pod's TLS port, verified with the
//               CA of Secret routing-serving-certs, server name data-plane.knative.dev.
// Every activator runs with the Kubernetes endpoint source against its own kube-api-stub.ts
// serving the revision, its private Endpoints and Service, config-network and (tls) the Secret.
// Each queue-proxy is Sluice's (certs-queue-proxy.ts, so the tls one finds its certificates).
import { join } from 'node:path';
import { startBackend } from '../lib/backend.ts';
import { stop } from '../lib/children.ts';
import { launchTarget, type RunningTarget } from '../lib/launch.ts';
import { freePort, pollUntilOk } from '../lib/net.ts';
import { BACKEND_BODY } from '../lib/nginx-config.ts';
import type { TargetSpec } from '../lib/targets.ts';
import { which } from '../lib/tools.ts';
import type { WrkResult } from '../lib/wrk.ts';
import { launchContext, type BenchContext } from './context.ts';
import { establishedOn } from './established.ts';
import { startKubeApiStub, type KubeApiStub } from './kube-api-stub.ts';
import { waitForPort } from './port-wait.ts';
import { NAMESPACE, queueProxySpec, revisionHeaders, startActivator, type ActivatorProcess } from './processes.ts';
import { makeRoutingCerts, type RoutingCerts } from './routing-certs.ts';
import { measureWrk } from './warm-path.ts';
import { revisionCluster, SYSTEM_NAMESPACE } from './routing-cluster.ts';

export const ROUTINGS = ['pod', 'cluster-ip', 'tls'] as const;
export type Routing = (typeof ROUTINGS)[number];

/** The private Service's ClusterIP stand-in: its own loopback address. */
export const CLUSTER_IP = '127.0.0.2';

export interface RoutingPoint {
  routing: Routing;
  connections: number;
  /** Which sweep over the concurrencies (0-based): every round measures every routing at every C. */
  round: number;
  wrk: WrkResult;
  /** The activator's CPU µs per request (alone on the proxy CPU). */
  cpuUsPerRequest: number | undefined;
  /** The queue-proxy's CPU µs per request (load CPU). */
  qpCpuUsPerRequest: number | undefined;
  otherLoad: number;
}

export interface RoutingResult {
  points: RoutingPoint[];
  /** Routings not measured and why (e.g. openssl missing): not failures. */
  skipped: string[];
  /** What showed each routing took its path (connections seen on the listener), one line each. */
  checks: string[];
  failures: string[];
}

export interface RoutingOptions {
  concurrencies: number[];
  /** Sweeps over the concurrencies; more, shorter turns make the ratios less sensitive to drifting background load. */
  rounds: number;
  durationS: number;
  warmupS: number;
}

const REVISION = 'routing-00001';
const CERTS_QUEUE_PROXY = 'bench/activator-lib/certs-queue-proxy.ts';

interface SetUp {
  routing: Routing;
  qp: RunningTarget;
  stub: KubeApiStub;
  activator: ActivatorProcess;
}

export async function runRouting(ctx: BenchContext, opts: RoutingOptions): Promise<RoutingResult> {
  const result: RoutingResult = { points: [], skipped: [], checks: [], failures: [] };
  let certs: RoutingCerts | undefined;
  const openssl = which('openssl');
  if (openssl === undefined) {
    result.skipped.push('tls: openssl not found (Debian package openssl); the TLS dialling row is skipped');
  } else {
    try {
      certs = makeRoutingCerts(openssl, join(ctx.workDir, 'routing-certs'), NAMESPACE);
    } catch (err) {
      result.skipped.push(`tls: openssl could not make the certificates: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  for (const line of result.skipped) ctx.log(`routing: skipped ${line}`);
  const backend = await startBackend(ctx.tools, ctx.workDir, ctx.loadCpu);
  ctx.log(`routing: backend nginx on 127.0.0.1:${backend.port} (CPU ${ctx.loadCpu})`);
  const setUps: SetUp[] = [];
  try {
    for (const routing of ROUTINGS) {
      if (routing === 'tls' && certs === undefined) continue;
      try {
        const s = await setUp(ctx, routing, backend.port, certs, result.checks);
        setUps.push(s);
      } catch (err) {
        result.failures.push(`${routing}: ${(err as Error).message}`);
        ctx.log(`routing ${routing}: FAILED: ${(err as Error).message}`);
      }
    }
    const all = setUps.flatMap((s) => [s.activator.child.pid, s.qp.child!.pid]);
    for (let round = 0; round < opts.rounds; round++) {
      for (const [i, connections] of opts.concurrencies.entries()) {
        // The order rotates with C and round, so no routing always runs first (or right after another).
        const turn = setUps.map((_, k) => setUps[(k + i + round) % setUps.length]!);
        for (const s of turn) {
          const groups = { target: [s.activator.child.pid], qp: [s.qp.child!.pid] };
          const point = await wrkPoint(ctx, opts, s.routing, s.activator.httpPort, connections, round, {
            ...groups,
            backend: [backend.child.pid],
            idle: all.filter((pid) => pid !== s.activator.child.pid && pid !== s.qp.child!.pid),
          });
          result.points.push(point);
          ctx.log(`routing round ${round + 1}/${opts.rounds} ${s.routing} C=${connections}: ${describe(point)}`);
          for (const t of setUps) {
            if (t.activator.child.exitStatus !== undefined) throw new Error(`${t.routing}: activator exited (${t.activator.child.exitStatus}) during the load runs`);
            if (t.qp.child!.exitStatus !== undefined) throw new Error(`${t.routing}: queue-proxy exited (${t.qp.child!.exitStatus}) during the load runs`);
          }
        }
      }
    }
  } catch (err) {
    result.failures.push((err as Error).message);
    ctx.log(`routing: FAILED: ${(err as Error).message}`);
  } finally {
    for (const s of setUps) {
      await s.activator.stop();
      await s.stub.close();
      await s.qp.stop();
    }
    await stop(backend.child);
  }
  return result;
}

/** Sluice's queue-proxy through certs-queue-proxy.ts; with `certsDir` it also serves TLS on `tlsPort`. */
function certsQueueProxySpec(certsDir: string | undefined, tlsPort: number): TargetSpec {
  const spec = queueProxySpec(REVISION, 0);
  if (spec.launch?.kind !== 'command') throw new Error('queue-proxy spec without a command');
  const env: Record<string, string> = { ...spec.launch.env, QUEUE_SERVING_TLS_PORT: String(tlsPort) };
  if (certsDir !== undefined) env.BENCH_QP_CERTS_DIR = certsDir;
  return { ...spec, name: `queue-proxy-routing`, launch: { kind: 'command', command: ['{node}', CERTS_QUEUE_PROXY], env } };
}

/** Starts queue-proxy, stub API server and activator for one routing; resolves after the first 200 through them. */
async function setUp(ctx: BenchContext, routing: Routing, backendPort: number, certs: RoutingCerts | undefined, checks: string[]): Promise<SetUp> {
  const tlsPort = await freePort();
  const tls = routing === 'tls' ? certs : undefined;
  const launched = await launchTarget(certsQueueProxySpec(tls?.queueProxyDir, tlsPort), launchContext(ctx, ctx.loadCpu, backendPort));
  const qp = launched.target;
  let stub: KubeApiStub | undefined;
  let activator: ActivatorProcess | undefined;
  try {
    if (launched.body !== BACKEND_BODY) throw new Error(`queue-proxy answered ${JSON.stringify(launched.body.slice(0, 100))}`);
    if (tls !== undefined) await waitForPort(tlsPort, 5000, () => (qp.child!.exitStatus === undefined ? undefined : 'queue-proxy exited'));
    // cluster-ip: the pod's own address answers nothing (as behind a sidecar refusing plain
    // traffic); mesh mode enabled never probes it.
    const pod = routing === 'cluster-ip' ? `127.0.0.1:${await freePort()}` : `127.0.0.1:${qp.port}`;
    const configNetwork: Record<string, string> =
      routing === 'cluster-ip' ? { 'mesh-compatibility-mode': 'enabled' } : routing === 'tls' ? { 'system-internal-tls': 'enabled' } : {};
    const cluster = revisionCluster({ namespace: NAMESPACE, revision: REVISION, pod, clusterIP: `${CLUSTER_IP}:${qp.port}`, configNetwork, ...(tls === undefined ? {} : { certs: tls }) });
    stub = await startKubeApiStub(join(ctx.workDir, `kubeconfig-routing-${routing}.json`), SYSTEM_NAMESPACE, cluster);
    activator = await startActivator({
      ...ctx,
      taskset: ctx.tools.taskset,
      cpu: ctx.proxyCpu,
      autoscalerUrl: ctx.stats.url,
      label: `routing-${routing}`,
      kubeconfig: stub.kubeconfig,
      env: { SYSTEM_NAMESPACE, SLUICE_HTTPS_PORT: String(await freePort()), SLUICE_QUEUE_TLS_PORT: String(tlsPort) },
    });
    const a = activator;
    const reply = await pollUntilOk(a.httpPort, revisionHeaders(REVISION), 15_000, () =>
      a.child.exitStatus === undefined ? undefined : `activator exited with ${a.child.exitStatus}`,
    );
    if (reply.body !== BACKEND_BODY) throw new Error(`activator answered ${JSON.stringify(reply.body.slice(0, 100))}`);
    checks.push(check(routing, qp.port, tlsPort));
    ctx.log(`routing ${routing}: ${checks.at(-1)}`);
    return { routing, qp, stub, activator };
  } catch (err) {
    await activator?.stop();
    await stub?.close();
    await qp.stop();
    throw err;
  }
}

/** Where the activator's connections ended up, after the first 200 (throws when not where they should). */
function check(routing: Routing, qpPort: number, tlsPort: number): string {
  if (routing === 'cluster-ip') {
    const n = establishedOn(qpPort, CLUSTER_IP);
    if (n === 0) throw new Error(`no connection reached the ClusterIP ${CLUSTER_IP}:${qpPort}`);
    return `cluster-ip: ${n} connection(s) accepted on the ClusterIP ${CLUSTER_IP}:${qpPort}; the pod's listed address has no listener`;
  }
  if (routing === 'tls') {
    const n = establishedOn(tlsPort);
    if (n === 0) throw new Error(`no connection reached the queue-proxy's TLS port ${tlsPort}`);
    return `tls: ${n} connection(s) accepted on the queue-proxy's TLS port ${tlsPort}`;
  }
  const viaCluster = establishedOn(qpPort, CLUSTER_IP);
  if (viaCluster > 0) throw new Error(`pod routing: ${viaCluster} connection(s) went to the ClusterIP ${CLUSTER_IP}:${qpPort}`);
  return `pod: ${establishedOn(qpPort, '127.0.0.1')} connection(s) accepted on the pod address 127.0.0.1:${qpPort} (requests and probes), none on the ClusterIP`;
}

async function wrkPoint(
  ctx: BenchContext,
  opts: RoutingOptions,
  routing: Routing,
  port: number,
  connections: number,
  round: number,
  groups: Record<string, number[]>,
): Promise<RoutingPoint> {
  return { routing, round, ...(await measureWrk(ctx, opts, `http://127.0.0.1:${port}/`, revisionHeaders(REVISION), connections, groups)) };
}

function describe(p: RoutingPoint): string {
  const cpu = p.cpuUsPerRequest === undefined ? '' : `, activator ${p.cpuUsPerRequest.toFixed(1)} µs CPU/req`;
  const qp = p.qpCpuUsPerRequest === undefined ? '' : `, queue-proxy ${p.qpCpuUsPerRequest.toFixed(1)}`;
  const errors = p.wrk.errors > 0 ? `, ${p.wrk.errors} errors` : '';
  return `${Math.round(p.wrk.requestsPerSecond)} req/s, p50 ${(p.wrk.p50Us / 1000).toFixed(3)} ms, p99 ${(p.wrk.p99Us / 1000).toFixed(3)} ms${cpu}${qp}${errors}, other load ${(p.otherLoad * 100).toFixed(0)}%`;
}
