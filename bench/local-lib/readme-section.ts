// Writes the "Local runtime" section of bench/README.md (how to run it, what
// it measures, then the latest report) between its own markers, appending the
// markers at the end of the README if it lacks them.
import { readFileSync, writeFileSync } from 'node:fs';

export const LOCAL_BEGIN = '<!-- local:begin -->';
export const LOCAL_END = '<!-- local:end -->';

export const LOCAL_README_DOC = `## Local runtime

\`bench/local.ts\` measures \`sluice run\` (\`packages/local\`) end to end: the ingress, the activator
process, the KPA autoscaler, and per instance an app process and a queue-proxy process, all
real, on one machine. It prints numbers and never fails on one.

    npx tsc -b && ./node_modules/.bin/node bench/local.ts                  # both parts (~2 minutes)
    ./node_modules/.bin/node bench/local.ts --parts cold --starts 10
    ./node_modules/.bin/node bench/local.ts --write-readme                 # also put the report below
    ./node_modules/.bin/node bench/local.ts --help                         # every option

Requirements: a build (\`packages/*/dist\`) and Debian's \`hey\`. The report goes to stdout and to
\`bench/results/local-<timestamp>.md\`. The runtime (\`LocalRuntime\`) runs inside the bench's process
with several services from one manifest; config-autoscaler has Knative's shortest windows
(stable window 6 s, grace period 6 s).

1. **Cold starts**: 20 requests, each for a service at zero (copies of \`examples/helloworld\`,
   scaled to zero together, then started one at a time, 0.5 s apart): ingress → activator → poke →
   autoscaler decides 0 → 1 → the runtime spawns app and queue-proxy → the activator's probe passes
   → response. Reported: the first response time, the app's own time to listen (the runtime's
   \`Instance.appStartMs\`: spawn → its port accepts, from the status API), and their difference
   (target ≤ 100 ms p95). The bench also stamps each step on one clock (log lines as they are
   logged; \`child_process.spawn\` wrapped to stamp spawns and poll the ports every 1 ms).
2. **Load**: the load service (an app answering after 50 ms, \`autoscaling.knative.dev/target: "20"\`,
   so 14 per instance at 70 %) starts at zero; \`hey -z 20s -c 50\` goes through the ingress; the
   revision's ready and desired instances and the autoscaler's last decision (its stable and
   panic averages, ready pods, recommendation: \`autoscaler\` in the status API) are sampled every
   250 ms until it is back at zero; one more request then cold-starts it. Every decision is
   checked against the KPA formula applied to the averages the autoscaler recorded; the steady
   count against the hand computation ceil(50 / 14) = 4; every request must be answered 200.
`;

export function writeLocalSection(file: string, report: string): void {
  let text = readFileSync(file, 'utf8');
  let begin = text.indexOf(LOCAL_BEGIN);
  let end = text.indexOf(LOCAL_END);
  if (begin < 0 || end < begin) {
    text = `${text.trimEnd()}\n\n${LOCAL_BEGIN}\n${LOCAL_END}\n`;
    begin = text.indexOf(LOCAL_BEGIN);
    end = text.indexOf(LOCAL_END);
  }
  const content = `${LOCAL_README_DOC.trimEnd()}\n\n${report.trimEnd()}`;
  writeFileSync(file, `${text.slice(0, begin + LOCAL_BEGIN.length)}\n${content}\n${text.slice(end)}`);
}
