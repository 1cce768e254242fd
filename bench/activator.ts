// Benchmark of Sluice's activator: warm-path CPU and throughput next to the queue-proxy,
// latency at a fixed rate, scale from zero, and backpressure under overload.
// Method: bench/README.md, section "Activator". Usage: npm run bench:activator -- [--help].
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { atExit, killChildrenOnExit } from './lib/children.ts';
import { clockTicksPerSecond } from './lib/proc.ts';
import { foreignLoad, NOISY } from './lib/quiet.ts';
import { systemInfo } from './lib/system-info.ts';
import { QUEUE_PROXY_MAIN } from './lib/targets.ts';
import { requireTools, which } from './lib/tools.ts';
import { runBackpressure } from './activator-lib/backpressure.ts';
import { runColdStarts } from './activator-lib/cold-start.ts';
import type { BenchContext } from './activator-lib/context.ts';
import { runFixedRate } from './activator-lib/fixed-rate.ts';
import { parseActivatorOptions, USAGE, type ActivatorOptions } from './activator-lib/options.ts';
import { ACTIVATOR_MAIN } from './activator-lib/processes.ts';
import { writeActivatorSection } from './activator-lib/readme-section.ts';
import { renderActivatorReport, type ReportInput } from './activator-lib/report.ts';
import { runRouting } from './activator-lib/routing.ts';
import { writeRoutingSection } from './activator-lib/routing-readme.ts';
import { startStatServer } from './activator-lib/stat-server.ts';
import { runStartup } from './activator-lib/startup.ts';
import { runUploadMemory } from './activator-lib/upload-memory.ts';
import { runWarmPath } from './activator-lib/warm-path.ts';

/** Fixed-rate part: hey's -q is per worker, so 200 workers × 5 req/s = 1,000 req/s. */
const RATE = { workers: 200, perWorkerRate: 5, appDelayMs: 100 };
/** Backpressure part (knative/serving#13583). */
const BACKPRESSURE = { rate: 200, appDelayMs: 30_000, containerConcurrency: 2, timeoutSeconds: 300 };
/** Waiting uploads, worst case of the defaults: 2,048 uploads (360 fit the byte budget) plus 14,000 GETs (the figures). */
const UPLOADS = { fittingUploads: 360, worstUploads: 2048, worstGets: 14_000 };

