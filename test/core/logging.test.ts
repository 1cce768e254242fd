import t from 'tap'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger, toPinoLevel, zapConfigLevel, type LoggerOptions, type Logger } from '@sluice/core/logging'

const dir = mkdtempSync(join(tmpdir(), 'sluice-logging-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
// A logger writing to a fresh file, and a reader returning the parsed lines so far.
function fileLogger(opts: Omit<LoggerOptions, 'fd'>): {
  log: Logger
  text: () => string
  lines: () => Record<string, unknown>[]
} {
  const path = join(dir, `log-${files++}.jsonl`)
  const fd = openSync(path, 'w')
  t.teardown(() => closeSync(fd))
  const log = createLogger({ ...opts, fd })
  const text = () => readFileSync(path, 'utf8')
  const lines = () => text().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
  return { log, text, lines }
}

t.test('one JSON line per call with exactly timestamp, severity, logger, message and the bindings', (t) => {
  const { log, text, lines } = fileLogger({
    name: 'queueproxy',
    bindings: { 'knative.dev/key': 'ns/rev-1', 'knative.dev/pod': 'rev-1-pod' },
  })
  const before = Date.now()
  log.info('starting')
  log.warn('careful')
  const out = lines()
  t.equal(out.length, 2, 'written synchronously, one line per call')
  t.match(text(), /^\{.*\}\n\{.*\}\n$/, 'each line a single JSON object ending in a newline')
  const [first, second] = out
  t.same(Object.keys(first!).sort(), ['knative.dev/key', 'knative.dev/pod', 'logger', 'message', 'severity', 'timestamp'])
  t.match(first, {
    severity: 'INFO',
    logger: 'queueproxy',
    message: 'starting',
    'knative.dev/key': 'ns/rev-1',
    'knative.dev/pod': 'rev-1-pod',
  })
  const ts = first!['timestamp'] as string
  t.match(ts, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, 'ISO 8601 timestamp')
  t.ok(Date.parse(ts) >= before - 1 && Date.parse(ts) <= Date.now() + 1, 'timestamp is now')
  t.match(second, { severity: 'WARN', message: 'careful' })
  t.end()
})

t.test('severity is the upper-case level name; merge objects add fields', (t) => {
  const { log, lines } = fileLogger({ name: 'activator', level: 'trace' })
  log.trace('t')
  log.debug('d')
  log.info({ revision: 'r1', count: 3 }, 'i')
  log.error('e')
  log.fatal('f')
  const out = lines()
  t.same(out.map((l) => l['severity']), ['TRACE', 'DEBUG', 'INFO', 'ERROR', 'FATAL'])
  t.match(out[2], { message: 'i', revision: 'r1', count: 3, logger: 'activator' })
  t.end()
})

t.test('level filtering drops lines below the configured level', (t) => {
  const { log, lines } = fileLogger({ name: 'queueproxy', level: 'warn' })
  log.debug('no')
  log.info('no')
  log.warn('yes-warn')
  log.error('yes-error')
  t.same(lines().map((l) => l['message']), ['yes-warn', 'yes-error'])

  const dflt = fileLogger({ name: 'queueproxy' })
  dflt.log.debug('no')
  dflt.log.info('yes')
  t.same(dflt.lines().map((l) => l['message']), ['yes'], 'info by default')

  const zap = fileLogger({ name: 'queueproxy', level: 'WARNING' })
  zap.log.info('no')
  zap.log.warn('yes')
  t.same(zap.lines().map((l) => l['message']), ['yes'], 'zap-style level names are mapped')
  t.end()
})

t.test('toPinoLevel maps zap level names onto pino levels', (t) => {
  t.equal(toPinoLevel('debug'), 'debug')
  t.equal(toPinoLevel('info'), 'info')
  t.equal(toPinoLevel('warn'), 'warn')
  t.equal(toPinoLevel('warning'), 'warn')
  t.equal(toPinoLevel('error'), 'error')
  t.equal(toPinoLevel('dpanic'), 'fatal', 'zap dpanic has no pino equivalent')
  t.equal(toPinoLevel('panic'), 'fatal')
  t.equal(toPinoLevel('fatal'), 'fatal')
  t.equal(toPinoLevel('DEBUG'), 'debug', 'case-insensitive')
  t.equal(toPinoLevel('silent'), 'silent')
  t.equal(toPinoLevel(undefined), 'info')
  t.equal(toPinoLevel(''), 'info', 'SERVING_LOGGING_LEVEL="" means no override')
  t.equal(toPinoLevel('verbose'), 'info', 'unknown names fall back')
  t.equal(toPinoLevel('bogus', 'error'), 'error', 'to the given fallback')
  t.equal(toPinoLevel(undefined, 'debug'), 'debug')
  t.end()
})

t.test('zapConfigLevel reads level from a zap JSON config, tolerating junk', (t) => {
  const stock = JSON.stringify({
    level: 'info',
    development: false,
    outputPaths: ['stdout'],
    encoding: 'json',
    encoderConfig: { timeKey: 'timestamp', levelKey: 'severity', nameKey: 'logger', messageKey: 'message' },
  })
  t.equal(zapConfigLevel(stock), 'info')
  t.equal(zapConfigLevel('{"level":"debug"}'), 'debug')
  t.equal(zapConfigLevel('{}'), undefined)
  t.equal(zapConfigLevel('{"level":3}'), undefined, 'non-string level ignored')
  t.equal(zapConfigLevel('not json'), undefined)
  t.equal(zapConfigLevel('null'), undefined)
  t.equal(zapConfigLevel(''), undefined)
  t.equal(zapConfigLevel(undefined), undefined)
  t.equal(toPinoLevel(zapConfigLevel('{"level":"error"}')), 'error', 'composes with toPinoLevel')
  t.end()
})
