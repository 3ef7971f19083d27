// `npm run bench [-- FILTER...]`: every scenario, or those whose name contains one of the filters.
//
// The server under test always runs alone on core 0 (taskset). Everything else — dnsperf, the echo
// floor's client, the loopback upstream, the test Kubernetes API server, the search-path client, this
// process — runs on core 1. Throughput is always compared with the Node UDP echo floor measured in the
// same run, in alternating runs (floor, scenario, floor, scenario, ...), so a load change on the shared
// machine hits both sides of each ratio. Compare ratios within one run, not absolute figures across runs.
//
// Environment: BENCH_RUNS (pairs per throughput scenario, 3), BENCH_SECONDS (per dnsperf run, 4),
// BENCH_IDLE_SECONDS (memory: idle before the steady reading, 5), BENCH_CHANGES (propagation, 1000),
// BENCH_SEARCH_SECONDS (search path, per window, 2), BENCH_PROFILE (scenario name to profile, or "off"),
// BENCH_WRITE_DOCS (1: write docs/performance.md and docs/performance-latency.svg even for a filtered
// run; 0: never); BENCH_SWEEP_SECONDS and BENCH_SWEEP_RATES for the latency-vs-load sweep (sweep.ts);
// BENCH_BURST_SECONDS, BENCH_BURST_P50_MS and BENCH_BURST_RATE for the burst (burst.ts);
// BENCH_LATENCY_RATES, BENCH_LATENCY_RUNS, BENCH_LATENCY_SECONDS, BENCH_LATENCY_SERVERS for the
// fixed-rate latency bench (latency.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pod } from '../kubeapi/objects.ts';
import { externalQueries, writeSmallCluster, type SmallCluster } from './cluster.ts';
import { topSelfTime, type SelfTime } from './cpuprofile.ts';
import { dnsperf, haveTool, latency, median, queryFile, type PerfResult } from './dnsperf.ts';
import { memoryNames, memoryRun, memorySpecs, perObject, type MemoryRow } from './memory.ts';
import { cliJs, coreSeconds, cpuSeconds, deploymentEnv, freePort, memStatus, pinSelf, removeTempDirs, repoRoot, spawnNode, tempDir, type Child } from './proc.ts';
import type { PropagationResult } from './propagation.ts';
import { runSearchPath, type SearchPathResult } from './searchpath.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 5);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 1000);
const SEARCH_SECONDS = Number(process.env.BENCH_SEARCH_SECONDS ?? 2);
const PROFILE = process.env.BENCH_PROFILE ?? 'cluster names: kubeadm Corefile';
const SERVER_CORE = 0;
const CLIENT_CORE = 1;
const LATENCY_QPS = 10_000;
const LATENCY_SECONDS = 3;
const only = process.argv.slice(2);
const selected = (name: string) => only.length === 0 || only.some((o) => name.includes(o));
const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- shared fixtures (created on first use) ----

export interface Ports { dns: number; health: number; ready: number; metrics: number }

export interface Fixtures {
  cluster(): SmallCluster;
  /** What `forward` is pointed at: a resolv.conf naming the loopback upstream (or HOST:PORT, see below). */
  upstream(): Promise<{ forwardTo: string; child: Child; note: string }>;
  /** The upstream process if a scenario started it. */
  upstreamChild(): Child | undefined;
  upstreamNote(): string | undefined;
  close(): Promise<void>;
}

/**
 * The kubeadm Corefile with loopback addresses: `bind 127.0.0.1`, health/ready/prometheus on 127.0.0.1
 * high ports, forward to a temp resolv.conf. `source` is the kubernetes plugin's data source line.
 */
export function kubeadmCorefile(p: Ports, o: { source: string; forwardTo: string; pods?: 'insecure' | 'verified'; autopath?: boolean }): string {
  return `.:${p.dns} {
    bind 127.0.0.1
    errors
    health 127.0.0.1:${p.health} {
       lameduck 5s
    }
    ready 127.0.0.1:${p.ready}
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       ${o.source}
       pods ${o.pods ?? 'insecure'}
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
${o.autopath ? '    autopath @kubernetes\n' : ''}    prometheus 127.0.0.1:${p.metrics}
    forward . ${o.forwardTo} {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`;
}

export function fixtures(): Fixtures {
  let cluster: SmallCluster | undefined;
  let up: { forwardTo: string; child: Child; note: string } | undefined;
  return {
    cluster() {
      cluster ??= writeSmallCluster(tempDir('cluster'));
      return cluster;
    },
    async upstream() {
      if (up) return up;
      const script = join(import.meta.dirname, 'upstream.ts');
      // forward reads only `nameserver` lines, always on port 53: as root, bind a loopback address of
      // our own (127.53.x.y) on port 53 and name it in a temp resolv.conf, as the kubeadm Corefile does.
      const addr = `127.53.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
      let child = spawnNode(script, [addr, '53'], { core: CLIENT_CORE });
      try {
        await child.waitFor(/listening/, 10_000);
        const dir = tempDir('resolv');
        const resolv = join(dir, 'resolv.conf');
        writeFileSync(resolv, `# clusterdns bench: the loopback upstream (test/bench/upstream.ts)\nnameserver ${addr}\n`);
        up = { forwardTo: resolv, child, note: `forward . TMP/resolv.conf (nameserver ${addr}, port 53)` };
      } catch {
        // Not root (port 53 needs it) or the address is taken: point forward at HOST:PORT directly.
        await child.stop('SIGKILL');
        const port = await freePort();
        child = spawnNode(script, ['127.0.0.1', String(port)], { core: CLIENT_CORE });
        await child.waitFor(/listening/, 10_000);
        up = { forwardTo: `127.0.0.1:${port}`, child, note: `forward . 127.0.0.1:${port} (could not bind port 53: not the resolv.conf form)` };
      }
      return up;
    },
    upstreamChild: () => up?.child,
    upstreamNote: () => up?.note,
    async close() {
      await up?.child.stop('SIGTERM');
    },
  };
}

