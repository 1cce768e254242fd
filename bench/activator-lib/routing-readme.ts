// bench/README.md's "Activator: routing" section, between its own markers (right after the
// "Activator" section): how the routing part measures, what its costs come from, then the
// latest run's table. Written by bench/activator.ts --write-readme when the part ran.
import { NOISY } from '../lib/quiet.ts';
import type { ReportInput } from './report.ts';
import { ACTIVATOR_END, writeMarkedSection } from './readme-section.ts';
import { median, roundRatios, routingSection, type Metric } from './routing-report.ts';
import type { Routing, RoutingResult } from './routing.ts';

export const ROUTING_BEGIN = '<!-- activator-routing:begin -->';
export const ROUTING_END = '<!-- activator-routing:end -->';

export const ROUTING_README_DOC = `## Activator: pod, ClusterIP and TLS routing

    npm run bench:activator -- --parts routing                  # ~5 minutes on a quiet machine
    npm run bench:activator -- --parts routing --write-readme   # also put the table below
    npm run bench:activator -- --parts routing --routing-rounds 5 --duration 4

The routing part (\`activator-lib/routing.ts\`) sends the warm path's traffic (wrk -t1, C = 10,
50, 200, GET of nginx's 13-byte answer) through three activators that differ only in how they
reach the pod. All three are started together and take turns: each round measures every
routing at every C (8 s after a 2 s warm-up), the order rotating with C and round, 3 rounds.

- **pod**: config-network's defaults (\`mesh-compatibility-mode: auto\`); the pod passes the
  probe and requests go to its address, as in the warm-path part.
- **ClusterIP**: \`mesh-compatibility-mode: enabled\`; pods are not probed and every request
  goes to the revision's private Service ClusterIP, here \`127.0.0.2\` on the queue-proxy's port
  (kube-proxy's DNAT happens in the kernel, so no process stands in for it). The pod's address
  listed in the Endpoints has no listener, so only the ClusterIP route can answer.
- **TLS dialling**: config-network \`system-internal-tls: enabled\`; requests go to the
  queue-proxy's TLS port, verified with the CA of Secret \`routing-serving-certs\` (server name
  \`data-plane.knative.dev\`, SAN \`kn-user-bench\`). The certificates are made with \`openssl\`
  at the start of the part (ECDSA P-256, as Knative issues them); without openssl this row is
  skipped with a message. The client side (wrk → activator) stays plain HTTP.

Each activator uses the Kubernetes endpoint source against its own stub API server
(\`kube-api-stub.ts\`, serving the Revision, its private Endpoints and Service, config-network and
the Secret) and runs alone on CPU 0; each queue-proxy is Sluice's, started through
\`certs-queue-proxy.ts\` (which takes its certificate directory from \`BENCH_QP_CERTS_DIR\`), on
CPU 1 with wrk and nginx. After the first 200 the part checks in \`/proc/net/tcp\` that the
activator's connections reached the ClusterIP address or the TLS port (and, for pod routing,
not the ClusterIP). Ratios are to the pod row at the same C and round.

**Where the costs come from.** *ClusterIP routing* changes where a request is sent and how
capacity is counted, not the work per request: the same proxy path and keep-alive pool, one
destination (the ClusterIP) instead of one per pod, one capacity tracker (containerConcurrency ×
ready pods ÷ activators; unlimited here, containerConcurrency 0) instead of one per pod. So the
activator's CPU per request is expected to match pod routing, and differences in the table
within the spread of the rounds are noise. What this loopback set-up cannot show: in a cluster
the ClusterIP is DNATed by kube-proxy (a conntrack lookup in the kernel, microseconds), in a mesh
the request also crosses the Istio sidecars of the activator and of the pod (two more HTTP proxy
hops, and mTLS: the real latency cost of a mesh, outside Sluice), and kube-proxy spreads
connections, not requests, over pods, so the activator's least-loaded choice per request is lost
and tail latency rises when pods are unevenly busy. *TLS dialling* adds work on every request:
the activator encrypts the request and decrypts the response as TLS 1.3 records (AES-GCM, cheap
with AES-NI for small bodies; most of the cost is Node's TLS stream, where every read and write
passes through OpenSSL with an extra copy and callbacks instead of going straight to the TCP
socket), and the queue-proxy does the same on its side (its CPU column). The handshake (ECDHE,
verifying the queue-proxy's certificate against the Secret's CA, the \`kn-user-<namespace>\` SAN
check) happens once per upstream connection; keep-alive amortises it, so it shows only where
connections are opened: at the start of a turn, and when C grows past the connections pooled.

**Measured on 2026-12-04** (three runs of 3 rounds on the shared 2-CPU machine, other processes
taking 7–83 % of the bench CPUs during turns): TLS dialling cost the activator 1.11–1.58× pod
routing's CPU per request (median per C; 7 of the 9 within 1.11–1.25×, roughly +15–30 µs on
115–160 µs); ClusterIP routing 0.86–1.29×, no cost told apart from noise, as expected. The p99
ratios ranged 0.59–2.34× for both and followed the other load more than the routing: this
machine cannot resolve p99 differences of that size (rerun on a quiet machine, e.g. with
\`--routing-rounds 5\`).
`;

/** The measured costs, one clause per routing: the per-C median ratios to pod routing. */
function costs(r: RoutingResult): string {
  const cs = [...new Set(r.points.map((p) => p.connections))];
  const clause = (routing: Routing, metric: Metric): string => {
    const parts = cs.flatMap((c) => {
      const xs = roundRatios(r, routing, c, metric);
      return xs.length === 0 ? [] : [`${median(xs).toFixed(2)}× at C=${c}`];
    });
    return parts.length === 0 ? 'not measured' : parts.join(', ');
  };
  return `**This run's costs** (medians of the per-round ratios to pod routing). ClusterIP routing: activator CPU per request ` +
    `${clause('cluster-ip', 'cpu')}; p99 ${clause('cluster-ip', 'p99')}. TLS dialling: activator CPU per request ` +
    `${clause('tls', 'cpu')}; p99 ${clause('tls', 'p99')}.` +
    (r.points.some((p) => p.otherLoad > NOISY)
      ? ' Other processes used the bench CPUs during this run (column "other load"): a ratio whose range over the rounds spans 1× is not told apart from noise.'
      : '');
}

export function writeRoutingSection(file: string, input: ReportInput, r: RoutingResult): void {
  const { info } = input;
  const content = [
    ROUTING_README_DOC.trimEnd(),
    '',
    costs(r),
    '',
    `### Routing run, ${info.date}`,
    '',
    `Machine: ${info.nproc} CPUs (${info.cpuModel}), kernel ${info.kernel}, node ${info.nodeVersion}, ${info.wrkVersion}.`,
    '',
    ...routingSection(input, r),
  ].join('\n');
  writeMarkedSection(file, ROUTING_BEGIN, ROUTING_END, content, ACTIVATOR_END);
}
