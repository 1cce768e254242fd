// System-internal TLS in the activator (spec §2.9, Knative's
// pkg/activator/certificate): one set of certificates, from Secret
// `routing-serving-certs` of the system namespace, serves the TLS port and
// verifies queue-proxies. Queue-proxies are dialled on their TLS port with the
// Secret's CA (every certificate in ca.crt, so a CA rotation can publish old
// and new together), server name data-plane.knative.dev, TLS 1.3, and must
// also list the DNS SAN kn-user-<revision namespace>.
//
// New certificates apply to new connections only: the server swaps its secure
// context, and dialling moves to fresh agents while the old ones finish their
// requests and close (undici's close waits for them), so nothing in flight fails.
// A certificate that does not verify is an error (502), never a plain-text retry.

import { createRequire } from 'node:module'
import { X509Certificate } from 'node:crypto'
import tls from 'node:tls'
import type { Agent as AgentType, buildConnector as BuildConnector, Dispatcher } from 'undici'
import type { Logger } from '@sluice/core/logging'
import { CA_KEY, LEGACY_SERVER_NAME, userSan } from './names.ts'

const require = createRequire(import.meta.url)
// undici's index loads fetch, websockets, caches... (~60 ms); only these are needed.
const Agent = require('undici/lib/dispatcher/agent.js') as typeof AgentType
const buildConnector = require('undici/lib/core/connect.js') as typeof BuildConnector

export interface CertMaterial {
  ca: string
  cert: string
  key: string
}

/** Where certificates come from (certificate-source.ts: the Secret, watched through the API). */
export interface CertificateFeed {
  /** Resolves once the current state was read (calling onCertificates if the Secret exists). */
  start(onCertificates: (m: CertMaterial) => void): Promise<void>
  stop(): Promise<void>
}

const SERVER_OPTIONS = { minVersion: 'TLSv1.3', ALPNProtocols: ['h2', 'http/1.1'] } as const
const COMMON = { headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 30_000, strictContentLength: false }
const CONNECT = { timeout: 10_000, keepAlive: true, keepAliveInitialDelay: 5_000, noDelay: true }

interface Dialers {
  h1: AgentType
  h2: AgentType | null
}

export interface InternalTlsOptions {
  maxHeaderBytes: number
  /** The queue-proxies' TLS port (Knative: 8112). */
  queueTlsPort: number
  secretName: string
  log: Logger
}

export class InternalTls {
  /** Certificate sets applied so far (0: none yet). */
  generation = 0
  private material: CertMaterial | null = null
  private readonly opts: InternalTlsOptions
  private readonly servers: tls.Server[] = []
  /** Agents by revision namespace (the SAN checked differs per namespace). */
  private dialers = new Map<string, Dialers>()
  private readonly retiring = new Set<Promise<void>>()

  constructor(opts: InternalTlsOptions) {
    this.opts = opts
  }

  /** A TLS server whose certificate follows the Secret. */
  attach(server: tls.Server): void {
    this.servers.push(server)
    if (this.material !== null) server.setSecureContext({ cert: this.material.cert, key: this.material.key, ...SERVER_OPTIONS } as tls.SecureContextOptions)
  }

  /** New certificates from the Secret; unusable ones are logged and the previous set kept (as Knative does). */
  update(m: CertMaterial): boolean {
    const log = this.opts.log
    let cas: number
    try {
      cas = countCertificates(m.ca)
      if (cas === 0) throw new Error(`no certificate in ${CA_KEY}`)
      tls.createSecureContext({ cert: m.cert, key: m.key })
    } catch (err) {
      log.warn({ err: (err as Error).message, secret: this.opts.secretName }, 'internal TLS: failed to parse the Secret\'s certificates; keeping the previous ones')
      return false
    }
    this.material = m
    this.generation++
    for (const s of this.servers) s.setSecureContext({ cert: m.cert, key: m.key, ...SERVER_OPTIONS } as tls.SecureContextOptions)
    const old = this.dialers
    this.dialers = new Map()
    for (const d of old.values()) this.retire(d)
    log.info({ secret: this.opts.secretName, caCertificates: cas, generation: this.generation }, 'internal TLS certificates loaded')
    return true
  }

  /** https://<pod ip>:<queue TLS port> for a "ip:port" destination (the port is replaced, as Knative's useSecurePort). */
  origin(dest: string): string {
    return `https://${dest.slice(0, dest.lastIndexOf(':'))}:${this.opts.queueTlsPort}`
  }

