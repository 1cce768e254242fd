// ConfigMaps of the system namespace (config-network, config-tracing, ...),
// watched through the API as Knative's configmap.InformedWatcher does: one
// namespaced list/watch (the Reflector of kubernetes-source.ts), and per name
// the listeners that want its data. A listener hears the current data once
// the first list is in (undefined when the ConfigMap does not exist), then
// every change; undefined again when the ConfigMap is deleted.

import { Watch, type KubeConfig } from '@kubernetes/client-node'
import type { Logger } from '@sluice/core/logging'
import type { ConfigMapFeed } from './source.ts'
import { DEFAULT_BACKOFF, DEFAULT_LIST_TIMEOUT_MS, Reflector, type Backoff, type KubeObject } from './kubernetes-source.ts'

export type ConfigMapData = Record<string, string>
export type ConfigMapListener = (data: ConfigMapData | undefined) => void

interface ConfigMapObject extends KubeObject {
  data?: Record<string, string>
}

export interface ConfigMapWatchOptions {
  kubeConfig: KubeConfig
  /** SYSTEM_NAMESPACE: the only namespace read. */
  namespace: string
  log: Logger
  backoff?: Backoff
  listTimeoutMs?: number
}

export class ConfigMapWatch implements ConfigMapFeed {
  private readonly opts: ConfigMapWatchOptions
  private readonly listeners = new Map<string, ConfigMapListener[]>()
  private readonly current = new Map<string, ConfigMapData>()
  private reflector: Reflector<ConfigMapObject> | null = null
  private synced = false

  constructor(opts: ConfigMapWatchOptions) {
    this.opts = opts
  }

  /**
   * Calls `listener` with the data of ConfigMap `name` now (if the first list
   * is already in) and on every change from then on.
   */
  onConfigMap(name: string, listener: ConfigMapListener): void {
    let list = this.listeners.get(name)
    if (!list) this.listeners.set(name, (list = []))
    list.push(listener)
    if (this.synced) this.call(name, listener, this.current.get(name))
  }

  /** Resolves once the first list was delivered to every listener. */
  async start(): Promise<void> {
    if (this.reflector) throw new Error('ConfigMapWatch already started')
    const { kubeConfig, namespace, log } = this.opts
    this.reflector = new Reflector<ConfigMapObject>(
      {
        name: 'configmaps',
        path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`,
        upsert: (obj) => this.changed(obj, { ...(obj.data ?? {}) }),
        remove: (obj) => this.changed(obj, undefined),
      },
      kubeConfig,
      new Watch(kubeConfig),
      log,
      this.opts.backoff ?? DEFAULT_BACKOFF,
      this.opts.listTimeoutMs ?? DEFAULT_LIST_TIMEOUT_MS,
    )
    await this.reflector.start()
    this.synced = true
    // Listeners of ConfigMaps that do not exist learn it now (the defaults apply).
    for (const [name, list] of this.listeners) {
      if (this.current.has(name)) continue
      for (const l of list) this.call(name, l, undefined)
    }
  }

  async stop(): Promise<void> {
    await this.reflector?.stop()
  }

  private changed(obj: ConfigMapObject, data: ConfigMapData | undefined): void {
    const name = obj.metadata?.name
    if (!name || (obj.metadata?.namespace ?? this.opts.namespace) !== this.opts.namespace) return
    if (data === undefined) this.current.delete(name)
    else this.current.set(name, data)
    for (const l of this.listeners.get(name) ?? []) this.call(name, l, data)
  }

  // A listener's exception must not stop the others or the watch.
  private call(name: string, listener: ConfigMapListener, data: ConfigMapData | undefined): void {
    try {
      listener(data)
    } catch (err) {
      this.opts.log.error({ configMap: `${this.opts.namespace}/${name}`, err: String(err) }, 'config map listener failed')
    }
  }
}
