// config-tracing for the local runtime: the environments every process gets,
// and bad files refused with the variable, the file and the key named.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadTracingConfig, tracingEnvs } from '@sluice/local/runtime/tracing-config'
import { tempDir } from '../../helpers/local.ts'

t.test('zipkin: the queue-proxies get TRACING_CONFIG_*, the activator SLUICE_TRACING_*', async (t) => {
  const e = tracingEnvs({ backend: 'zipkin', 'zipkin-endpoint': 'http://127.0.0.1:9411/api/v2/spans', 'sample-rate': '0.5' })!
  t.same(e.settings, { exporter: 'zipkin', endpoint: 'http://127.0.0.1:9411/api/v2/spans', sampleRate: 0.5 })
  t.same(e.queueProxy, { TRACING_CONFIG_BACKEND: 'zipkin', TRACING_CONFIG_ZIPKIN_ENDPOINT: 'http://127.0.0.1:9411/api/v2/spans', TRACING_CONFIG_SAMPLE_RATE: '0.5', TRACING_CONFIG_DEBUG: 'false' })
  t.same(e.activator, { SLUICE_TRACING_BACKEND: 'zipkin', SLUICE_TRACING_ZIPKIN_ENDPOINT: 'http://127.0.0.1:9411/api/v2/spans', SLUICE_TRACING_SAMPLE_RATE: '0.5', SLUICE_TRACING_DEBUG: 'false' })
  const d = tracingEnvs({ backend: 'zipkin', 'zipkin-endpoint': 'http://z/api/v2/spans', debug: 'true' })!
  t.equal(d.settings.sampleRate, 1, 'debug samples everything')
  t.equal(d.queueProxy.TRACING_CONFIG_DEBUG, 'true')
  t.equal(d.queueProxy.TRACING_CONFIG_SAMPLE_RATE, '0.1', 'Knative\'s default rate')
  t.equal(tracingEnvs({ backend: 'none' }), undefined, 'none: off')
  t.equal(tracingEnvs({}), undefined, 'empty: off (Knative\'s default backend is none)')
})

t.test('bad files and values are refused naming SLUICE_TRACING_CONFIG, the file and the key', async (t) => {
  const dir = tempDir(t)
  const file = (name: string, text: string) => {
    const p = join(dir, name)
    writeFileSync(p, text)
    return p
  }
  const cm = (data: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-tracing\ndata:\n${data}`
  const noEndpoint = file('a.yaml', cm('  backend: zipkin\n'))
  await t.rejects(loadTracingConfig(noEndpoint), new RegExp(`^SLUICE_TRACING_CONFIG \\(${noEndpoint}\\): .*zipkin-endpoint is required`))
  await t.rejects(loadTracingConfig(file('b.yaml', cm('  backend: jaeger\n'))), /unsupported backend "jaeger"/)
  await t.rejects(loadTracingConfig(file('c.yaml', cm('  backend: zipkin\n  zipkin-endpoint: http://z\n  sample-rate: "2"\n'))), /sample-rate must be a number in \[0, 1\]/)
  await t.rejects(loadTracingConfig(file('d.yaml', cm('  sample-rate: 0.5\n'))), /sample-rate: ConfigMap values must be strings/)
  await t.rejects(loadTracingConfig(file('e.yaml', 'data: [')), /invalid YAML/)
  await t.rejects(loadTracingConfig(join(dir, 'missing.yaml')), /SLUICE_TRACING_CONFIG .*ENOENT/)
  t.equal(await loadTracingConfig(file('f.yaml', cm('  backend: none\n'))), undefined)
})
