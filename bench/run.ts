// Benchmark of Sluice's queue-proxy against Knative's Go queue-proxy, a direct connection, an
// nginx reverse proxy and a bare node:http server; then the queue-proxy with tracing off vs on.
// Method and columns: bench/README.md. Usage: npm run bench -- [--quick] [--help].
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startBackend } from './lib/backend.ts';
import type { BackpressureSettings } from './lib/backpressure.ts';
import { atExit, killChildrenOnExit, stop } from './lib/children.ts';
import type { LaunchContext } from './lib/launch.ts';
import { measureTarget, type TargetResult } from './lib/measure.ts';
import { parseOptions, USAGE, type Options } from './lib/options.ts';
import { formatProfileSummary, summarizeProfile } from './lib/cpu-profile.ts';
import { clockTicksPerSecond } from './lib/proc.ts';
import { foreignLoad, NOISY } from './lib/quiet.ts';
import { TRACING_MARKERS, writeBetweenMarkers } from './lib/readme-results.ts';
import { renderReport } from './lib/report.ts';
import { startSlowUploadApp } from './lib/slow-upload-app.ts';
import { systemInfo } from './lib/system-info.ts';
import { requireTools } from './lib/tools.ts';
import { runTracingPart } from './lib/tracing-part.ts';
import { formatTracingShare, tracingShare } from './lib/tracing-profile.ts';
import { renderTracingSection } from './lib/tracing-report.ts';
import { writePostScript } from './lib/wrk.ts';

const POST_BYTES = 64 * 1024;
const POST_CONNECTIONS = 50;
const MiB = 1024 * 1024;
// Sizes from the issue; rates chosen so a point takes 16 s (reader) and 8 s (app), a quarter of that with --quick.
const BIG_BYTES = 1024 * MiB;
const UPLOAD_BYTES = 256 * MiB;
const READER_RATE = 64 * MiB;
const APP_RATE = 32 * MiB;

