// A collector that is down and comes back on the same port, for each
// transport side by side (scenario in collector-faults.ts).
import t from 'tap'
import { refuseThenRecover } from './collector-faults.ts'
import { TRANSPORTS } from './transports.ts'

t.jobs = TRANSPORTS.length
for (const transport of TRANSPORTS) {
  t.test(`${transport}: collector down, then back on the same port: spans flow again`, { buffered: true }, (t) => refuseThenRecover(t, transport))
}
