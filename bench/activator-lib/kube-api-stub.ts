// A Kubernetes API stand-in for timing activator start-ups: every collection the
// two activators list (Knative's informers: revisions, endpoints, services,
// secrets and configmaps; Sluice's: revisions, endpoints, services) answers with
// the seeded objects, single ConfigMaps and /version answer, and watches stay
// open without events, as on a quiet cluster. Selectors are not applied: both
// activators get the same, small, cluster.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

const LIST_KINDS: Record<string, [apiVersion: string, kind: string]> = {
  revisions: ['serving.knative.dev/v1', 'RevisionList'],
  endpoints: ['v1', 'EndpointsList'],
  services: ['v1', 'ServiceList'],
  secrets: ['v1', 'SecretList'],
  configmaps: ['v1', 'ConfigMapList'],
  endpointslices: ['discovery.k8s.io/v1', 'EndpointSliceList'],
};

/** The ConfigMaps Knative's activator reads at start (empty data: Knative's defaults). */
const CONFIG_MAPS = ['config-logging', 'config-observability', 'config-tracing', 'config-network', 'config-features', 'config-deployment'];

/** What a part puts in the stub instead of the seeded cluster (additions for the routing part). */
export interface StubCluster {
  /** Items per collection (revisions, endpoints, services, secrets), replacing the seeded revision. */
  objects?: Record<string, unknown[]>;
  /** Data of ConfigMaps of the system namespace by name (config-network); the others stay empty. */
  configMapData?: Record<string, Record<string, string>>;
}

export interface KubeApiStub {
  url: string;
  /** Writes a kubeconfig for the stub (plain HTTP) to `file`. */
  kubeconfig: string;
  close(): Promise<void>;
}

function revisionObjects(namespace: string, name: string, port: number): Record<string, unknown[]> {
  const labels = { 'serving.knative.dev/revision': name, 'serving.knative.dev/revisionUID': `uid-${name}`, 'serving.knative.dev/service': name.replace(/-\d+$/, ''), 'serving.knative.dev/configuration': name.replace(/-\d+$/, '') };
  const meta = (n: string, type: string) => ({ name: n, namespace, resourceVersion: '10', uid: `uid-${n}`, labels: { ...labels, 'networking.internal.knative.dev/serviceType': type } });
  return {
    revisions: [{ apiVersion: 'serving.knative.dev/v1', kind: 'Revision', metadata: { name, namespace, resourceVersion: '10', uid: `uid-${name}`, labels }, spec: { containerConcurrency: 0, timeoutSeconds: 300, containers: [{ image: 'app', ports: [{ containerPort: 8080 }] }] } }],
    endpoints: [{ apiVersion: 'v1', kind: 'Endpoints', metadata: meta(`${name}-private`, 'Private'), subsets: [] }], // scaled to zero: nothing to probe
    services: [{ apiVersion: 'v1', kind: 'Service', metadata: meta(`${name}-private`, 'Private'), spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: port }] } }],
  };
}

export async function startKubeApiStub(kubeconfigFile: string, systemNamespace: string, cluster: StubCluster = {}): Promise<KubeApiStub> {
  const seeded = cluster.objects ?? revisionObjects('default', 'hello-00001', 8012);
  const configMap = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: systemNamespace, resourceVersion: '10', uid: `uid-${name}` }, data: cluster.configMapData?.[name] ?? {} });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    const json = (body: unknown): void => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/version') return json({ major: '1', minor: '26', gitVersion: 'v1.26.0', platform: 'linux/amd64' });
    const single = /\/configmaps\/([^/]+)$/.exec(url.pathname);
    if (single !== null) return json(configMap(single[1]!));
    const collection = url.pathname.split('/').pop() ?? '';
    const kind = LIST_KINDS[collection];
    if (kind === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
    }
    const watch = url.searchParams.get('watch');
    if (watch === 'true' || watch === '1') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      return; // open and quiet until the client goes
    }
    const items = collection === 'configmaps' ? CONFIG_MAPS.map(configMap) : (seeded[collection] ?? []);
    json({ apiVersion: kind[0], kind: kind[1], metadata: { resourceVersion: '10' }, items });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  writeFileSync(kubeconfigFile, JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'stub', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'stub', user: {} }],
    contexts: [{ name: 'stub', context: { cluster: 'stub', user: 'stub' } }],
    'current-context': 'stub',
  }));
  return {
    url,
    kubeconfig: kubeconfigFile,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