/** Queries the upstream answered so far (it prints them on SIGUSR2). */
async function upstreamCount(child: Child): Promise<number> {
  const before = child.output().length;
  child.proc.kill('SIGUSR2');
  for (let i = 0; i < 100; i++) {
    const m = /count (\d+) (\d+)\n/.exec(child.output().slice(before));
    if (m) return Number(m[1]) + Number(m[2]);
    await sleep(10);
  }
  return NaN;
}

export async function ports(): Promise<Ports> {
  return { dns: await freePort(), health: await freePort(), ready: await freePort(), metrics: await freePort() };
}

export async function startServer(corefile: string, nodeArgs: string[] = []): Promise<{ child: Child; dir: string }> {
  const dir = tempDir('server');
  writeFileSync(join(dir, 'Corefile'), corefile);
  // As deployed: the Deployment's NODE_OPTIONS and malloc settings (deploy/kubernetes/deployment.yaml).
  const child = spawnNode(cliJs, ['-conf', join(dir, 'Corefile')], { core: SERVER_CORE, nodeArgs, env: { ...process.env, ...deploymentEnv() } });
  await child.waitFor(/clusterdns-/, 60_000);
  return { child, dir };
}

// ---- throughput ----

export interface Throughput {
  name: string;
  /** Ratio to the echo floor the issue asks for. */
  target?: number;
  queries(f: Fixtures): string[];
  corefile(p: Ports, f: Fixtures): Promise<string>;
}

export interface ThroughputRow {
  name: string; qps: number; qpsMin: number; qpsMax: number; ratio: number; ratioMin: number; ratioMax: number; floorQps: number; floorRuns: number[];
  /** Server CPU (user+system) per completed query, and the floor's, in µs; the server's CPU share while measured. */
  cpuUs: number; floorCpuUs: number; cpuPct: number;
  /** Core 0 during the scenario's runs: busy with anything but the server (other processes, interrupts), and idle, in %. */
  otherPct: number; idlePct: number;
  /** The same for the floor's runs paired with this scenario. */
  floorCpuPct: number; floorOtherPct: number; floorIdlePct: number;
  target?: number; avgMs: number; p50Ms: number; p99Ms: number; rssMiB: number; lost: number; rcodes: string;
}

const whoamiQueries = Array.from({ length: 100 }, (_, i) => `host${i}.example.org A`);

export const throughputScenarios: Throughput[] = [
  {
    name: 'whoami + prometheus + errors',
    queries: () => whoamiQueries,
    corefile: async (p) => `.:${p.dns} {\n  bind 127.0.0.1\n  errors\n  prometheus 127.0.0.1:${p.metrics}\n  whoami\n}\n`,
  },
  {
    name: 'cluster names: errors + prometheus + kubernetes',
    target: 0.8,
    queries: (f) => f.cluster().queries,
    corefile: async (p, f) => `.:${p.dns} {
    bind 127.0.0.1
    errors
    prometheus 127.0.0.1:${p.metrics}
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       manifests ${f.cluster().dir}
    }
}
`,
  },
  {
    name: 'cluster names: kubeadm Corefile',
    target: 0.85,
    queries: (f) => f.cluster().queries,
    corefile: async (p, f) => kubeadmCorefile(p, { source: `manifests ${f.cluster().dir}`, forwardTo: (await f.upstream()).forwardTo }),
  },
  {
    name: 'external names from cache: kubeadm Corefile',
    queries: () => externalQueries(1000),
    corefile: async (p, f) => kubeadmCorefile(p, { source: `manifests ${f.cluster().dir}`, forwardTo: (await f.upstream()).forwardTo }),
  },
];

function rcodeMix(stdout: string): string {
  // "Response codes:       NOERROR 123 (80.00%), NXDOMAIN 30 (20.00%)"
  const line = /Response codes:\s+(.*)/.exec(stdout)?.[1] ?? '';
  return [...line.matchAll(/([A-Z]+) \d+ \(([\d.]+)%\)/g)].map((m) => `${m[1]} ${Math.round(Number(m[2]))}%`).join(', ');
}

