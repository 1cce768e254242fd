import t from 'tap'
import {
  EnvError,
  optionalBool,
  optionalDurationMs,
  optionalFloat,
  optionalInt,
  optionalPort,
  optionalString,
  parseGoBool,
  parseGoDuration,
  parseGoInt,
  requireInt,
  requirePort,
  requireString,
} from '@sluice/core/env'

// The EnvError fn throws (undefined if it throws nothing or something else).
function envErrorOf(fn: () => unknown): EnvError | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof EnvError) return err
  }
  return undefined
}

// What every env error must look like: an EnvError naming the variable.
const naming = (variable: string) => ({ name: 'EnvError', variable, message: new RegExp(`^${variable}: `) })

t.test('parseGoInt follows strconv.ParseInt(v, 0, 64)', (t) => {
  const ok: [string, number][] = [
    ['10', 10],
    ['0', 0],
    ['+7', 7],
    ['-5', -5],
    ['0x1f', 31],
    ['0X1F', 31],
    ['-0x10', -16],
    ['0o17', 15],
    ['0O17', 15],
    ['017', 15], // leading 0: octal
    ['0b101', 5],
    ['1_000', 1000],
    ['0x_1f', 31], // Go allows an underscore right after the base prefix
    ['0_17', 15], // ...and in legacy octal after the leading 0
    ['9007199254740991', Number.MAX_SAFE_INTEGER],
  ]
  for (const [v, want] of ok) t.equal(parseGoInt(v), want, JSON.stringify(v))
  const bad = ['', ' 1', '1 ', '1.5', 'abc', '08', '0x', '0b2', '1__000', '_1', '1_', '0x1f_', '--1', '+-1', '1e3',
    '99999999999999999999', '9223372036854775808']
  for (const v of bad) t.equal(parseGoInt(v), undefined, `${JSON.stringify(v)} rejected`)
  t.end()
})

t.test('parseGoBool accepts exactly what strconv.ParseBool accepts', (t) => {
  for (const v of ['1', 't', 'T', 'TRUE', 'true', 'True']) t.equal(parseGoBool(v), true, v)
  for (const v of ['0', 'f', 'F', 'FALSE', 'false', 'False']) t.equal(parseGoBool(v), false, v)
  for (const v of ['', 'yes', 'no', 'on', 'tRUE', 'True ', ' 1', '2', 'y']) t.equal(parseGoBool(v), undefined, JSON.stringify(v))
  t.end()
})

t.test('requireString: present-but-empty is accepted, absent throws naming the variable', (t) => {
  t.equal(requireString({ SERVING_SERVICE: '' }, 'SERVING_SERVICE'), '')
  t.equal(requireString({ SERVING_POD: 'p-1' }, 'SERVING_POD'), 'p-1')
  t.match(envErrorOf(() => requireString({}, 'SERVING_POD')), naming('SERVING_POD'), 'absent')
  t.end()
})

t.test('optionalString falls back only when absent', (t) => {
  t.equal(optionalString({}, 'X'), '')
  t.equal(optionalString({}, 'X', 'dflt'), 'dflt')
  t.equal(optionalString({ X: '' }, 'X', 'dflt'), '')
  t.end()
})

t.test('requireInt parses Go ints; absent, empty and junk values name the variable', (t) => {
  t.equal(requireInt({ CONTAINER_CONCURRENCY: '0x10' }, 'CONTAINER_CONCURRENCY'), 16)
  t.match(envErrorOf(() => requireInt({}, 'CONTAINER_CONCURRENCY')), naming('CONTAINER_CONCURRENCY'), 'absent')
  t.match(envErrorOf(() => requireInt({ CONTAINER_CONCURRENCY: '' }, 'CONTAINER_CONCURRENCY')), naming('CONTAINER_CONCURRENCY'), 'empty')
  t.match(envErrorOf(() => requireInt({ CONTAINER_CONCURRENCY: '1.5' }, 'CONTAINER_CONCURRENCY')), naming('CONTAINER_CONCURRENCY'), 'float')
  t.end()
})

t.test('optionalInt: fallback when absent, error naming the variable when unparsable', (t) => {
  t.equal(optionalInt({}, 'REVISION_IDLE_TIMEOUT_SECONDS', 0), 0)
  t.equal(optionalInt({ REVISION_IDLE_TIMEOUT_SECONDS: '30' }, 'REVISION_IDLE_TIMEOUT_SECONDS', 0), 30)
  const name = 'REVISION_IDLE_TIMEOUT_SECONDS'
  t.match(envErrorOf(() => optionalInt({ [name]: '' }, name, 0)), naming(name), 'empty is an error, not the fallback')
  t.match(envErrorOf(() => optionalInt({ [name]: 'ten' }, name, 0)), naming(name), 'junk')
  t.end()
})

t.test('optionalBool: fallback when absent, error naming the variable when unparsable', (t) => {
  t.equal(optionalBool({}, 'ENABLE_PROFILING', false), false)
  t.equal(optionalBool({}, 'ENABLE_PROFILING', true), true)
  t.equal(optionalBool({ ENABLE_PROFILING: 'T' }, 'ENABLE_PROFILING', false), true)
  t.equal(optionalBool({ ENABLE_PROFILING: '0' }, 'ENABLE_PROFILING', true), false)
  t.match(envErrorOf(() => optionalBool({ ENABLE_PROFILING: '' }, 'ENABLE_PROFILING', false)), naming('ENABLE_PROFILING'), 'empty')
  t.match(envErrorOf(() => optionalBool({ ENABLE_PROFILING: 'yes' }, 'ENABLE_PROFILING', false)), naming('ENABLE_PROFILING'), 'yes')
  t.end()
})

