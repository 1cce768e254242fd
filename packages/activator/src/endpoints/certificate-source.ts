// The certificates of system-internal TLS, as Knative's certificate cache
// reads them (pkg/activator/certificate/cache.go): Secret
// `routing-serving-certs` of the system namespace, watched through the API (a
// namespaced list/watch, which the activator's Role allows), every add or
// update passed on. A deleted Secret changes nothing: the last certificates
// stay in use, as in Knative.

import { Watch, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from '@sluice/core/logging'
import type { CertificateFeed, CertMaterial } from '../tls/internal-tls.ts'
import { CA_KEY, CERT_KEY, KEY_KEY, ROUTING_CERT_SECRET } from '../tls/names.ts'
import { DEFAULT_BACKOFF, DEFAULT_LIST_TIMEOUT_MS, Reflector, type Backoff, type KubeObject } from './kubernetes-source.ts'

interface SecretObject extends KubeObject {
  data?: Record<string, string>
}

export interface CertificateSourceOptions {
  kubeConfig: KubeConfig
  namespace: string
  log: Logger
  secretName?: string
  backoff?: Backoff
}

export class CertificateSource implements CertificateFeed {
  private readonly opts: CertificateSourceOptions
  private reflector: Reflector<SecretObject> | null = null

  constructor(opts: CertificateSourceOptions) {
    this.opts = opts
  }

  get secretName(): string {
    return this.opts.secretName ?? ROUTING_CERT_SECRET
  }

  async start(onCertificates: (m: CertMaterial) => void): Promise<void> {
    const { kubeConfig, namespace, log } = this.opts
    const name = this.secretName
    let seen = false
    this.reflector = new Reflector<SecretObject>({
      name: 'secrets',
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`,
      upsert: (obj) => {
        if (obj.metadata?.name !== name || (obj.metadata.namespace ?? namespace) !== namespace) return
        seen = true
        const data = obj.data ?? {}
        onCertificates({ ca: decode(data[CA_KEY]), cert: decode(data[CERT_KEY]), key: decode(data[KEY_KEY]) })
      },
      remove: () => {},
    }, kubeConfig, new Watch(kubeConfig), log, this.opts.backoff ?? DEFAULT_BACKOFF, DEFAULT_LIST_TIMEOUT_MS)
    await this.reflector.start()
    if (!seen) log.error({ secret: `${namespace}/${name}` }, 'internal TLS: Secret not found; TLS serving and dialling fail until it appears')
  }

  async stop(): Promise<void> {
    await this.reflector?.stop()
  }
}

function decode(b64: string | undefined): string {
  return b64 === undefined ? '' : Buffer.from(b64, 'base64').toString('utf8')
}
