// The fixed part of bench/README.md's "Activator" section: how to run the activator bench and
// what it measures. bench/activator.ts --write-readme puts it, followed by the latest report,
// between the section's markers.

export const ACTIVATOR_README_DOC = `## Activator

\`bench/activator.ts\` measures Sluice's activator (\`packages/activator\`) against the issue's
targets. Like the queue-proxy bench it prints numbers and never fails on one.

    npm run bench:activator                        # builds, then runs every part (~9 minutes)
    npm run bench:activator -- --quick             # smoke run (~2 minutes)
    npm run bench:activator -- --parts cold,backpressure --full
    npm run bench:activator -- --write-readme      # also put the report below
    KNATIVE_ACTIVATOR_BIN=/path/to/activator npm run bench:activator -- --parts startup   # beside Knative's
    ./node_modules/.bin/node --conditions=sluice-source bench/activator.ts --help   # every option

Requirements: those of the queue-proxy bench plus Debian's \`hey\`
(\`apt-get install -y nginx-light wrk hey\`), and a build (\`packages/*/dist\`). The report goes to
stdout and to \`bench/results/activator-<timestamp>.md\`.

The activator runs as \`node packages/activator/dist/main.js\` with the local endpoint source
(\`SLUICE_ENDPOINT_SOURCE=local\`): the bench plays the control plane through its HTTP API (PUT
revisions and endpoints) and the autoscaler with a small websocket stat server. Requests carry
\`Knative-Serving-Namespace\` / \`Knative-Serving-Revision\`. Each part starts a fresh activator.

**CPU layout** (2 CPUs): CPU 0 runs the activator alone; CPU 1 runs the load generator, the
backend, the queue-proxy behind the activator and the harness. The queue-proxy-only rows put the
queue-proxy on CPU 0 instead, exactly as the queue-proxy bench does.

0. **Start-up and idle memory** (\`--parts startup\`, \`--starts N\`, default 7): the activator with
   the *Kubernetes* endpoint source, as in a cluster, listing and watching a stub API server
   (\`activator-lib/kube-api-stub.ts\`: one revision scaled to zero, the ConfigMaps and Secrets
   Knative's informers list, watches that stay quiet). Start-up is exec → the first 200 to a
   kubelet probe (polled every 2 ms); idle RSS is VmRSS 2 s later. With \`KNATIVE_ACTIVATOR_BIN\`
   naming Knative's activator binary (built as \`../shared/knative/BUILD.md\` says), it is started
   the same way, alternately with Sluice's, and every figure gets a ÷ Knative column. Knative's
   activator needs its fixed ports (8012, 8013, 8008, 9090) free, a stat server on :8080 (the
   bench starts one) and \`autoscaler.knative-serving.svc.cluster.local\` resolving to 127.0.0.1
   (\`/etc/hosts\`); its rows are skipped with the reason when any is missing. Knative's readiness
   waits for the autoscaler websocket, so both activators get one. Targets: start-up ≤ 600 ms and
   idle RSS ≤ 90 MiB.
1. **Warm path**: \`wrk -t1 -c C\` (C = 10, 50, 200; 8 s after a 2 s warm-up) against the
   nginx backend (\`return 200\`, 13 bytes) directly, through the queue-proxy, and through
   activator → queue-proxy (revision containerConcurrency 0, the pod listed ready). CPU µs per
   request is utime+stime of the process on CPU 0 over the run (\`/proc\`) divided by the requests
   wrk completed. Target: activator ≤ 1.3 × the queue-proxy's CPU per request. The report also
   gives the ratio to the queue-proxy behind the activator, which served the same requests at
   the same rate (CPU per request falls as the rate rises).
   **1b. Routing** (\`--parts routing\`): the same traffic through pod, ClusterIP (mesh) and
   system-internal-tls routing, side by side; its method and latest table are in the next
   section, "Activator: pod, ClusterIP and TLS routing", which only that part rewrites.
2. **Latency at a fixed rate**: 1,000 req/s for 20 s against a Node app that answers after
   100 ms, directly, through the queue-proxy and through activator → queue-proxy, first with
   \`hey -z 20s -c 200 -q 5\` (the issue's method; hey's workers fire together, so this is 200
   requests every 200 ms), then with the bench's evenly paced keep-alive client (one request
   per ms, latency from the scheduled instant). Target: activator path p95 ≤ direct + 2 ms
   (Knative's SLO: + 10 ms).
3. **Scale from zero**: 20 cold starts. The revision has no endpoints; one request and a burst
   of 10 more go to the activator. On the activator's poke at the stat server the driver spawns
   the app and a queue-proxy (CPU 1) and PUTs the pod as a not-ready endpoint; it polls the app's
   port every 1 ms. Reported: poke latency, the app's and the queue-proxy's spawn → listening,
   the first response, and the activator share = first response − the app's time to listen
   (target ≤ 50 ms p95); every request must be answered 200. The pod is torn down between runs
   and the driver waits until the activator has dropped the revision (no stat for it for 1.2 s),
   so each run pokes again. \`--cold-probe-frequency 25ms\` shortens the activator's probe period
   (default 200 ms, Knative's).
4. **Backpressure** (knative/serving#13583): 200 req/s for 60 s (\`--full\`: 300 s) into one
   pod with containerConcurrency 2 whose requests take 30 s, revision timeoutSeconds 300, the
   activator's default queue limits (\`--max-queued\` sets SLUICE_MAX_QUEUED_PER_REVISION). The
   load comes from an open-loop Node driver, one connection per request, so it keeps sending
   while thousands wait (wrk or autocannon with a fixed connection count would stop sending once
   every connection waits). Reported: responses by status, Retry-After on every 503, the
   activator's RSS every second against the ceiling documented in \`revision-queue.ts\` (~370 MiB),
   RSS growth per waiting request, and whether the activator stayed up. Requests still waiting
   at the end are aborted by the driver; the activator's queue depth must then drop to 0.

"other load" is the share of CPU 0 + CPU 1 used during a run by processes the bench did not
start; above 5 % the row is marked (!). Files: \`activator.ts\` (entry), \`activator-lib/\`
(one file per part, the processes, the stat server, hey, the paced and open-loop clients, the
report); they reuse \`lib/\` (children, nginx backend, wrk, /proc, quiet, markdown).
`;
