import t from 'tap'
import { parseReadinessProbe } from '@sluice/queue-proxy/readiness/probe-spec'

t.test('empty SERVING_READINESS_PROBE means no probe (always ready)', async (t) => {
  t.equal(parseReadinessProbe(''), undefined)
})

t.test("decodes the reconciler's default TCP probe", async (t) => {
  const specs = parseReadinessProbe('{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}')
  t.same(specs, [
    {
      tcpSocket: { port: 8080, host: '127.0.0.1' },
      initialDelaySeconds: 0,
      periodSeconds: 0,
      timeoutSeconds: 0,
      successThreshold: 1,
      failureThreshold: 0,
    },
  ])
})

t.test('decodes an HTTP probe with headers, thresholds and numeric-string port', async (t) => {
  const [spec] = parseReadinessProbe(
    JSON.stringify({
      httpGet: {
        path: '/healthz',
        port: '8090',
        host: '127.0.0.1',
        scheme: 'HTTP',
        httpHeaders: [{ name: 'K-Kubelet-Probe', value: 'queue' }],
      },
      periodSeconds: 10,
      timeoutSeconds: 2,
      successThreshold: 3,
      failureThreshold: 4,
      initialDelaySeconds: 5,
    }),
  )!
  t.same(spec!.httpGet, {
    path: '/healthz',
    port: 8090,
    host: '127.0.0.1',
    scheme: 'HTTP',
    httpHeaders: [{ name: 'K-Kubelet-Probe', value: 'queue' }],
  })
  t.match(spec, { periodSeconds: 10, timeoutSeconds: 2, successThreshold: 3, failureThreshold: 4, initialDelaySeconds: 5 })
})

t.test('HTTP probe defaults: host 127.0.0.1, scheme HTTP, empty path, no headers; scheme is case-insensitive', async (t) => {
  const [a] = parseReadinessProbe('{"httpGet":{"port":8080}}')!
  t.same(a!.httpGet, { path: '', port: 8080, host: '127.0.0.1', scheme: 'HTTP', httpHeaders: [] })
  const [b] = parseReadinessProbe('{"httpGet":{"port":8443,"scheme":"https","host":"","httpHeaders":null}}')!
  t.same(b!.httpGet, { path: '', port: 8443, host: '127.0.0.1', scheme: 'HTTPS', httpHeaders: [] })
})

t.test('decodes gRPC (service defaults to "") and exec probes; null fields count as absent', async (t) => {
  const [g] = parseReadinessProbe('{"grpc":{"port":9000},"httpGet":null,"tcpSocket":null}')!
  t.same(g!.grpc, { port: 9000, service: '' })
  t.equal(g!.httpGet, undefined)
  t.equal(g!.tcpSocket, undefined)
  const [g2] = parseReadinessProbe('{"grpc":{"port":9000,"service":"my.Svc"}}')!
  t.same(g2!.grpc, { port: 9000, service: 'my.Svc' })
  const [e] = parseReadinessProbe('{"exec":{"command":["/bin/true"]}}')!
  t.same(e!.exec, { command: ['/bin/true'] })
})

t.test('a probe with no handler decodes (the prober reports "no probe found")', async (t) => {
  const [s] = parseReadinessProbe('{"periodSeconds":0}')!
  t.equal(s!.httpGet ?? s!.tcpSocket ?? s!.grpc ?? s!.exec, undefined)
})

t.test('decodes the multi-container form: a JSON array of probes, in order', async (t) => {
  const specs = parseReadinessProbe(
    '[{"httpGet":{"port":8080,"path":"/"}},{"tcpSocket":{"port":"8081"}},{"grpc":{"port":8082}}]',
  )!
  t.equal(specs.length, 3)
  t.equal(specs[0]!.httpGet!.port, 8080)
  t.same(specs[1]!.tcpSocket, { port: 8081, host: '127.0.0.1' })
  t.equal(specs[2]!.grpc!.port, 8082)
  t.same(parseReadinessProbe('[]'), [])
})

