// Certificates as Knative's certificate reconciler issues them, made with the
// openssl command: a CA, and leaf certificates signed by it whose DNS SANs are
// kn-routing (the activator's routing-serving-certs) or kn-user-<namespace>
// (a revision namespace's serving-certs), each with data-plane.knative.dev.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Ca {
  cert: string
  key: string
}

export interface Leaf {
  cert: string
  key: string
}

function inTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ca-'))
  try {
    return fn(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' })
}

export function makeCa(cn: string): Ca {
  return inTemp((dir) => {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-subj', `/O=knative.dev/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'])
    return { cert: readFileSync(join(dir, 'ca.crt'), 'utf8'), key: readFileSync(join(dir, 'ca.key'), 'utf8') }
  })
}

/** A server certificate signed by `ca` with these DNS SANs (Knative adds data-plane.knative.dev to each). */
export function issue(ca: Ca, cn: string, sans: string[]): Leaf {
  return inTemp((dir) => {
    writeFileSync(join(dir, 'ca.crt'), ca.cert)
    writeFileSync(join(dir, 'ca.key'), ca.key)
    writeFileSync(join(dir, 'ext.cnf'), [
      `subjectAltName=${sans.map((s) => `DNS:${s}`).join(',')}`,
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth',
      '',
    ].join('\n'))
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.csr'), '-subj', `/O=knative.dev/CN=${cn}`])
    openssl(['x509', '-req', '-in', join(dir, 'tls.csr'), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'),
      '-CAcreateserial', '-days', '1', '-extfile', join(dir, 'ext.cnf'), '-out', join(dir, 'tls.crt')])
    return { cert: readFileSync(join(dir, 'tls.crt'), 'utf8'), key: readFileSync(join(dir, 'tls.key'), 'utf8') }
  })
}

/** The Secret routing-serving-certs as the API holds it (base64 data). */
export function routingSecret(namespace: string, caBundle: string, leaf: Leaf) {
  const b64 = (s: string) => Buffer.from(s).toString('base64')
  return {
    metadata: { name: 'routing-serving-certs', namespace, labels: { 'networking.internal.knative.dev/certificate-uid': 'routing' } },
    type: 'kubernetes.io/tls',
    data: { 'ca.crt': b64(caBundle), 'tls.crt': b64(leaf.cert), 'tls.key': b64(leaf.key) },
  }
}
