// Certificates for the routing part's system-internal-tls row, made with the openssl command as
// Knative's certificate reconciler would issue them: a CA; the activator's routing-serving-certs
// (DNS SANs kn-routing and data-plane.knative.dev); a revision namespace's serving certificate
// for the queue-proxy (kn-user-<namespace> and data-plane.knative.dev). ECDSA P-256, as Knative's.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface RoutingCerts {
  ca: KeyPair;
  /** The activator's certificate (Secret routing-serving-certs). */
  routing: KeyPair;
  /** The queue-proxy's certificate; also written as tls.crt / tls.key in `queueProxyDir`. */
  queueProxy: KeyPair;
  queueProxyDir: string;
}

const SERVER_NAME = 'data-plane.knative.dev';
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(openssl: string, args: string[]): void {
  execFileSync(openssl, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function read(dir: string, name: string): KeyPair {
  return { cert: readFileSync(join(dir, `${name}.crt`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
}

function leaf(bin: string, dir: string, name: string, sans: string[]): KeyPair {
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${sans.map((s) => `DNS:${s}`).join(',')}\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(bin, ['req', ...EC, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', `/O=knative.dev/CN=${name}`]);
  openssl(bin, ['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial',
    '-days', '2', '-extfile', join(dir, `${name}.ext`), '-out', join(dir, `${name}.crt`)]);
  return read(dir, name);
}

/** Makes the certificates under `dir` with the openssl binary `bin`; throws with openssl's stderr on failure. */
export function makeRoutingCerts(bin: string, dir: string, namespace: string): RoutingCerts {
  mkdirSync(dir, { recursive: true });
  openssl(bin, ['req', '-x509', ...EC, '-days', '2', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'),
    '-subj', '/O=knative.dev/CN=control-protocol-certificate', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  const ca = read(dir, 'ca');
  const routing = leaf(bin, dir, 'routing', ['kn-routing', SERVER_NAME]);
  const queueProxy = leaf(bin, dir, 'queue-proxy', [`kn-user-${namespace}`, SERVER_NAME]);
  const queueProxyDir = join(dir, 'queue-proxy-certs');
  mkdirSync(queueProxyDir, { recursive: true });
  writeFileSync(join(queueProxyDir, 'tls.crt'), queueProxy.cert);
  writeFileSync(join(queueProxyDir, 'tls.key'), queueProxy.key);
  return { ca, routing, queueProxy, queueProxyDir };
}