const began = performance.now();
function log(line: string): void {
  process.stderr.write(`[${((performance.now() - began) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
}

function fatal(message: string, code = 1): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(code);
}

/** The repo's Node 24 binary, symlinks resolved (node_modules/.bin/node -> node/bin/node). */
function repoNode(repo: string): string {
  const link = join(repo, 'node_modules', '.bin', 'node');
  return existsSync(link) ? realpathSync(link) : process.execPath;
}

async function main(): Promise<number> {
  killChildrenOnExit();
  let options: Options | undefined;
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (err) {
    fatal(`${(err as Error).message}\n\n${USAGE}`, 2);
  }
  if (options === undefined) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (process.platform !== 'linux') fatal('the bench reads /proc and uses taskset: it runs on Linux only');

  let tools;
  try {
    tools = requireTools();
    clockTicksPerSecond();
  } catch (err) {
    fatal((err as Error).message);
  }

  const repo = resolve(import.meta.dirname, '..');
  const results = join(repo, 'bench', 'results');
  mkdirSync(results, { recursive: true });
  const node = repoNode(repo);

  // Proxies on CPU 0; wrk, the backend and this harness (mostly idle, but it polls tightly
  // while timing start-ups) on CPU 1, so nothing but the proxy competes for CPU 0.
  const info = systemInfo(node, tools);
  const proxyCpu = 0;
  let loadCpu = 1;
  if (info.nproc < 2) {
    log(`warning: only ${info.nproc} CPU: proxy and load generator share CPU 0, numbers are not comparable`);
    loadCpu = 0;
  }
  execFileSync(tools.taskset, ['-a', '-p', '-c', String(loadCpu), String(process.pid)], { stdio: 'ignore' });

  const workDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  chmodSync(workDir, 0o755); // nginx workers run as nobody when started by root
  let keepWorkDir = options.keepTmp;
  atExit(() => {
    if (!keepWorkDir) rmSync(workDir, { recursive: true, force: true });
  });
  log(`work dir ${workDir}; node ${node}; ${info.nproc} CPUs, ${info.cpuModel}`);

  // The backpressure points' backend side: a sparse 1 GiB file (no disk used) and the slow app.
  const speedup = options.quick ? 4 : 1;
  const bigFile = join(workDir, 'big.bin');
  writeFileSync(bigFile, '');
  truncateSync(bigFile, BIG_BYTES);
  const uploadApp = await startSlowUploadApp(APP_RATE * speedup);
  const backpressure: BackpressureSettings = {
    bigPath: '/big',
    bigBytes: BIG_BYTES,
    readerBytesPerSecond: READER_RATE * speedup,
    uploadPath: '/slow-upload',
    uploadBytes: UPLOAD_BYTES,
    appBytesPerSecond: APP_RATE * speedup,
  };
  const backend = await startBackend(tools, workDir, loadCpu, {
    bigPath: backpressure.bigPath,
    bigFile,
    uploadPath: backpressure.uploadPath,
    uploadAppPort: uploadApp.port,
  });
  log(`backend nginx on 127.0.0.1:${backend.port} (CPU ${loadCpu}), slow upload app on 127.0.0.1:${uploadApp.port}`);

  const ctx: LaunchContext = {
    tools,
    node,
    repo,
    results,
    backendPort: backend.port,
    cpu: proxyCpu,
    workDir,
    profile: options.profile,
  };
  const measureOptions = {
    concurrencies: options.concurrencies,
    durationS: options.durationS,
    warmupS: options.warmupS,
    starts: options.starts,
    settleMs: options.quick ? 500 : 1000,
    postConnections: POST_CONNECTIONS,
    postScript: writePostScript(workDir, POST_BYTES),
    loadCpu,
    cpus: [...new Set([proxyCpu, loadCpu])],
    backendPid: backend.child.pid,
    maxQuietWaitMs: options.maxQuietWaitS * 1000,
    backpressure: options.backpressure ? backpressure : undefined,
    log,
  };
  const profilesBefore = new Set(readdirSync(results));
  const backgroundLoad = await foreignLoad([...new Set([proxyCpu, loadCpu])], 1000);
  if (backgroundLoad > NOISY) {
    log(`warning: other processes keep ${(backgroundLoad * 100).toFixed(0)}% of CPUs ${proxyCpu},${loadCpu} busy: expect noisy numbers`);
  }

  const measured: TargetResult[] = [];
  for (const spec of options.targets) measured.push(await measureTarget(spec, ctx, measureOptions));
  const tracing = options.tracing === undefined ? undefined : await runTracingPart(options.tracing, ctx, measureOptions);
  await stop(backend.child);
  await uploadApp.close();

  const main = options.targets.length === 0 ? '' : renderReport(measured, info, {
    durationS: options.durationS,
    warmupS: options.warmupS,
    concurrencies: options.concurrencies,
    starts: options.starts,
    postConnections: POST_CONNECTIONS,
    backpressure: options.backpressure ? backpressure : undefined,
    proxyCpu,
    loadCpu,
    quick: options.quick,
    profile: options.profile,
    backgroundLoad,
  });
  const tracingSection = tracing === undefined ? '' : renderTracingSection(tracing, info, options);
  const report = [main, tracingSection].filter((part) => part !== '').join('\n');
  process.stdout.write(`\n${report}`);

  const file = join(results, `${info.date.replace(/:/g, '-')}.md`);
  writeFileSync(file, report);
  log(`report written to ${file}`);
  if (options.writeReadme) {
    const readme = join(repo, 'bench', 'README.md');
    if (main !== '') writeBetweenMarkers(readme, main);
    if (tracingSection !== '') writeBetweenMarkers(readme, tracingSection, TRACING_MARKERS);
    log('report written into bench/README.md');
  }
  if (options.profile) {
    const profiles = readdirSync(results).filter((f) => f.endsWith('.cpuprofile') && !profilesBefore.has(f));
    if (profiles.length === 0) log('no CPU profile was written (see bench/README.md, "CPU profile")');
    for (const f of profiles) {
      log(`CPU profile ${join(results, f)} (full ranking: node bench/profile-summary.ts <file>)`);
      process.stderr.write(formatProfileSummary(summarizeProfile(join(results, f), repo), 15));
      process.stderr.write(formatTracingShare(tracingShare(join(results, f), repo)));
    }
  }

  const failed = [...measured.filter((r) => r.failed !== undefined), ...(tracing?.failed === undefined ? [] : [tracing])];
  if (failed.length > 0) keepWorkDir = true; // its logs explain the failure
  if (keepWorkDir) log(`kept ${workDir} (configs and logs)`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => fatal(err instanceof Error ? (err.stack ?? err.message) : String(err)),
);
