// Decodes SERVING_READINESS_PROBE (spec §1.3, §1.7): the JSON of a Kubernetes
// corev1.Probe, or (HEAD multi-container probing) a JSON array of them. The
// result is normalised (defaults filled, ports numeric) so probing never has to
// re-check shapes. Go's decoder treats `null` like an absent field; so do we.

export interface HTTPHeader {
  name: string
  value: string
}

export interface HTTPGetAction {
  /** As given; the HTTP probe prepends `/` when missing. */
  path: string
  port: number
  /** Defaults to 127.0.0.1 (what the reconciler always writes). */
  host: string
  scheme: 'HTTP' | 'HTTPS'
  httpHeaders: HTTPHeader[]
}

export interface TCPSocketAction {
  port: number
  host: string
}

export interface GRPCAction {
  port: number
  /** Health-check service name; "" asks about the server as a whole. */
  service: string
}

export interface ExecAction {
  command: string[]
}

export interface ProbeSpec {
  httpGet?: HTTPGetAction
  tcpSocket?: TCPSocketAction
  grpc?: GRPCAction
  exec?: ExecAction
  initialDelaySeconds: number
  /** 0 selects the aggressive (50 ms polling) mode. */
  periodSeconds: number
  timeoutSeconds: number
  successThreshold: number
  failureThreshold: number
}

const PREFIX = 'SERVING_READINESS_PROBE: '
const DEFAULT_HOST = '127.0.0.1'
const INT32_MAX = 2 ** 31 - 1
const NUMERIC = /^[0-9]+$/

type JsonObject = Record<string, unknown>

class SpecError extends Error {
  constructor(path: string, message: string) {
    super(`${PREFIX}${path ? `${path}: ` : ''}${message}`)
    this.name = 'SpecError'
  }
}

/** '' → undefined (no probe configured: always ready). Throws on bad input. */
export function parseReadinessProbe(json: string): ProbeSpec[] | undefined {
  if (json === '') return undefined
  let root: unknown
  try {
    root = JSON.parse(json)
  } catch (err) {
    throw new SpecError('', `invalid JSON: ${(err as Error).message}`)
  }
  if (Array.isArray(root)) return root.map((p, i) => parseProbe(p, `[${i}]`))
  if (!isObject(root)) {
    throw new SpecError('', `expected a JSON object (corev1.Probe) or an array of them, got ${describe(root)}`)
  }
  return [parseProbe(root, '')]
}

function parseProbe(v: unknown, path: string): ProbeSpec {
  if (!isObject(v)) throw new SpecError(path, `expected a probe object, got ${describe(v)}`)
  const spec: ProbeSpec = {
    initialDelaySeconds: int(v, 'initialDelaySeconds', path),
    periodSeconds: int(v, 'periodSeconds', path),
    timeoutSeconds: int(v, 'timeoutSeconds', path),
    successThreshold: int(v, 'successThreshold', path),
    failureThreshold: int(v, 'failureThreshold', path),
  }
  const httpGet = obj(v, 'httpGet', path)
  if (httpGet) spec.httpGet = parseHTTPGet(httpGet, join(path, 'httpGet'))
  const tcp = obj(v, 'tcpSocket', path)
  if (tcp) {
    const p = join(path, 'tcpSocket')
    spec.tcpSocket = { port: port(tcp, p), host: str(tcp, 'host', p) || DEFAULT_HOST }
  }
  const grpc = obj(v, 'grpc', path)
  if (grpc) {
    const p = join(path, 'grpc')
    spec.grpc = { port: port(grpc, p), service: str(grpc, 'service', p) }
  }
  const exec = obj(v, 'exec', path)
  if (exec) spec.exec = { command: strings(exec, 'command', join(path, 'exec')) }
  return spec
}

function parseHTTPGet(v: JsonObject, path: string): HTTPGetAction {
  const scheme = str(v, 'scheme', path).toUpperCase() || 'HTTP'
  if (scheme !== 'HTTP' && scheme !== 'HTTPS') {
    throw new SpecError(join(path, 'scheme'), `expected "HTTP" or "HTTPS", got ${JSON.stringify(v['scheme'])}`)
  }
  return {
    path: str(v, 'path', path),
    port: port(v, path),
    host: str(v, 'host', path) || DEFAULT_HOST,
    scheme,
    httpHeaders: headers(v, path),
  }
}

function headers(v: JsonObject, path: string): HTTPHeader[] {
  const raw = v['httpHeaders']
  if (raw === undefined || raw === null) return []
  const p = join(path, 'httpHeaders')
  if (!Array.isArray(raw)) throw new SpecError(p, `expected an array, got ${describe(raw)}`)
  return raw.map((h, i) => {
    const hp = `${p}[${i}]`
    if (!isObject(h)) throw new SpecError(hp, `expected {name, value}, got ${describe(h)}`)
    const name = str(h, 'name', hp)
    if (name === '') throw new SpecError(join(hp, 'name'), 'a header name is required')
    return { name, value: str(h, 'value', hp) }
  })
}

/** IntOrString port: a number or a numeric string, 1-65535. */
function port(v: JsonObject, path: string): number {
  const raw = v['port']
  const p = join(path, 'port')
  if (raw === undefined || raw === null) throw new SpecError(p, 'a port is required')
  const n = typeof raw === 'string' && NUMERIC.test(raw) ? Number(raw) : raw
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new SpecError(p, `expected a port number 1-65535 (number or numeric string), got ${JSON.stringify(raw)}`)
  }
  return n
}

/** int32 fields; absent or null → 0 like Go. Negative values are rejected (the API server would). */
function int(v: JsonObject, key: string, path: string): number {
  const raw = v[key]
  if (raw === undefined || raw === null) return 0
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 0 || raw > INT32_MAX) {
    throw new SpecError(join(path, key), `expected a non-negative integer, got ${JSON.stringify(raw)}`)
  }
  return raw
}

function str(v: JsonObject, key: string, path: string): string {
  const raw = v[key]
  if (raw === undefined || raw === null) return ''
  if (typeof raw !== 'string') throw new SpecError(join(path, key), `expected a string, got ${describe(raw)}`)
  return raw
}

function strings(v: JsonObject, key: string, path: string): string[] {
  const raw = v[key]
  if (raw === undefined || raw === null) return []
  if (!Array.isArray(raw) || !raw.every((s) => typeof s === 'string')) {
    throw new SpecError(join(path, key), `expected an array of strings, got ${describe(raw)}`)
  }
  return raw as string[]
}

function obj(v: JsonObject, key: string, path: string): JsonObject | undefined {
  const raw = v[key]
  if (raw === undefined || raw === null) return undefined
  if (!isObject(raw)) throw new SpecError(join(path, key), `expected an object, got ${describe(raw)}`)
  return raw
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'object') return 'an object'
  return `${typeof v} ${JSON.stringify(v)}`
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key
}
