// Names of system-internal TLS (knative.dev/networking 1.12: pkg/certificates
// and pkg/config): the Secret the activator reads, its keys, the server name
// dialled and the SAN each revision namespace's certificate must carry.

export const ROUTING_CERT_SECRET = 'routing-serving-certs'
export const LEGACY_SERVER_NAME = 'data-plane.knative.dev'
export const CA_KEY = 'ca.crt'
export const CERT_KEY = 'tls.crt'
export const KEY_KEY = 'tls.key'

export function userSan(namespace: string): string {
  return `kn-user-${namespace.toLowerCase()}`
}