t.test('optionalFloat: fallback when absent, error naming the variable when unparsable', (t) => {
  t.equal(optionalFloat({}, 'TRACING_CONFIG_SAMPLE_RATE', 0), 0)
  t.equal(optionalFloat({ TRACING_CONFIG_SAMPLE_RATE: '0.1' }, 'TRACING_CONFIG_SAMPLE_RATE', 0), 0.1)
  t.equal(optionalFloat({ TRACING_CONFIG_SAMPLE_RATE: '1e-2' }, 'TRACING_CONFIG_SAMPLE_RATE', 0), 0.01)
  t.equal(optionalFloat({ TRACING_CONFIG_SAMPLE_RATE: '1' }, 'TRACING_CONFIG_SAMPLE_RATE', 0), 1)
  for (const v of ['', ' ', 'abc', '0.1.2', 'Infinity']) {
    const err = envErrorOf(() => optionalFloat({ TRACING_CONFIG_SAMPLE_RATE: v }, 'TRACING_CONFIG_SAMPLE_RATE', 0))
    t.match(err, naming('TRACING_CONFIG_SAMPLE_RATE'), JSON.stringify(v))
  }
  t.end()
})

t.test('optionalPort: 1-65535, port 0 only when allowed; errors name the variable', (t) => {
  t.equal(optionalPort({}, 'PROFILING_PORT', 8008), 8008)
  t.equal(optionalPort({ PROFILING_PORT: '9000' }, 'PROFILING_PORT', 8008), 9000)
  t.equal(optionalPort({ PROFILING_PORT: '65535' }, 'PROFILING_PORT', 8008), 65535)
  t.equal(optionalPort({ PROFILING_PORT: '0' }, 'PROFILING_PORT', 8008, true), 0)
  const port = (v: string, allowZero = false) => envErrorOf(() => optionalPort({ PROFILING_PORT: v }, 'PROFILING_PORT', 8008, allowZero))
  t.match(port('0'), naming('PROFILING_PORT'), 'zero')
  t.match(port('65536'), naming('PROFILING_PORT'), 'too big')
  t.match(port('-1', true), naming('PROFILING_PORT'), 'negative')
  t.match(port('http'), naming('PROFILING_PORT'), 'junk')
  t.end()
})

t.test('requirePort: a present string port in 0-65535; errors name the variable', (t) => {
  t.equal(requirePort({ USER_PORT: '8080' }, 'USER_PORT'), 8080)
  t.equal(requirePort({ USER_PORT: '0' }, 'USER_PORT'), 0, 'port 0 (tests ask for an ephemeral port)')
  t.match(envErrorOf(() => requirePort({}, 'USER_PORT')), naming('USER_PORT'), 'absent')
  t.match(envErrorOf(() => requirePort({ USER_PORT: '' }, 'USER_PORT')), naming('USER_PORT'), 'empty')
  t.match(envErrorOf(() => requirePort({ USER_PORT: '70000' }, 'USER_PORT')), naming('USER_PORT'), 'too big')
  t.match(envErrorOf(() => requirePort({ USER_PORT: '-80' }, 'USER_PORT')), naming('USER_PORT'), 'negative')
  t.match(envErrorOf(() => requirePort({ USER_PORT: 'http' }, 'USER_PORT')), naming('USER_PORT'), 'junk')
  t.end()
})

t.test('parseGoDuration follows time.ParseDuration, in milliseconds', (t) => {
  const ok: [string, number][] = [
    ['30s', 30_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['1.5h', 5_400_000],
    ['0', 0],
    ['-0', 0],
    ['+0', 0],
    ['0s', 0],
    ['-1.5s', -1500],
    ['+2m', 120_000],
    ['1h2m3s4ms', 3_723_004],
    ['250us', 0.25],
    ['250µs', 0.25], // U+00B5 micro sign
    ['250μs', 0.25], // U+03BC Greek mu
    ['1000000ns', 1],
    ['.5s', 500],
    ['1.s', 1000],
  ]
  for (const [v, want] of ok) t.equal(parseGoDuration(v), want, JSON.stringify(v))
  const bad = ['bad', '', '1', '30', 's', '1d', '1s ', ' 1s', '1s1', '-', '.s', '1mh', '1 s', '1S']
  for (const v of bad) t.equal(parseGoDuration(v), undefined, `${JSON.stringify(v)} rejected`)
  t.end()
})

t.test('optionalDurationMs: plain seconds or a Go duration; errors name the variable', (t) => {
  t.equal(optionalDurationMs({}, 'PROBE_TIMEOUT', 300), 300)
  t.equal(optionalDurationMs({ PROBE_TIMEOUT: '30' }, 'PROBE_TIMEOUT', 300), 30_000, 'plain number = seconds')
  t.equal(optionalDurationMs({ PROBE_TIMEOUT: '0.5' }, 'PROBE_TIMEOUT', 300), 500)
  t.equal(optionalDurationMs({ PROBE_TIMEOUT: '0' }, 'PROBE_TIMEOUT', 300), 0)
  t.equal(optionalDurationMs({ PROBE_TIMEOUT: '30s' }, 'PROBE_TIMEOUT', 300), 30_000)
  t.equal(optionalDurationMs({ PROBE_TIMEOUT: '1m30s' }, 'PROBE_TIMEOUT', 300), 90_000)
  t.equal(optionalDurationMs({ PROBE_TIMEOUT: '300ms' }, 'PROBE_TIMEOUT', 0), 300)
  for (const v of ['', 'bad', '-5', '-1s', '10 apples']) {
    const err = envErrorOf(() => optionalDurationMs({ PROBE_TIMEOUT: v }, 'PROBE_TIMEOUT', 300))
    t.match(err, naming('PROBE_TIMEOUT'), JSON.stringify(v))
  }
  t.end()
})