async function measureThroughput(s: Throughput, f: Fixtures, floor: { port: number; pid: number; file: string }): Promise<ThroughputRow> {
  const p = await ports();
  const { child } = await startServer(await s.corefile(p, f));
  try {
    const file = queryFile(s.queries(f));
    // Warm up the JIT and caches (both sides).
    dnsperf(p.dns, file, { seconds: 2, core: CLIENT_CORE });
    dnsperf(floor.port, floor.file, { seconds: 1, core: CLIENT_CORE });
    const runs: PerfResult[] = [];
    const floors: number[] = [];
    const ratios: number[] = [];
    const cpuUs: number[] = [];
    const floorCpuUs: number[] = [];
    const cpuPct: number[] = [];
    const otherPct: number[] = [];
    const idlePct: number[] = [];
    const floorCore: Array<{ cpu: number; other: number; idle: number }> = [];
    let last = '';
    const up = f.upstreamChild();
    const upBefore = up ? await upstreamCount(up) : NaN;
    for (let i = 0; i < RUNS; i++) {
      let c0 = cpuSeconds(floor.pid);
      const fcore0 = coreSeconds(SERVER_CORE);
      const ft0 = performance.now();
      const flr = dnsperf(floor.port, floor.file, { seconds: SECONDS, core: CLIENT_CORE }).result;
      const fcpu = cpuSeconds(floor.pid) - c0;
      const fel = (performance.now() - ft0) / 1000;
      const fcore1 = coreSeconds(SERVER_CORE);
      floorCpuUs.push((fcpu * 1e6) / flr.completed);
      floorCore.push({ cpu: (100 * fcpu) / fel, other: (100 * Math.max(0, fcore1.busy - fcore0.busy - fcpu)) / fel, idle: (100 * (fcore1.idle - fcore0.idle)) / fel });
      const fl = flr.qps;
      c0 = cpuSeconds(child.pid);
      const core0 = coreSeconds(SERVER_CORE);
      const t0 = performance.now();
      const r = dnsperf(p.dns, file, { seconds: SECONDS, core: CLIENT_CORE });
      const cpu = cpuSeconds(child.pid) - c0;
      const elapsed = (performance.now() - t0) / 1000;
      const core1 = coreSeconds(SERVER_CORE);
      cpuUs.push((cpu * 1e6) / r.result.completed);
      cpuPct.push((100 * cpu) / elapsed);
      otherPct.push((100 * Math.max(0, core1.busy - core0.busy - cpu)) / elapsed);
      idlePct.push((100 * (core1.idle - core0.idle)) / elapsed);
      floors.push(fl);
      runs.push(r.result);
      ratios.push(r.result.qps / fl);
      last = r.stdout;
    }
    const upQueries = up ? (await upstreamCount(up)) - upBefore : NaN;
    const completed = runs.reduce((a, r) => a + r.completed, 0);
    const rss = memStatus(child.pid).rssMiB;
    const lat = latency(p.dns, file, LATENCY_QPS, LATENCY_SECONDS, CLIENT_CORE);
    const qs = runs.map((r) => r.qps);
    return {
      name: s.name, qps: median(qs), qpsMin: Math.min(...qs), qpsMax: Math.max(...qs),
      ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios), floorQps: median(floors), floorRuns: floors,
      cpuUs: median(cpuUs), floorCpuUs: median(floorCpuUs), cpuPct: median(cpuPct), otherPct: median(otherPct), idlePct: median(idlePct),
      floorCpuPct: median(floorCore.map((x) => x.cpu)), floorOtherPct: median(floorCore.map((x) => x.other)), floorIdlePct: median(floorCore.map((x) => x.idle)),
      ...(s.target !== undefined ? { target: s.target } : {}),
      avgMs: median(runs.map((r) => r.avgMs)), p50Ms: lat.p50Ms, p99Ms: lat.p99Ms, rssMiB: rss,
      lost: runs.reduce((a, r) => a + r.lost, 0),
      rcodes: rcodeMix(last) + (up ? `; to upstream ${fmt((100 * upQueries) / completed, 2)}%` : ''),
    };
  } finally {
    // SIGKILL: the kubeadm Corefile's lameduck would hold every stop for 5 s.
    await child.stop('SIGKILL');
  }
}

// ---- search path ----

export interface SearchRow {
  name: string;
  inFlight: number;
  /** One result per measured window (the configurations' windows alternate). */
  windows: Array<{ result: SearchPathResult; upstreamPerLookup: number; serverCpu: number; otherCpu: number; idle: number }>;
  skipped?: string;
}

function autopathRegistered(): boolean {
  const r = spawnSync(process.execPath, [cliJs, '-plugins'], { encoding: 'utf8' });
  return /\bautopath\b/.test(r.stdout ?? '');
}

const searchConfigs = [
  { name: 'kubeadm + pods verified, no autopath', autopath: false },
  { name: 'kubeadm + pods verified + autopath @kubernetes', autopath: true },
] as const;

/**
 * Both configurations run at once (each its own server on core 0, idle while the other is measured);
 * their windows alternate, so a change in the machine's load hits both. One lookup in flight gives
 * what one pod waits; 32 in flight, what the server sustains (or the Node client: see server QPS).
 */
