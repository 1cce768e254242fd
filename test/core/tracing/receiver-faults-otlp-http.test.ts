// A dead and a hung collector behind the otlp-http exporter (scenarios in collector-faults.ts).
import t from 'tap'
import { deadCollector, hangThenRecover } from './collector-faults.ts'

t.test('connection refused: never blocks, bounded, every drop counted', (t) => deadCollector(t, 'otlp-http'))
t.test('hung collector, then recovery: bounded, drops counted, queue delivered', (t) => hangThenRecover(t, 'otlp-http'))