t.test('unknown fields are ignored like Go json', async (t) => {
  const [s] = parseReadinessProbe('{"tcpSocket":{"port":1},"terminationGracePeriodSeconds":3,"foo":{"bar":1}}')!
  t.same(s!.tcpSocket, { port: 1, host: '127.0.0.1' })
})

t.test('decoding errors start with "SERVING_READINESS_PROBE:" and name what is wrong', async (t) => {
  const cases: [string, RegExp][] = [
    ['{not json', /^SERVING_READINESS_PROBE: invalid JSON: /],
    ['null', /^SERVING_READINESS_PROBE: expected a JSON object \(corev1\.Probe\) or an array of them, got null$/],
    ['"x"', /^SERVING_READINESS_PROBE: expected a JSON object .* got string "x"$/],
    ['42', /^SERVING_READINESS_PROBE: expected a JSON object .* got number 42$/],
    ['[1]', /^SERVING_READINESS_PROBE: \[0\]: expected a probe object, got number 1$/],
    ['[{"tcpSocket":{"port":1}},null]', /^SERVING_READINESS_PROBE: \[1\]: expected a probe object, got null$/],
    ['{"httpGet":"x"}', /^SERVING_READINESS_PROBE: httpGet: expected an object, got string "x"$/],
    ['{"httpGet":{}}', /^SERVING_READINESS_PROBE: httpGet\.port: a port is required$/],
    ['{"tcpSocket":{"port":"http"}}', /^SERVING_READINESS_PROBE: tcpSocket\.port: expected a port number 1-65535 .*got "http"$/],
    ['{"tcpSocket":{"port":70000}}', /^SERVING_READINESS_PROBE: tcpSocket\.port: expected a port number/],
    ['{"tcpSocket":{"port":80.5}}', /^SERVING_READINESS_PROBE: tcpSocket\.port: expected a port number/],
    ['{"grpc":{"port":0}}', /^SERVING_READINESS_PROBE: grpc\.port: expected a port number/],
    ['{"grpc":{"port":1,"service":5}}', /^SERVING_READINESS_PROBE: grpc\.service: expected a string, got number 5$/],
    ['{"tcpSocket":{"port":1},"periodSeconds":"10"}', /^SERVING_READINESS_PROBE: periodSeconds: expected a non-negative integer, got "10"$/],
    ['{"tcpSocket":{"port":1},"timeoutSeconds":1.5}', /^SERVING_READINESS_PROBE: timeoutSeconds: expected a non-negative integer, got 1\.5$/],
    ['{"tcpSocket":{"port":1},"successThreshold":-1}', /^SERVING_READINESS_PROBE: successThreshold: expected a non-negative integer/],
    ['{"httpGet":{"port":1,"scheme":"FTP"}}', /^SERVING_READINESS_PROBE: httpGet\.scheme: expected "HTTP" or "HTTPS", got "FTP"$/],
    ['{"httpGet":{"port":1,"httpHeaders":{}}}', /^SERVING_READINESS_PROBE: httpGet\.httpHeaders: expected an array, got an object$/],
    ['{"httpGet":{"port":1,"httpHeaders":[{"value":"v"}]}}', /^SERVING_READINESS_PROBE: httpGet\.httpHeaders\[0\]\.name: a header name is required$/],
    ['[{"httpGet":{"port":1,"httpHeaders":[{"name":"a","value":1}]}}]', /^SERVING_READINESS_PROBE: \[0\]\.httpGet\.httpHeaders\[0\]\.value: expected a string/],
    ['{"exec":{"command":"true"}}', /^SERVING_READINESS_PROBE: exec\.command: expected an array of strings/],
  ]
  for (const [json, re] of cases) {
    t.throws(() => parseReadinessProbe(json), { message: re }, json)
  }
})
