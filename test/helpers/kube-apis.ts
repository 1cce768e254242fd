// The Kubernetes API servers a test runs against: the fake (always; new for
// each test, with its failure-injection controls) and the real kube-apiserver
// + etcd (when SLUICE_KUBE_APISERVER_BIN is set; otherwise its tests are
// skipped with a message naming the variable). Both are driven through the
// same KubeApi interface:
//
//   for (const backend of await kubeApis(t)) {
//     t.test(`[${backend.name}] ...`, { skip: backend.skip }, async (t) => {
//       const api = await backend.use(t)
//       await api.upsert('revisions', revision('ns', 'hello-00001'))
//     })
//   }

import type { Test } from 'tap'
import type { KubeConfig } from '@kubernetes/client-node'
import { FakeKubeApi, kubeConfigFor, writeKubeconfigFor, type Kind, type KubeObject } from './fake-kube-api.ts'
import { RealKubeApi, realKubeApiUnavailable } from './real-kube-api.ts'
import { sleep } from './servers.ts'

export interface KubeApi {
  readonly name: 'fake' | 'real'
  /** The server's base URL (http:// for the fake, https:// for the real one). */
  readonly url: string
  /** The fake's own controls (request log, injected failures, 410s); undefined on the real server. */
  readonly fake: FakeKubeApi | undefined
  /** Creates or replaces an object; resolves with the stored copy. */
  upsert(kind: Kind, obj: KubeObject): Promise<KubeObject>
  /** Deletes an object; false if there was none. */
  remove(kind: Kind, namespace: string, name: string): Promise<boolean>
  /** Credentials and trust for this server. */
  kubeConfig(): KubeConfig
  writeKubeconfig(path: string): void
  /**
   * The API server goes away (every watch and connection is cut) and comes
   * back after `downMs`, with its data. The fake refuses watches meanwhile.
   */
  restart(downMs?: number): Promise<void>
}

export interface KubeBackend {
  readonly name: 'fake' | 'real'
  /** Why tests on this backend are skipped here, or false. */
  readonly skip: string | false
  /**
   * The API for one test. The fake is new for each test; the real server is
   * started once per file, emptied before each test and lent to one test at a
   * time (tests running in parallel wait their turn).
   */
  use(t: Test): Promise<KubeApi>
}

class FakeApi implements KubeApi {
  readonly name = 'fake'
  readonly fake: FakeKubeApi
  constructor(fake: FakeKubeApi) {
    this.fake = fake
  }
  get url(): string {
    return this.fake.url
  }
  upsert(kind: Kind, obj: KubeObject): Promise<KubeObject> {
    return Promise.resolve(this.fake.upsert(kind, obj))
  }
  remove(kind: Kind, namespace: string, name: string): Promise<boolean> {
    return Promise.resolve(this.fake.remove(kind, namespace, name))
  }
  kubeConfig(): KubeConfig {
    return kubeConfigFor(this.fake)
  }
  writeKubeconfig(path: string): void {
    writeKubeconfigFor(this.fake, path)
  }
  async restart(downMs = 100): Promise<void> {
    this.fake.failWatches(503)
    this.fake.dropWatches('reset')
    await sleep(downMs)
    this.fake.failWatches(undefined)
  }
}

class RealApi implements KubeApi {
  readonly name = 'real'
  readonly fake = undefined
  readonly server: RealKubeApi
  constructor(server: RealKubeApi) {
    this.server = server
  }
  get url(): string {
    return this.server.url
  }
  upsert(kind: Kind, obj: KubeObject): Promise<KubeObject> {
    return this.server.upsert(kind, obj)
  }
  remove(kind: Kind, namespace: string, name: string): Promise<boolean> {
    return this.server.remove(kind, namespace, name)
  }
  kubeConfig(): KubeConfig {
    return this.server.kubeConfig()
  }
  writeKubeconfig(path: string): void {
    this.server.writeKubeconfig(path)
  }
  restart(downMs = 100): Promise<void> {
    return this.server.restart(downMs)
  }
}

const fakeBackend: KubeBackend = {
  name: 'fake',
  skip: false,
  async use(t) {
    const fake = await FakeKubeApi.start()
    t.teardown(() => fake.close())
    return new FakeApi(fake)
  },
}

/** The backends to run a test against; `t` is the file's root test (it closes the real server at the end). */
export async function kubeApis(t: Test): Promise<KubeBackend[]> {
  const unavailable = realKubeApiUnavailable()
  if (unavailable !== undefined) {
    return [fakeBackend, { name: 'real', skip: `real kube-apiserver: ${unavailable}`, use: () => Promise.reject(new Error(unavailable)) }]
  }
  let server: Promise<RealKubeApi> | undefined
  let turn: Promise<void> = Promise.resolve()
  t.teardown(async () => {
    if (server) await server.then((s) => s.close(), () => {})
  })
  const real: KubeBackend = {
    name: 'real',
    skip: false,
    async use(test) {
      const previous = turn
      let release!: () => void
      turn = new Promise<void>((resolve) => (release = resolve))
      test.teardown(() => release())
      await previous
      server ??= RealKubeApi.start()
      const s = await server
      await s.reset()
      return new RealApi(s)
    },
  }
  return [fakeBackend, real]
}
