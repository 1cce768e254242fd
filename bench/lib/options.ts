// Command-line options of bench/run.ts.
import { parseArgs } from 'node:util';
import { builtinTargets, parseExtraTargets, type TargetSpec } from './targets.ts';
import type { TracingPartSettings } from './tracing-part.ts';

export interface Options {
  quick: boolean;
  durationS: number;
  warmupS: number;
  concurrencies: number[];
  starts: number;
  targets: TargetSpec[];
  profile: boolean;
  writeReadme: boolean;
  keepTmp: boolean;
  maxQuietWaitS: number;
  backpressure: boolean;
  /** The tracing part (lib/tracing-part.ts); undefined with --skip-tracing. */
  tracing: TracingPartSettings | undefined;
}

export const USAGE = `usage: npm run bench -- [options]      (or: ./node_modules/.bin/node bench/run.ts [options])

  --quick                 smoke run: 2 s per point, 1 s warm-up, backpressure points read 4x faster
  --duration <s>          measured seconds per point (default 8)
  --warmup <s>            warm-up seconds before each point (default 2)
  --concurrency <list>    wrk connections per point (default 1,10,50,200)
  --targets <list>        subset and order of targets (default: all; built-ins:
                          direct,nginx,knative-queue,queue-proxy,node-http; knative-queue
                          needs KNATIVE_QUEUE_BIN, the path of Knative's Go queue binary)
  --starts <n>            start-ups timed per target, median reported (default 5)
  --extra-target <json>   another target, e.g. the activator (repeatable; also BENCH_EXTRA_TARGET);
                          see bench/README.md for the JSON shape and placeholders
  --skip-backpressure     leave out the slow-reader and slow-upload points
  --skip-tracing          leave out the tracing part (queue-proxy with tracing off vs on)
  --tracing-only          run only the tracing part (no --targets)
  --tracing-rates <list>  sample rates of the tracing-on variants (default 0.1,1)
  --tracing-concurrency <list>
                          wrk connections of the tracing part (default 10,50)
  --tracing-rounds <n>    rounds of the tracing part's points (default 1)
  --tracing-paired-rps <n>
                          requests/s offered to every variant at once in the tracing part's
                          paired points, by hey at a fixed rate (default 3000; 0: none)
  --profile               run node targets with --cpu-prof --cpu-prof-dir bench/results/
  --write-readme          also put the report into bench/README.md between the markers
  --quiet-wait <s>        before each point, wait up to this long for other processes to
                          stop using the bench CPUs (default 15; 0: don't wait)
  --keep-tmp              keep the temp dir (configs, logs) after a successful run
  -h, --help              this text
`;

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function nonNegative(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a number of seconds >= 0, got ${JSON.stringify(value)}`);
  return n;
}

function intList(value: string, flag: string): number[] {
  return [...new Set(value.split(',').map((c) => positiveInt(c.trim(), flag)))];
}

function sampleRate(value: string): number {
  const n = Number(value);
  if (value === '' || !Number.isFinite(n) || n <= 0 || n > 1) throw new Error(`--tracing-rates: each rate must be in (0, 1], got ${JSON.stringify(value)}`);
  return n;
}

/** Parses argv; returns undefined when --help was asked for. */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string', default: '1,10,50,200' },
      targets: { type: 'string' },
      starts: { type: 'string', default: '5' },
      'extra-target': { type: 'string', multiple: true, default: [] },
      profile: { type: 'boolean', default: false },
      'write-readme': { type: 'boolean', default: false },
      'keep-tmp': { type: 'boolean', default: false },
      'skip-backpressure': { type: 'boolean', default: false },
      'quiet-wait': { type: 'string', default: '15' },
      'skip-tracing': { type: 'boolean', default: false },
      'tracing-only': { type: 'boolean', default: false },
      'tracing-rates': { type: 'string', default: '0.1,1' },
      'tracing-concurrency': { type: 'string', default: '10,50' },
      'tracing-rounds': { type: 'string', default: '1' },
      'tracing-paired-rps': { type: 'string', default: '3000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;

  const all = builtinTargets(env);
  const extras: [string, string][] = values['extra-target'].map((json) => [json, '--extra-target']);
  if (env.BENCH_EXTRA_TARGET !== undefined && env.BENCH_EXTRA_TARGET.trim() !== '') {
    extras.push([env.BENCH_EXTRA_TARGET, 'BENCH_EXTRA_TARGET']);
  }
  for (const [json, source] of extras) {
    for (const spec of parseExtraTargets(json, source)) {
      if (all.some((t) => t.name === spec.name)) throw new Error(`${source}: target name ${spec.name} is already taken`);
      all.push(spec);
    }
  }
  let targets = all;
  if (values.targets !== undefined) {
    targets = values.targets.split(',').map((name) => {
      const spec = all.find((t) => t.name === name.trim());
      if (spec === undefined) throw new Error(`--targets: unknown target ${name} (known: ${all.map((t) => t.name).join(', ')})`);
      return spec;
    });
  }

  if (values['skip-tracing'] && values['tracing-only']) throw new Error('--skip-tracing and --tracing-only exclude each other');
  const tracing: TracingPartSettings | undefined = values['skip-tracing']
    ? undefined
    : {
        rates: [...new Set(values['tracing-rates'].split(',').map((r) => sampleRate(r.trim())))],
        concurrencies: intList(values['tracing-concurrency'], '--tracing-concurrency'),
        rounds: positiveInt(values['tracing-rounds'], '--tracing-rounds'),
        pairedRps: values['tracing-paired-rps'] === '0' ? 0 : positiveInt(values['tracing-paired-rps'], '--tracing-paired-rps'),
      };

  return {
    quick: values.quick,
    durationS: values.duration !== undefined ? positiveInt(values.duration, '--duration') : values.quick ? 2 : 8,
    warmupS: values.warmup !== undefined ? positiveInt(values.warmup, '--warmup') : values.quick ? 1 : 2,
    concurrencies: intList(values.concurrency, '--concurrency'),
    starts: positiveInt(values.starts, '--starts'),
    targets: values['tracing-only'] ? [] : targets,
    profile: values.profile,
    writeReadme: values['write-readme'],
    keepTmp: values['keep-tmp'],
    maxQuietWaitS: nonNegative(values['quiet-wait'], '--quiet-wait'),
    backpressure: !values['skip-backpressure'],
    tracing,
  };
}
