// Command-line options of bench/local.ts.

export interface LocalOptions {
  /** Cold starts timed through the whole stack. */
  starts: number;
  /** Services cold-started per round (all scale to zero together, then start one by one). */
  servicesPerRound: number;
  /** hey's -z, seconds. */
  loadSeconds: number;
  /** hey's -c. */
  concurrency: number;
  /** autoscaling.knative.dev/target of the load service (concurrency per instance, before the 70 % utilisation). */
  loadTarget: number;
  /** How long the load service's app takes to answer, ms. */
  appDelayMs: number;
  parts: { cold: boolean; load: boolean };
  writeReadme: boolean;
  /** Print the runtime's log lines (scale events, instance readiness) to stderr as they happen. */
  verbose: boolean;
}

export const USAGE = `usage: ./node_modules/.bin/node bench/local.ts [options]   (after npx tsc -b)
  --starts <n>             cold starts to time (default 20)
  --services <n>           services cold-started per round (default 5)
  --load-seconds <s>       hey -z for the load part (default 20)
  --concurrency <n>        hey -c for the load part (default 50)
  --load-target <n>        autoscaling.knative.dev/target of the load service (default 20)
  --app-delay <ms>         the load service's answer time (default 50)
  --parts cold,load        which parts to run (default both)
  --write-readme           also put the report into bench/README.md (local section)
  --verbose                echo the runtime's log lines to stderr
  --help                   this text
`;

function positive(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n <= 0) throw new Error(`${flag} wants a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/** Parsed options, or undefined for --help. */
export function parseLocalOptions(argv: readonly string[]): LocalOptions | undefined {
  const o: LocalOptions = {
    starts: 20,
    servicesPerRound: 5,
    loadSeconds: 20,
    concurrency: 50,
    loadTarget: 20,
    appDelayMs: 50,
    parts: { cold: true, load: true },
    writeReadme: false,
    verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--help': case '-h': return undefined;
      case '--starts': o.starts = positive(flag, value()); break;
      case '--services': o.servicesPerRound = positive(flag, value()); break;
      case '--load-seconds': o.loadSeconds = positive(flag, value()); break;
      case '--concurrency': o.concurrency = positive(flag, value()); break;
      case '--load-target': o.loadTarget = positive(flag, value()); break;
      case '--app-delay': o.appDelayMs = positive(flag, value()); break;
      case '--write-readme': o.writeReadme = true; break;
      case '--verbose': o.verbose = true; break;
      case '--parts': {
        const parts = (value() ?? '').split(',');
        for (const p of parts) if (p !== 'cold' && p !== 'load') throw new Error(`--parts: unknown part ${JSON.stringify(p)} (cold, load)`);
        o.parts = { cold: parts.includes('cold'), load: parts.includes('load') };
        break;
      }
      default: throw new Error(`unknown option ${flag}`);
    }
  }
  return o;
}