async function searchPathGroup(f: Fixtures): Promise<SearchRow[]> {
  const up = await f.upstream();
  const withAutopath = autopathRegistered();
  // The client pod: a Pod in `default` whose address is the loopback address the client sends from.
  const clientIP = `127.0.0.${2 + Math.floor(Math.random() * 250)}`;
  const podDir = tempDir('pod');
  writeFileSync(join(podDir, 'client.json'), JSON.stringify(pod('default', 'bench-client', clientIP, 'Running')));
  const names = externalQueries(1000).map((l) => l.split(' ')[0]!);
  const servers: Array<{ port: number; child: Child } | undefined> = [];
  const rows: SearchRow[] = [];
  try {
    for (const c of searchConfigs) {
      if (c.autopath && !withAutopath) { servers.push(undefined); continue; }
      const p = await ports();
      const corefile = kubeadmCorefile(p, { source: `manifests ${f.cluster().dir} ${podDir}`, forwardTo: up.forwardTo, pods: 'verified', autopath: c.autopath });
      servers.push({ port: p.dns, child: (await startServer(corefile)).child });
    }
    let warmed = false;
    for (const mode of [{ inFlight: 1, rounds: 3 }, { inFlight: 32, rounds: 3 }]) {
      const modeRows = searchConfigs.map((c, i): SearchRow => servers[i]
        ? { name: c.name, inFlight: mode.inFlight, windows: [] }
        : { name: c.name, inFlight: mode.inFlight, windows: [], skipped: 'autopath is not registered in src/directives.ts (clusterdns -plugins does not list it)' });
      for (let round = 0; round < mode.rounds; round++) {
        for (let i = 0; i < searchConfigs.length; i++) {
          const srv = servers[i];
          if (!srv) continue;
          log(`bench: search path: ${searchConfigs[i]!.name}, ${mode.inFlight} in flight ...`);
          let upBefore = 0;
          let upAfter = 0;
          let cpuBefore = 0;
          let cpuAfter = 0;
          let t0 = 0;
          let t1 = 0;
          let core0 = { busy: 0, idle: 0 };
          let core1 = { busy: 0, idle: 0 };
          const result = await runSearchPath({
            port: srv.port, clientIP, namespace: 'default', names, seconds: SEARCH_SECONDS, warmupSeconds: 1, inFlight: mode.inFlight, warmAllNames: !warmed,
            onMeasureStart: async () => { upBefore = await upstreamCount(up.child); cpuBefore = cpuSeconds(srv.child.pid); core0 = coreSeconds(SERVER_CORE); t0 = performance.now(); },
            onMeasureEnd: async () => { cpuAfter = cpuSeconds(srv.child.pid); core1 = coreSeconds(SERVER_CORE); t1 = performance.now(); upAfter = await upstreamCount(up.child); },
          });
          modeRows[i]!.windows.push({ result, upstreamPerLookup: (upAfter - upBefore) / result.lookups, serverCpu: (cpuAfter - cpuBefore) / ((t1 - t0) / 1000),
            otherCpu: Math.max(0, core1.busy - core0.busy - (cpuAfter - cpuBefore)) / ((t1 - t0) / 1000), idle: (core1.idle - core0.idle) / ((t1 - t0) / 1000) });
        }
        warmed = true;
      }
      rows.push(...modeRows);
    }
    if (!withAutopath) log('bench: search path with autopath: skipped: autopath is not registered in src/directives.ts');
  } finally {
    for (const s of servers) await s?.child.stop('SIGKILL');
  }
  return rows;
}

// ---- CPU profile ----

