// Where the Kubernetes client configuration comes from, in the order Knative's
// binaries use (knative.dev/pkg injection GetRESTConfig): an explicit KUBECONFIG
// wins, then the in-cluster service account, then ~/.kube/config. KUBECONFIG
// may list several files (path-delimited) and is merged as kubectl merges it:
// the first file to define a name or the current context wins, missing files
// are skipped.

import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, join } from 'node:path'
import { KubeConfig, type Cluster, type Context, type User } from '@kubernetes/client-node'

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export interface KubeConfigSources {
  /** Where the service account token, ca.crt and namespace live (tests point it elsewhere). */
  serviceAccountDir?: string
  /** Home directory for ~/.kube/config; default env.HOME, then os.homedir(). */
  homeDir?: string
}

type Env = Record<string, string | undefined>

export function loadKubeConfig(env: Env = process.env, sources: KubeConfigSources = {}): KubeConfig {
  const tried: string[] = []

  const list = env.KUBECONFIG
  if (list !== undefined && list !== '') {
    const files = list.split(delimiter).filter((f) => f !== '')
    const present = files.filter((f) => existsSync(f))
    if (present.length === 0) throw new Error(`KUBECONFIG=${list} names no existing kubeconfig file`)
    return checked(mergeFiles(present), `KUBECONFIG=${list}`)
  }
  tried.push('KUBECONFIG (unset)')

  const inCluster = loadInCluster(env, sources.serviceAccountDir ?? SERVICE_ACCOUNT_DIR)
  if (typeof inCluster !== 'string') return inCluster
  tried.push(inCluster)

  const home = sources.homeDir ?? (env.HOME || homedir())
  const file = join(home, '.kube', 'config')
  if (existsSync(file)) return checked(mergeFiles([file]), file)
  tried.push(`${file} (not found)`)

  throw new Error(`no Kubernetes configuration found; tried: ${tried.join('; ')}`)
}

/** The in-cluster configuration, or why there is none (as client-go's InClusterConfig decides). */
function loadInCluster(env: Env, dir: string): KubeConfig | string {
  const host = env.KUBERNETES_SERVICE_HOST
  const port = env.KUBERNETES_SERVICE_PORT
  if (!host || !port) return 'in-cluster (KUBERNETES_SERVICE_HOST/PORT unset)'
  const tokenFile = join(dir, 'token')
  if (!existsSync(tokenFile)) return `in-cluster (${tokenFile} not found)`

  const caFile = join(dir, 'ca.crt')
  const nsFile = join(dir, 'namespace')
  const cluster: Cluster = {
    name: 'in-cluster',
    // client-go always uses https here, whatever the port.
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    skipTLSVerify: false,
    ...(existsSync(caFile) ? { caFile } : {}),
  }
  // The tokenFile provider re-reads the (rotated) projected token every minute.
  const user: User = { name: 'in-cluster', authProvider: { name: 'tokenFile', config: { tokenFile } } }
  const context: Context = {
    name: 'in-cluster',
    cluster: cluster.name,
    user: user.name,
    ...(existsSync(nsFile) ? { namespace: readFileSync(nsFile, 'utf8').trim() } : {}),
  }
  const kc = new KubeConfig()
  kc.loadFromOptions({ clusters: [cluster], users: [user], contexts: [context], currentContext: context.name })
  return kc
}

/** kubectl's merge: first definition of each name wins, first current-context wins. */
function mergeFiles(files: string[]): KubeConfig {
  const clusters = new Map<string, Cluster>()
  const users = new Map<string, User>()
  const contexts = new Map<string, Context>()
  let currentContext: string | undefined
  for (const file of files) {
    const one = new KubeConfig()
    one.loadFromFile(file) // also makes relative cert/key paths absolute to the file's directory
    for (const c of one.getClusters()) if (!clusters.has(c.name)) clusters.set(c.name, c)
    for (const u of one.getUsers()) if (!users.has(u.name)) users.set(u.name, u)
    for (const c of one.getContexts()) if (!contexts.has(c.name)) contexts.set(c.name, c)
    const cur = one.getCurrentContext()
    if (!currentContext && cur) currentContext = cur
  }
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: [...clusters.values()],
    users: [...users.values()],
    contexts: [...contexts.values()],
    currentContext,
  })
  return kc
}

function checked(kc: KubeConfig, from: string): KubeConfig {
  const name = kc.getCurrentContext()
  if (!name) throw new Error(`kubeconfig ${from} sets no current-context`)
  if (!kc.getContextObject(name)) throw new Error(`kubeconfig ${from}: current-context "${name}" is not defined`)
  if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${from}: context "${name}" names an undefined cluster`)
  return kc
}