  dispatcher(namespace: string, h2: boolean): Dispatcher {
    let d = this.dialers.get(namespace)
    if (d === undefined) {
      d = { h1: this.agent(namespace, false), h2: null }
      this.dialers.set(namespace, d)
    }
    if (!h2) return d.h1
    d.h2 ??= this.agent(namespace, true)
    return d.h2
  }

  /** Opens an upgrade tunnel's socket (with tunnelOptions); node:tls stays unloaded without internal TLS. */
  readonly dial = (opts: tls.ConnectionOptions): tls.TLSSocket => tls.connect(opts)

  /** A raw TLS connection to a pod (upgrade tunnels), verified as requests are. */
  tunnelOptions(namespace: string, host: string): tls.ConnectionOptions {
    const san = userSan(namespace)
    return {
      host,
      port: this.opts.queueTlsPort,
      // Before any certificate arrives no CA is trusted: the handshake fails, nothing is sent.
      ca: this.material?.ca ?? [],
      servername: LEGACY_SERVER_NAME,
      minVersion: 'TLSv1.3',
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: (h: string, cert: tls.PeerCertificate) => checkIdentity(h, cert, san),
    }
  }

  async close(): Promise<void> {
    const old = this.dialers
    this.dialers = new Map()
    for (const d of old.values()) this.retire(d)
    await Promise.all(this.retiring)
  }

  private retire(d: Dialers): void {
    const p = Promise.all([d.h1.close(), d.h2?.close()]).then(() => undefined, () => undefined)
    this.retiring.add(p)
    void p.then(() => this.retiring.delete(p))
  }

  private agent(namespace: string, h2: boolean): AgentType {
    const m = this.material
    const secret = this.opts.secretName
    const san = userSan(namespace)
    let connect: BuildConnector.connector
    if (m === null) {
      connect = (_o, cb) => cb(Object.assign(new Error(`internal TLS: no certificates yet from Secret ${secret}`), { code: 'ERR_SLUICE_NO_CERTIFICATES' }), null)
    } else {
      const base = buildConnector({
        ...CONNECT,
        ca: m.ca,
        servername: LEGACY_SERVER_NAME,
        minVersion: 'TLSv1.3',
        // undici speaks whatever ALPN picked: offer h2 only to the agent for HTTP/2 requests.
        allowH2: h2,
        ALPNProtocols: h2 ? ['h2', 'http/1.1'] : ['http/1.1'],
        checkServerIdentity: (host: string, cert: tls.PeerCertificate) => checkIdentity(host, cert, san),
      } as BuildConnector.BuildOptions)
      connect = (o, cb) => base(o, (err, socket) => {
        if (err === null) return cb(null, socket!)
        cb(verificationError(err, `${o.hostname}:${o.port}`), null)
      })
    }
    const opts = h2
      ? { ...COMMON, connect, maxHeaderSize: this.opts.maxHeaderBytes, allowH2: true, h2Options: { maxConcurrentStreams: 1000 } }
      : { ...COMMON, connect, maxHeaderSize: this.opts.maxHeaderBytes, pipelining: 1 }
    return new Agent(opts as AgentType.Options)
  }
}

/** Node's host-name check for the server name, then Knative's kn-user-<namespace> SAN check. */
function checkIdentity(host: string, cert: tls.PeerCertificate, san: string): Error | undefined {
  const err = tls.checkServerIdentity(host, cert)
  if (err !== undefined) return err
  const names = (cert.subjectaltname ?? '').split(', ')
  if (names.includes(`DNS:${san}`)) return undefined
  return Object.assign(new Error(`san "${san}" does not have a matching name in [${cert.subjectaltname ?? ''}]`), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' })
}

/** TLS failures name the queue-proxy and say that it was refused (the 502 body and the error log carry it). */
function verificationError(err: Error, dest: string): Error {
  const code = (err as NodeJS.ErrnoException).code ?? ''
  const isTls = err.message.includes('certificate') || code.startsWith('ERR_TLS') || code.includes('CERT') || (err as { library?: string }).library === 'SSL routines'
  if (!isTls) return err
  return Object.assign(new Error(`internal TLS: refused queue-proxy ${dest}: certificate did not verify: ${err.message}`), { code })
}

function countCertificates(pem: string): number {
  let n = 0
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)) {
    new X509Certificate(m[0]) // throws on a malformed certificate
    n++
  }
  return n
}
