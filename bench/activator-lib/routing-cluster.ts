// The Kubernetes objects one routing set-up of the routing part serves through kube-api-stub.ts,
// as Knative's controller makes them: the Revision (containerConcurrency 0, HTTP/1), its private
// Endpoints (one ready pod) and private Service (the ClusterIP), config-network, and with
// system-internal-tls the Secret routing-serving-certs of the system namespace.
import type { StubCluster } from './kube-api-stub.ts';
import type { RoutingCerts } from './routing-certs.ts';

export const SYSTEM_NAMESPACE = 'knative-serving';

export interface RevisionCluster {
  namespace: string;
  revision: string;
  /** The pod's address in the private Endpoints, "ip:port" on the queue-proxy's HTTP port. */
  pod: string;
  /** The private Service: ClusterIP and port ("ip:port"). */
  clusterIP: string;
  /** config-network's data (mesh-compatibility-mode, system-internal-tls). */
  configNetwork: Record<string, string>;
  /** With system-internal-tls: the Secret routing-serving-certs is served from these. */
  certs?: RoutingCerts;
}

function split(dest: string): [string, number] {
  const i = dest.lastIndexOf(':');
  return [dest.slice(0, i), Number(dest.slice(i + 1))];
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

export function revisionCluster(c: RevisionCluster): StubCluster {
  const { namespace, revision: name } = c;
  const labels = {
    'serving.knative.dev/revision': name,
    'serving.knative.dev/revisionUID': `uid-${name}`,
    'serving.knative.dev/service': name.replace(/-\d+$/, ''),
    'serving.knative.dev/configuration': name.replace(/-\d+$/, ''),
    'networking.internal.knative.dev/serviceType': 'Private',
  };
  const meta = (n: string, ns = namespace, l: Record<string, string> = labels) => ({ name: n, namespace: ns, resourceVersion: '10', uid: `uid-${n}`, labels: l });
  const [podIP, podPort] = split(c.pod);
  const [clusterIP, clusterPort] = split(c.clusterIP);
  const secrets = c.certs === undefined ? [] : [{
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta('routing-serving-certs', SYSTEM_NAMESPACE, { 'networking.internal.knative.dev/certificate-uid': 'routing' }),
    type: 'kubernetes.io/tls',
    data: { 'ca.crt': b64(c.certs.ca.cert), 'tls.crt': b64(c.certs.routing.cert), 'tls.key': b64(c.certs.routing.key) },
  }];
  return {
    objects: {
      revisions: [{
        apiVersion: 'serving.knative.dev/v1',
        kind: 'Revision',
        metadata: meta(name),
        spec: { containerConcurrency: 0, timeoutSeconds: 300, containers: [{ image: 'app', ports: [{ containerPort: 8080 }] }] },
      }],
      endpoints: [{
        apiVersion: 'v1',
        kind: 'Endpoints',
        metadata: meta(`${name}-private`),
        subsets: [{ addresses: [{ ip: podIP }], ports: [{ name: 'http', port: podPort }] }],
      }],
      services: [{
        apiVersion: 'v1',
        kind: 'Service',
        metadata: meta(`${name}-private`),
        spec: { clusterIP, ports: [{ name: 'http', port: clusterPort, targetPort: podPort }] },
      }],
      secrets,
    },
    configMapData: { 'config-network': c.configNetwork },
  };
}