async function profileScenario(s: Throughput, f: Fixtures): Promise<{ top: SelfTime[]; busyMs: number; file: string }> {
  const p = await ports();
  const profDir = mkdtempSync(join(tmpdir(), 'clusterdns-bench-prof-'));
  // Without lameduck, so SIGTERM ends the process (and writes the profile) at once.
  const corefile = (await s.corefile(p, f)).replace(/ \{\n\s+lameduck 5s\n\s+\}/, '');
  const { child } = await startServer(corefile, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  try {
    const file = queryFile(s.queries(f));
    dnsperf(p.dns, file, { seconds: 2, core: CLIENT_CORE });
    dnsperf(p.dns, file, { seconds: 5, core: CLIENT_CORE });
  } finally {
    await child.stop('SIGTERM', 15_000);
  }
  const prof = readdirSync(profDir).find((x) => x.endsWith('.cpuprofile'));
  if (!prof) throw new Error('no .cpuprofile written');
  const { top, busyMs } = topSelfTime(join(profDir, prof), 10);
  log(`bench: profile kept at ${join(profDir, prof)} (node test/bench/cpuprofile.ts FILE 30 for more)`);
  return { top, busyMs, file: join(profDir, prof) };
}

// ---- output ----

function fmt(n: number | undefined, d = 0): string { return n !== undefined && Number.isFinite(n) ? n.toFixed(d) : '-'; }

function throughputTable(rows: ThroughputRow[], floor: { qps: number; min: number; max: number; p50: number; p99: number; rss: number }, upstream: string | undefined): string {
  const prodEnv = Object.entries(deploymentEnv()).map(([k, v]) => `${k}=${/\s/.test(v) ? `"${v}"` : v}`).join(' ');
  let t = `Throughput: dnsperf -c 8 -q 200, ${RUNS} x ${SECONDS}s per scenario, each run paired with an echo-floor run right before it; ratio = median of the per-pair ratios (min-max). Latency: dnsperf -Q ${LATENCY_QPS} for ${LATENCY_SECONDS}s. clusterdns runs with the environment of deploy/kubernetes/deployment.yaml (${prodEnv}); the echo floor with Node's defaults.\n\n`;
  if (upstream) t += `Upstream for the kubeadm Corefile: test/bench/upstream.ts on core 1, ${upstream}; "to upstream" is the share of the scenario's queries the upstream saw.\n\n`;
  t += 'CPU us/query = the server\'s user+system CPU time per completed query (from /proc/PID/stat); less disturbed by other load than QPS. "x floor by CPU" = floor CPU us/query / scenario CPU us/query. Core 0 = how core 0 was used during the scenario\'s runs: by the server / by anything else (other processes on this shared machine, interrupts and softirq, including the kernel\'s own loopback work) / idle. A server share well below 100 with little idle means contention: the QPS ratio is then less trustworthy than the CPU ratio.\n\n';
  t += '| scenario | QPS median (min-max) | x echo floor (min-max) | target | CPU us/query | x floor by CPU | core 0: server / other / idle % | avg ms | p50 ms @10k | p99 ms @10k | RSS MiB | lost | response codes |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n';
  const floorCpu = rows.length ? median(rows.map((r) => r.floorCpuUs)) : NaN;
  const fc = (k: 'floorCpuPct' | 'floorOtherPct' | 'floorIdlePct') => fmt(rows.length ? median(rows.map((r) => r[k])) : NaN);
  t += `| echo floor (node dgram) | ${fmt(floor.qps)} (${fmt(floor.min)}-${fmt(floor.max)}) | 1.00 | | ${fmt(floorCpu, 1)} | 1.00 | ${fc('floorCpuPct')} / ${fc('floorOtherPct')} / ${fc('floorIdlePct')} | | ${fmt(floor.p50, 3)} | ${fmt(floor.p99, 3)} | ${fmt(floor.rss, 1)} | | |\n`;
  for (const r of rows) {
    const target = r.target === undefined ? '' : `>= ${r.target.toFixed(2)} ${r.ratio >= r.target ? 'met' : 'NOT met'}`;
    t += `| ${r.name} | ${fmt(r.qps)} (${fmt(r.qpsMin)}-${fmt(r.qpsMax)}) | ${fmt(r.ratio, 2)} (${fmt(r.ratioMin, 2)}-${fmt(r.ratioMax, 2)}) | ${target} | ${fmt(r.cpuUs, 1)} | ${fmt(r.floorCpuUs / r.cpuUs, 2)} | ${fmt(r.cpuPct)} / ${fmt(r.otherPct)} / ${fmt(r.idlePct)} | ${fmt(r.avgMs, 3)} | ${fmt(r.p50Ms, 3)} | ${fmt(r.p99Ms, 3)} | ${fmt(r.rssMiB, 1)} | ${r.lost} | ${r.rcodes} |\n`;
  }
  return t;
}

function memoryTables(rows: MemoryRow[]): string {
  const prodEnv = Object.entries(deploymentEnv()).map(([k, v]) => `${k}=${/\s/.test(v) ? `"${v}"` : v}`).join(' ');
  let t = `Memory and sync: clusterdns (with --inspect=127.0.0.1:0 for the forced GC, and the environment of deploy/kubernetes/deployment.yaml: ${prodEnv}) with \`ready\` and \`kubernetes cluster.local { kubeconfig FILE }\` (+ \`pods verified\` where said) against the test API server in the bench process (core 1, pages of 500). ready = spawn to /ready 200 (in brackets: spawn to the first list request, and to the last page requested). sync peak = VmHWM after the initial sync and ${IDLE_SECONDS} s idle; steady = VmRSS after that idle time (V8 seldom gives memory back on its own, so it is usually the peak); after GC = VmRSS right after a forced full GC. Relist: the watches are dropped and the history compacted, each kind resumes into 410 Gone and lists again; relist s = drop to last page requested (includes client-node's 1 s reconnect delay); relist peak = highest VmRSS/VmHWM until the watches re-open (+1 s). Targets for 10k services / 100k endpoints: steady <= 100 MiB, peak <= 1.2x steady, ready <= 3 s.\n\n`;
  t += '| cluster | ready s (first list, last page) | sync peak MiB | steady MiB (anon + file) | after GC MiB | V8 heap MiB | sync peak / steady | sync peak / after GC | relist peak MiB | relist peak / after GC | relist s |\n|---|---|---|---|---|---|---|---|---|---|---|\n';
  for (const r of rows) {
    t += `| ${r.name.replace(/^memory: /, '')} | ${fmt(r.readyMs / 1000, 2)} (${fmt(r.firstListMs / 1000, 2)}, ${fmt(r.lastPageMs / 1000, 2)}) | ${fmt(r.syncPeakMiB, 1)} | ${fmt(r.steadyMiB, 1)} (${fmt(r.steadyAnonMiB, 1)} + ${fmt(r.steadyFileMiB, 1)}) | ${fmt(r.gcRssMiB, 1)} | ${fmt(r.heapUsedMiB, 1)} | ${fmt(r.syncPeakMiB / r.steadyMiB, 2)} | ${fmt(r.syncPeakMiB / r.gcRssMiB, 2)} | ${fmt(r.relistPeakMiB, 1)} | ${fmt(r.relistPeakMiB / r.gcRssMiB, 2)} | ${fmt(r.relistMs / 1000, 2)} |\n`;
  }
  const per = perObject(rows);
  if (per.length > 0) {
    t += '\nBytes per object (differences between the runs above, after a forced GC):\n\n| object | V8 heap bytes | RSS bytes | from |\n|---|---|---|---|\n';
    for (const x of per) t += `| ${x.what} | ${fmt(x.heapBytes)} | ${fmt(x.rssBytes)} | ${x.from} |\n`;
  }
  return t;
}

function propagationTable(r: PropagationResult): string {
  return `Propagation (${memoryNames.main.replace(/^memory: /, '')}): ${r.changes} changes posted one at a time (alternately a ClusterIP Service's new cluster IP and a new ready endpoint of a headless Service), each timed from the API server's write to the first UDP answer with the new address (queries back to back).\n\n` +
    '| changes | p50 ms | p99 ms | max ms | timeouts (5 s) | queries per change (median) |\n|---|---|---|---|---|---|\n' +
    `| ${r.changes} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.maxMs, 2)} | ${r.timeouts} | ${fmt(r.queriesPerChange)} |\n`;
}

function searchTable(rows: SearchRow[], floorQps: number): string {
  let t = `Search path: 1,000 external names (answers cached after the first lookup) looked up as a pod's resolver does (ndots:5, search default.svc.cluster.local svc.cluster.local cluster.local; A and AAAA together per candidate) by a Node client on core 1; the two configurations' ${SEARCH_SECONDS}s windows alternate. Lookups/s: median of the windows (min-max). Server QPS = lookups/s x queries per lookup; core 0 as in the throughput table; server CPU us per lookup = the server's user+system time over the window / lookups.\n\n`;
  t += '| configuration | lookups in flight | lookups/s (min-max) | DNS queries per lookup | upstream queries per lookup | server QPS (x echo floor) | core 0: server / other / idle % | server CPU us per lookup | lookup p50 ms | lookup p99 ms | failed | timeouts |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n';
  for (const r of rows) {
    if (r.skipped || r.windows.length === 0) { t += `| ${r.name} | ${r.inFlight} | skipped: ${r.skipped ?? 'no data'} | | | | | | | | | |\n`; continue; }
    const w = r.windows;
    const lps = w.map((x) => x.result.lookupsPerSec);
    const mid = median(lps);
    const pick = w.find((x) => x.result.lookupsPerSec === mid)!;
    const qpl = pick.result.queriesPerLookup;
    t += `| ${r.name} | ${r.inFlight} | ${fmt(mid)} (${fmt(Math.min(...lps))}-${fmt(Math.max(...lps))}) | ${fmt(qpl, 2)} | ${fmt(pick.upstreamPerLookup, 2)} | ${fmt(mid * qpl)} (${fmt((mid * qpl) / floorQps, 2)}) | ${fmt(100 * pick.serverCpu)} / ${fmt(100 * pick.otherCpu)} / ${fmt(100 * pick.idle)} | ${fmt((pick.serverCpu * 1e6) / mid)} | ${fmt(pick.result.p50Ms, 3)} | ${fmt(pick.result.p99Ms, 3)} | ${w.reduce((a, x) => a + x.result.failed, 0)} | ${w.reduce((a, x) => a + x.result.timeouts, 0)} |\n`;
  }
  return t;
}

function profileTable(name: string, p: { top: SelfTime[]; busyMs: number; file: string }): string {
  let t = `CPU profile of "${name}" (node --cpu-prof, 2 s warm-up + 5 s of dnsperf; lameduck removed so the profile is written at exit): top 10 self time, share of non-idle time (${fmt(p.busyMs)} ms busy).\n\n`;
  t += '| self ms | % busy | function | where |\n|---|---|---|---|\n';
  for (const x of p.top) t += `| ${fmt(x.ms)} | ${fmt(x.pct, 1)} | ${x.fn.replaceAll('|', '\\|')} | ${x.where} |\n`;
  return t;
}

function machine(): string {
  const h = spawnSync('dnsperf', ['-h'], { encoding: 'utf8' });
  const v = /Version (\S+)/.exec(`${h.stdout ?? ''}${h.stderr ?? ''}`)?.[1] ?? '?';
  return `Node ${process.version}, dnsperf ${v}, ${cpus().length} x ${cpus()[0]?.model.trim() ?? '?'}, Linux ${release()}, load average at start ${loadavg().map((x) => x.toFixed(2)).join(' ')}`;
}

const BEGIN = '<!-- BEGIN GENERATED: npm run bench -->';
const END = '<!-- END GENERATED -->';

/** The generated section's text now in docs/performance.md (between the markers), or '' if none. */
function generatedBody(): string {
  const file = join(repoRoot, 'docs/performance.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  return a >= 0 && b > a ? text.slice(a + BEGIN.length, b).replace(/^\n/, '').replace(/\n$/, '') : '';
}

/**
 * A filtered run written with BENCH_WRITE_DOCS=1: replace only the `### ` sections it measured (each
 * marked with `note`: when and how it was measured), keep the rest of the generated text as it is.
 */
function mergeSections(old: string, fresh: string[], note: string): string {
  const parts = old.split(/\n(?=### )/);
  const title = (s: string) => s.slice(0, s.indexOf('\n'));
  for (const s of fresh) {
    const nl = s.indexOf('\n');
    const marked = `${s.slice(0, nl)}\n\n${note}\n${s.slice(nl)}`;
    const i = parts.findIndex((p, k) => k > 0 && title(p) === title(s));
    if (i > 0) parts[i] = marked.endsWith('\n') ? marked : `${marked}\n`;
    else parts.push(marked);
  }
  return parts.join('\n').replace(/\n+$/, '');
}

function writeDocs(body: string): string {
  const file = join(repoRoot, 'docs/performance.md');
  mkdirSync(join(repoRoot, 'docs'), { recursive: true });
  const text = existsSync(file) ? readFileSync(file, 'utf8') : `# Performance\n\n${BEGIN}\n${END}\n`;
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  const section = `${BEGIN}\n${body}\n${END}`;
  writeFileSync(file, a >= 0 && b > a ? text.slice(0, a) + section + text.slice(b + END.length) : `${text}\n${section}\n`);
  return file;
}

// ---- main ----

async function main(): Promise<void> {
  if (!haveTool('dnsperf')) {
    log('dnsperf is not installed: run `bash scripts/install-tools.sh` (Debian: apt-get install -y dnsperf)');
    process.exit(1);
  }
  if (!pinSelf(CLIENT_CORE)) log(`bench: could not pin this process to core ${CLIENT_CORE} (taskset missing?): figures will be worse`);
  const started = Date.now();
  const header = machine();
  log(`bench: ${header}`);
  const f = fixtures();
  const sections: string[] = [];
  const failures: string[] = [];
  /** Run one scenario; a failure is reported and the others still run. */
  const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      const msg = `${what} failed: ${(e as Error).message.split('\n')[0]}`;
      log(`bench: ${msg}`);
      failures.push(msg);
      process.exitCode = 1;
      return undefined;
    }
  };
  const out = (title: string, table: string) => {
    process.stdout.write(`\n## ${title}\n\n${table}`);
    sections.push(`### ${title}\n\n${table}`);
  };

  // Throughput (and the floor every ratio uses, also for the search path's server QPS).
  const tput = throughputScenarios.filter((s) => selected(s.name));
  const wantSearch = selected('search path');
  // The profile runs in a full run, or when a filter names it (`npm run bench -- profile`).
  const wantProfile = PROFILE !== 'off' && (only.length === 0 || only.some((o) => o.includes('profile')));
  let floorQps = NaN;
  let echo: Child | undefined;
  let sweepSvg: string | undefined;
  try {
    if (tput.length > 0 || wantSearch) {
      const floorPort = await freePort();
      echo = spawnNode(join(import.meta.dirname, 'echo.ts'), [String(floorPort)], { core: SERVER_CORE });
      await echo.waitFor(/listening/);
      const floorFile = queryFile(whoamiQueries);
      dnsperf(floorPort, floorFile, { seconds: 2, core: CLIENT_CORE });
      const rows: ThroughputRow[] = [];
      const floorRuns: number[] = [];
      for (const s of tput) {
        log(`bench: ${s.name} ...`);
        const r = await attempt(s.name, () => measureThroughput(s, f, { port: floorPort, pid: echo!.pid, file: floorFile }));
        if (!r) continue;
        rows.push(r);
        floorRuns.push(...r.floorRuns);
      }
      if (floorRuns.length === 0) floorRuns.push(dnsperf(floorPort, floorFile, { seconds: SECONDS, core: CLIENT_CORE }).result.qps);
      floorQps = median(floorRuns);
      if (rows.length > 0) {
        const lat = latency(floorPort, floorFile, LATENCY_QPS, LATENCY_SECONDS, CLIENT_CORE);
        out('Throughput (ratio to the echo floor)', throughputTable(rows, {
          qps: floorQps, min: Math.min(...floorRuns), max: Math.max(...floorRuns), p50: lat.p50Ms, p99: lat.p99Ms, rss: memStatus(echo.pid).rssMiB,
        }, f.upstreamNote()));
      }
    }

    // Memory, sync, relist; propagation on the main run.
    const wantPropagation = selected('propagation');
    const specs = memorySpecs().filter((s) => selected(s.name) || (wantPropagation && s.name === memoryNames.main));
    if (specs.length > 0) {
      const rows: MemoryRow[] = [];
      let prop: PropagationResult | undefined;
      for (const spec of specs) {
        log(`bench: ${spec.name} ...`);
        const main = spec.name === memoryNames.main && wantPropagation;
        const r = await attempt(spec.name, () => memoryRun(spec, { core: SERVER_CORE, idleSeconds: IDLE_SECONDS, ...(main ? { propagation: CHANGES } : {}), log }));
        if (!r) continue;
        rows.push(r.row);
        if (r.propagation) prop = r.propagation;
      }
      if (rows.length > 0) out('Memory and sync', memoryTables(rows));
      if (prop) out('Propagation', propagationTable(prop));
    }

    // Search path with and without autopath.
    if (wantSearch) {
      const rows = await attempt('search path', () => searchPathGroup(f));
      if (rows) out('Search path (autopath)', searchTable(rows, floorQps));
    }

    if (wantProfile) {
      const s = throughputScenarios.find((x) => x.name === PROFILE);
      if (s) {
        log(`bench: CPU profile of ${s.name} ...`);
        const prof = await attempt('CPU profile', () => profileScenario(s, f));
        if (prof) out('CPU profile', profileTable(s.name, prof));
      } else {
        log(`bench: BENCH_PROFILE="${PROFILE}" names no throughput scenario`);
      }
    }

    // Latency vs load: fixed offered rates against the echo floor and the kubeadm Corefile (sweep.ts).
    if (selected('sweep')) {
      log('bench: sweep (latency vs load) ...');
      const { benchSweep, formatSweep, renderSweepSvg } = await import('./sweep.ts');
      const r = await attempt('sweep', () => benchSweep({ run: { fixtures, ports, startServer, throughputScenarios }, fixtures: f, log }));
      if (r) {
        out('Latency vs load (sweep)', formatSweep(r));
        sweepSvg = renderSweepSvg(r);
      }
    }

    // Overload: 2x the sustainable rate for 10 s, drops counted, recovery timed (burst.ts).
    if (selected('burst')) {
      log('bench: burst (2x the sustainable rate) ...');
      const { benchBurst, formatBurst } = await import('./burst.ts');
      const r = await attempt('burst', () => benchBurst({ run: { fixtures, ports, startServer, throughputScenarios }, fixtures: f, log }));
      if (r) out('Burst (2x the sustainable rate)', formatBurst(r));
    }

    // Latency at a fixed rate: C echo, Node echo and the kubeadm Corefile, alternating (latency.ts).
    if (selected('latency')) {
      log('bench: latency at a fixed rate ...');
      const { benchLatency, formatLatency } = await import('./latency.ts');
      const r = await attempt('latency', () => benchLatency({ run: { fixtures, startServer, throughputScenarios }, fixtures: f, log }));
      if (r) out('Latency at a fixed rate (C echo, Node echo, clusterdns)', formatLatency(r));
    }
  } finally {
    await echo?.stop('SIGTERM');
    await f.close();
    removeTempDirs();
  }

  // -workers 1 vs 2 on a kubernetes zone: QPS per server CPU-second and RSS (test/bench/workers.ts).
  if (selected('workers')) {
    log('bench: workers ...');
    const { benchWorkers, formatWorkers } = await import('./workers.ts');
    out('Workers (-workers 1 and 2)', formatWorkers(await benchWorkers()));
  }

  // The query path without the socket (test/bench/pipeline.ts), in its own process on core 1.
  if (selected('pipeline') || selected('codec')) {
    log('bench: pipeline micro-benchmark ...');
    const r = spawnSync('taskset', ['-c', '1', process.execPath, join(import.meta.dirname, 'pipeline.ts'), '--json'], { encoding: 'utf8' });
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULTS '));
    if (r.status !== 0 || !line) {
      process.stdout.write(`\n(pipeline micro-benchmark failed: ${r.stderr.slice(-500)})\n`);
    } else {
      const rows = JSON.parse(line.slice(8)) as Array<{ name: string; nsPerQuery: number }>;
      let t = 'A runtime with the kubeadm Corefile (1,000-Service zone from manifests, a loopback upstream for external names, answers cached after one pass) in one process; each query bytes go through the listener\'s `handle()` (parse, route, plugin chain, metrics, prebuilt-wire copy) to a send that keeps the bytes: what clusterdns adds per query to the echo floor\'s socket I/O. CPU time per query, best of 7 rounds of 200k queries.\n\n| path | ns/query |\n|---|---|\n';
      for (const m of rows) t += `| ${m.name} | ${fmt(m.nsPerQuery)} |\n`;
      out('Query path without sockets (process CPU time, core 1)', t);
    }
  }

  if (selected('codec')) {
    try {
      log('bench: codec micro-benchmarks ...');
      const { benchCodec } = await import('./codec.ts');
      const micro = await benchCodec();
      let t = '| operation | ns/op | ops/s |\n|---|---|---|\n';
      for (const m of micro) t += `| ${m.name} | ${fmt(m.nsPerOp)} | ${fmt(m.opsPerSec)} |\n`;
      out('Codec micro-benchmarks (process CPU time, core 1)', t);
    } catch (e) {
      process.stdout.write(`\n(codec micro-benchmarks unavailable: ${(e as Error).message})\n`);
    }
  }

  if (selected('micro') || selected('codec')) {
    try {
      log('bench: hot-function micro-benchmarks ...');
      const { benchHot } = await import('./hot.ts');
      let t = 'Name lookup, metrics update, loadbalance and the cache plugin, each alone in a loop (test/bench/hot.ts, test/bench/cache.ts); best of three rounds.\n\n| operation | ns/op | ops/s |\n|---|---|---|\n';
      for (const m of await benchHot()) t += `| ${m.name} | ${fmt(m.nsPerOp)} | ${fmt(m.opsPerSec)} |\n`;
      out('Hot-function micro-benchmarks (process CPU time, core 1)', t);
    } catch (e) {
      process.stdout.write(`\n(hot-function micro-benchmarks unavailable: ${(e as Error).message})\n`);
    }
  }

  if (failures.length > 0) out('Failures', failures.map((x) => `* ${x}\n`).join(''));
  const took = (Date.now() - started) / 1000;
  const footer = `${header}; load average at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${took.toFixed(0)} s in all.`;
  process.stdout.write(`\n${footer}\n`);
  const write = process.env.BENCH_WRITE_DOCS === '1' || (process.env.BENCH_WRITE_DOCS !== '0' && only.length === 0);
  if (write) {
    const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const old = only.length ? generatedBody() : '';
    const body = old ? mergeSections(old, sections, `Measured separately from the rest of this section by \`npm run bench -- ${only.join(' ')}\` on ${date}: ${footer}`) : `Generated by \`npm run bench\` on ${date}${only.length ? ` (filtered: ${only.join(' ')})` : ''}. BENCH_RUNS=${RUNS} BENCH_SECONDS=${SECONDS} BENCH_IDLE_SECONDS=${IDLE_SECONDS} BENCH_CHANGES=${CHANGES} BENCH_SEARCH_SECONDS=${SEARCH_SECONDS}.\n${footer}\n\n${sections.join('\n')}`;
    log(`bench: wrote ${writeDocs(body)}`);
    if (sweepSvg) {
      const svg = join(repoRoot, 'docs/performance-latency.svg');
      writeFileSync(svg, sweepSvg);
      log(`bench: wrote ${svg}`);
    }
  } else {
    log('bench: filtered run: docs/performance.md (and the sweep\'s SVG) not updated (BENCH_WRITE_DOCS=1 to force)');
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
