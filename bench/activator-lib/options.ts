// Command-line options of bench/activator.ts.
import { parseArgs } from 'node:util';

export const PARTS = ['startup', 'warm', 'routing', 'rate', 'cold', 'backpressure', 'uploads'] as const;
export type Part = (typeof PARTS)[number];

export interface ActivatorOptions {
  parts: Part[];
  /** start-up: start-ups per activator. */
  starts: number;
  quick: boolean;
  durationS: number;
  warmupS: number;
  concurrencies: number[];
  routingRounds: number;
  rateDurationS: number;
  coldStarts: number;
  burst: number;
  coldProbeFrequency: string | undefined;
  backpressureDurationS: number;
  maxQueuedPerRevision: number | undefined;
  uploadsPerRevision: number;
  writeReadme: boolean;
  keepTmp: boolean;
  maxQuietWaitS: number;
}

export const USAGE = `usage: npm run bench:activator -- [options]
   (or: ./node_modules/.bin/node --conditions=sluice-source bench/activator.ts [options], after npm run build)

  --parts <list>              which parts, in this order: startup,warm,routing,rate,cold,backpressure,
                              uploads (default: all; routing: the warm path by pod, ClusterIP and
                              TLS routing, its own section of bench/README.md)
  --quick                     smoke run: 3 start-ups, 2 s per warm-path point, 5 s at the fixed rate,
                              5 cold starts, 15 s of backpressure
  --starts <n>                start-up: start-ups per activator (default 7; KNATIVE_ACTIVATOR_BIN
                              adds Knative's activator beside Sluice's)
  --duration <s>              warm path and routing: measured seconds per point (default 8)
  --warmup <s>                warm path, routing and fixed rate: warm-up seconds (default 2)
  --concurrency <list>        warm path and routing: wrk connections (default 10,50,200)
  --routing-rounds <n>        routing: sweeps over the concurrencies, every routing at every C in
                              each (default 3; --quick: 1)
  --rate-duration <s>         fixed rate: seconds of load per target (default 20)
  --cold-starts <n>           scale from zero: number of cold starts (default 20)
  --burst <n>                 scale from zero: concurrent requests sent with the first (default 10)
  --cold-probe-frequency <d>  scale from zero: the activator's PROBE_FREQUENCY, a Go duration
                              such as 25ms (default: the activator's own, 200ms as in Knative)
  --backpressure-duration <s> backpressure: seconds of load (default 60)
  --full                      backpressure for the issue's 5 minutes (300 s)
  --max-queued <n>            backpressure: SLUICE_MAX_QUEUED_PER_REVISION (default: the
                              activator's own default, 10000 per revision, 20000 in all)
  --uploads <n>               uploads: waiting 1 MiB uploads per cold revision in the first
                              run (default 1100, two revisions)
  --write-readme              also put the report into bench/README.md (section "Activator")
  --quiet-wait <s>            before each load run, wait up to this long for other processes
                              to stop using the bench CPUs (default 15; 0: don't wait)
  --keep-tmp                  keep the temp dir (logs) after a successful run
  -h, --help                  this text
`;

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function nonNegative(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a number >= 0, got ${JSON.stringify(value)}`);
  return n;
}

/** Parses argv; undefined when --help was asked for. */
export function parseActivatorOptions(argv: string[]): ActivatorOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      parts: { type: 'string' },
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string', default: '10,50,200' },
      'routing-rounds': { type: 'string' },
      'rate-duration': { type: 'string' },
      'cold-starts': { type: 'string' },
      burst: { type: 'string', default: '10' },
      'cold-probe-frequency': { type: 'string' },
      'backpressure-duration': { type: 'string' },
      full: { type: 'boolean', default: false },
      'max-queued': { type: 'string' },
      uploads: { type: 'string', default: '1100' },
      'write-readme': { type: 'boolean', default: false },
      'keep-tmp': { type: 'boolean', default: false },
      'quiet-wait': { type: 'string', default: '15' },
      starts: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const quick = values.quick;
  let parts: Part[] = [...PARTS];
  if (values.parts !== undefined) {
    parts = values.parts.split(',').map((p) => {
      const name = p.trim();
      if (!(PARTS as readonly string[]).includes(name)) throw new Error(`--parts: unknown part ${JSON.stringify(name)} (known: ${PARTS.join(', ')})`);
      return name as Part;
    });
  }
  if (values.full && values['backpressure-duration'] !== undefined) throw new Error('--full and --backpressure-duration exclude each other');
  const burst = Number(values.burst);
  if (!Number.isInteger(burst) || burst < 0) throw new Error(`--burst must be an integer >= 0, got ${JSON.stringify(values.burst)}`);
  return {
    parts,
    quick,
    durationS: values.duration !== undefined ? positiveInt(values.duration, '--duration') : quick ? 2 : 8,
    warmupS: values.warmup !== undefined ? positiveInt(values.warmup, '--warmup') : quick ? 1 : 2,
    concurrencies: [...new Set(values.concurrency.split(',').map((c) => positiveInt(c.trim(), '--concurrency')))],
    routingRounds: values['routing-rounds'] !== undefined ? positiveInt(values['routing-rounds'], '--routing-rounds') : quick ? 1 : 3,
    rateDurationS: values['rate-duration'] !== undefined ? positiveInt(values['rate-duration'], '--rate-duration') : quick ? 5 : 20,
    starts: values.starts !== undefined ? positiveInt(values.starts, '--starts') : quick ? 3 : 7,
    coldStarts: values['cold-starts'] !== undefined ? positiveInt(values['cold-starts'], '--cold-starts') : quick ? 5 : 20,
    burst,
    coldProbeFrequency: values['cold-probe-frequency'],
    backpressureDurationS: values.full
      ? 300
      : values['backpressure-duration'] !== undefined
        ? positiveInt(values['backpressure-duration'], '--backpressure-duration')
        : quick
          ? 15
          : 60,
    maxQueuedPerRevision: values['max-queued'] !== undefined ? positiveInt(values['max-queued'], '--max-queued') : undefined,
    uploadsPerRevision: positiveInt(values.uploads, '--uploads'),
    writeReadme: values['write-readme'],
    keepTmp: values['keep-tmp'],
    maxQuietWaitS: nonNegative(values['quiet-wait'], '--quiet-wait'),
  };
}