const began = performance.now();
function log(line: string): void {
  process.stderr.write(`[${((performance.now() - began) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
}

function fatal(message: string, code = 1): never {
  process.stderr.write(`bench:activator: ${message}\n`);
  process.exit(code);
}

function repoNode(repo: string): string {
  const link = join(repo, 'node_modules', '.bin', 'node');
  return existsSync(link) ? realpathSync(link) : process.execPath;
}

function heyVersion(): string {
  const run = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'hey'], { encoding: 'utf8' });
  return run.status === 0 && run.stdout.trim() !== '' ? `hey ${run.stdout.trim()}` : 'hey';
}

async function main(): Promise<number> {
  killChildrenOnExit();
  let options: ActivatorOptions | undefined;
  try {
    options = parseActivatorOptions(process.argv.slice(2));
  } catch (err) {
    fatal(`${(err as Error).message}\n\n${USAGE}`, 2);
  }
  if (options === undefined) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (process.platform !== 'linux') fatal('the bench reads /proc and uses taskset: it runs on Linux only');

  let tools: BenchContext['tools'];
  try {
    const base = requireTools();
    // hey drives only the fixed-rate part.
    const hey = which('hey');
    if (hey === undefined && options.parts.includes('rate')) throw new Error('missing tools: hey (Debian package hey).\nInstall it with: apt-get update && apt-get install -y hey');
    tools = { ...base, hey: hey ?? 'hey' };
    clockTicksPerSecond();
  } catch (err) {
    fatal((err as Error).message);
  }

  const repo = resolve(import.meta.dirname, '..');
  for (const main of [ACTIVATOR_MAIN, QUEUE_PROXY_MAIN]) {
    if (!existsSync(join(repo, main))) fatal(`${main} not found: build first (npm run build, or npx tsc -b)`);
  }
  const results = join(repo, 'bench', 'results');
  mkdirSync(results, { recursive: true });
  const node = repoNode(repo);
  const info = systemInfo(node, tools);
  const proxyCpu = 0;
  let loadCpu = 1;
  if (info.nproc < 2) {
    log(`warning: only ${info.nproc} CPU: the activator shares CPU 0 with everything else, numbers are not comparable`);
    loadCpu = 0;
  }
  // The harness (the cold-start and backpressure drivers, the stat server) lives on the load CPU.
  execFileSync(tools.taskset, ['-a', '-p', '-c', String(loadCpu), String(process.pid)], { stdio: 'ignore' });

  const workDir = mkdtempSync(join(tmpdir(), 'sluice-bench-activator-'));
  chmodSync(workDir, 0o755); // nginx workers run as nobody when started by root
  let keepWorkDir = options.keepTmp;
  atExit(() => {
    if (!keepWorkDir) rmSync(workDir, { recursive: true, force: true });
  });
  const cpus = [...new Set([proxyCpu, loadCpu])];
  const stats = await startStatServer();
  log(`work dir ${workDir}; node ${node}; ${info.nproc} CPUs, ${info.cpuModel}; test autoscaler at ${stats.url}`);

  const ctx: BenchContext = {
    tools,
    node,
    repo,
    results,
    workDir,
    proxyCpu,
    loadCpu,
    cpus,
    stats,
    maxQuietWaitMs: options.maxQuietWaitS * 1000,
    log,
  };
  const backgroundLoad = await foreignLoad(cpus, 1000);
  if (backgroundLoad > NOISY) log(`warning: other processes keep ${(backgroundLoad * 100).toFixed(0)}% of CPUs ${cpus.join(',')} busy: expect noisy numbers`);

  const input: ReportInput = {
    info,
    heyVersion: heyVersion(),
    proxyCpu,
    loadCpu,
    backgroundLoad,
    quick: options.quick,
    durationS: options.durationS,
    warmupS: options.warmupS,
  };
  for (const part of options.parts) {
    if (part === 'startup') {
      input.startup = await runStartup(ctx, { starts: options.starts });
    } else if (part === 'warm') {
      input.warm = await runWarmPath(ctx, { concurrencies: options.concurrencies, durationS: options.durationS, warmupS: options.warmupS });
    } else if (part === 'routing') {
      input.routing = await runRouting(ctx, { concurrencies: options.concurrencies, rounds: options.routingRounds, durationS: options.durationS, warmupS: options.warmupS });
    } else if (part === 'rate') {
      input.rate = { ...RATE, durationS: options.rateDurationS };
      input.fixedRate = await runFixedRate(ctx, { ...RATE, durationS: options.rateDurationS, warmupS: options.warmupS });
    } else if (part === 'cold') {
      input.cold = await runColdStarts(ctx, { starts: options.coldStarts, burst: options.burst, probeFrequency: options.coldProbeFrequency });
    } else if (part === 'backpressure') {
      input.backpressure = await runBackpressure(ctx, {
        ...BACKPRESSURE,
        durationS: options.backpressureDurationS,
        maxQueuedPerRevision: options.maxQueuedPerRevision,
      });
    } else {
      input.uploads = await runUploadMemory(ctx, { ...UPLOADS, uploadsPerRevision: options.uploadsPerRevision });
    }
  }
  await stats.close();

  const report = renderActivatorReport(input);
  process.stdout.write(`\n${report}`);
  const file = join(results, `activator-${info.date.replace(/:/g, '-')}.md`);
  writeFileSync(file, report);
  log(`report written to ${file}`);
  if (options.writeReadme) {
    // The routing part has its own README section, so a routing-only run keeps the other parts' report.
    if (options.parts.some((p) => p !== 'routing')) {
      writeActivatorSection(join(repo, 'bench', 'README.md'), renderActivatorReport({ ...input, routing: undefined }));
      log('report written into bench/README.md (section "Activator")');
    }
    if (input.routing !== undefined) {
      writeRoutingSection(join(repo, 'bench', 'README.md'), input, input.routing);
      log('routing report written into bench/README.md (section "Activator: routing")');
    }
  }
  const failed = [input.warm, input.routing, input.fixedRate, input.cold, input.backpressure, input.uploads].some((r) => r !== undefined && r.failures.length > 0);
  if (failed || stats.decodeErrors > 0) keepWorkDir = true; // the logs explain it
  if (stats.decodeErrors > 0) log(`warning: ${stats.decodeErrors} stat frame(s) from the activator did not decode`);
  if (keepWorkDir) log(`kept ${workDir} (logs)`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => fatal(err instanceof Error ? (err.stack ?? err.message) : String(err)),
);
