// Latency at a fixed rate (issue 6: "p99 <= 0.15 ms at 10k QPS"): what the machine and the measurement
// cost, what Node costs, what clusterdns adds. Three servers on core 0, dnsperf -Q RATE -v on core 1:
//
//   * C echo (test/bench/echo.c, compiled here with `gcc -O2`; skipped with a message without gcc):
//     blocking recvfrom/sendto, no runtime. Its tail is the machine's (vCPU wake-up, loopback softirq,
//     the scheduler) plus dnsperf's own timing.
//   * Node echo (test/bench/echo.ts): the same on Node's event loop (libuv epoll, dgram, GC).
//   * clusterdns with the kubeadm Corefile on the 1,000-Service cluster-names mix (run.ts's scenario
//     "cluster names: kubeadm Corefile").
//
// All are started once; in every round each is measured in turn (alternating, so a load change on the
// shared machine hits all of them), and the servers not being measured are stopped (SIGSTOP) so that
// their timers do not run on core 0 during another's run. Percentiles per run from dnsperf's per-query
// lines; the table gives the median over the runs and the min-max. The Node servers get the
// gc-count.ts preload, which counts V8's collections during each run.
//
// `npm run bench -- latency` runs it from run.ts. Alone: `npm run -s build && node test/bench/latency.ts`.
// BENCH_LATENCY_RATES (comma-separated QPS, 10000), BENCH_LATENCY_RUNS (rounds, 5),
// BENCH_LATENCY_SECONDS (per dnsperf run, 3), BENCH_LATENCY_SERVERS (';'-separated, default
// `c;node;clusterdns`; also `c-epoll`, `c-spin` (echo.c's other modes) and `clusterdns FLAG...` for
// clusterdns with Node flags, e.g. `clusterdns --max-semi-space-size=1`, and `-PLUGIN` to drop a plugin from the Corefile, e.g.
// `clusterdns -health -prometheus`); BENCH_LATENCY_RAW=DIR keeps each run's latencies in completion order, one per line.
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dnsperf, haveTool, median, queryFile } from './dnsperf.ts';
import { coreSeconds, cpuSeconds, pinSelf, removeTempDirs, spawnNode, tempDir, type Child } from './proc.ts';
import type { Fixtures, Ports } from './run.ts';

export type RunApi = Pick<typeof import('./run.ts'), 'fixtures' | 'startServer' | 'throughputScenarios'>;

const SERVER_CORE = 0;
const CLIENT_CORE = 1;
const SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 3);
const RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 5);
const RATES = (process.env.BENCH_LATENCY_RATES ?? '10000').split(',').map(Number).filter((x) => Number.isFinite(x) && x > 0);
const SERVERS = (process.env.BENCH_LATENCY_SERVERS ?? 'c;node;clusterdns').split(';').map((s) => s.trim()).filter(Boolean);
/** dnsperf's client settings, as latency() in dnsperf.ts and the sweep: 4 sockets, up to 1000 in flight. */
const CLIENTS = 4;
const OUTSTANDING = 1000;
const SCENARIO = 'cluster names: kubeadm Corefile';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface GcCount { scavenges: number; majors: number; pauseMs: number; maxPauseMs: number }

export interface LatencyRun {
  server: string;
  rate: number;
  round: number;
  /** 1-minute load average when the run started. */
  load: number;
  p50Ms: number; p90Ms: number; p99Ms: number; p999Ms: number; maxMs: number;
  sent: number; lost: number;
  /** Queries slower than the issue's 0.15 ms (p99 <= 0.15 ms allows 1% of them). */
  slow: number;
  /** Stalls: runs of queries over 0.3 ms in completion order (gaps of up to 10 faster ones allowed), by
   * their slowest query: 0.3-1 ms, 1-2 ms, 2 ms and more. A stall of the server, the host or the client
   * delays every query that arrives meanwhile, so a few stalls decide the p99 at a fixed rate. */
  stalls: [number, number, number];
  /** The server's user+system CPU over the run / wall time, %; core 0's other work and idle time, %. */
  serverCpuPct: number; otherPct: number; idlePct: number;
  /** V8 collections during the run (Node servers, through the gc-count.ts preload). */
  gc?: GcCount;
}

export interface LatencyResult {
  date: string; node: string; seconds: number; runs: number; rates: number[];
  loadStart: number[]; loadEnd: number[];
  servers: Array<{ name: string; what: string }>;
  skipped: string[];
  results: LatencyRun[];
}

/** Queries over 0.15 ms and stalls by length (see LatencyRun), from latencies in completion order. */
export function stallsOf(inOrder: number[]): { slow: number; stalls: [number, number, number] } {
  const stalls: [number, number, number] = [0, 0, 0];
  let slow = 0;
  let worst = 0;
  let last = -Infinity;
  const close = () => { if (worst > 0) stalls[worst < 1 ? 0 : worst < 2 ? 1 : 2]++; worst = 0; };
  inOrder.forEach((ms, i) => {
    if (ms > 0.15) slow++;
    if (ms <= 0.3) return;
    if (i - last > 10) close();
    worst = Math.max(worst, ms);
    last = i;
  });
  close();
  return { slow, stalls };
}

/** Percentiles of sorted samples (as latency() in dnsperf.ts: the floor(p*n)-th). */
function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;
}

const taken = new Set<number>();

/** A port in 20000-31999 free on 127.0.0.1 for both UDP and TCP right now (the bench's own range). */
export async function pickPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (taken.has(port)) continue;
    const udp = dgram.createSocket('udp4');
    const okUdp = await new Promise<boolean>((resolve) => { udp.once('error', () => resolve(false)); udp.bind(port, '127.0.0.1', () => resolve(true)); });
    const tcp = net.createServer();
    const okTcp = okUdp && await new Promise<boolean>((resolve) => { tcp.once('error', () => resolve(false)); tcp.listen(port, '127.0.0.1', () => resolve(true)); });
    await new Promise<void>((resolve) => { try { udp.close(() => resolve()); } catch { resolve(); } });
    if (okTcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
    if (okUdp && okTcp) { taken.add(port); return port; }
  }
  throw new Error('no free port in 20000-31999 on 127.0.0.1');
}

const gcPreload = ['--import', join(import.meta.dirname, 'gc-count.ts')];

/** Totals from the gc-count.ts preload (SIGUSR2); undefined if the process does not answer. */
async function gcTotals(child: Child): Promise<GcCount | undefined> {
  const before = child.output().length;
  child.proc.kill('SIGUSR2');
  for (let i = 0; i < 100; i++) {
    const m = /gc-count (\d+) (\d+) ([\d.]+) ([\d.]+)\n/.exec(child.output().slice(before));
    if (m) return { scavenges: Number(m[1]), majors: Number(m[2]), pauseMs: Number(m[3]), maxPauseMs: Number(m[4]) };
    await sleep(5);
  }
  return undefined;
}

/** gcc -O2 test/bench/echo.c into a temp dir; undefined (and why) when gcc is missing or fails. */
function compileEcho(): { bin?: string; why?: string } {
  if (!haveTool('gcc')) return { why: 'gcc is not installed: the C echo floor is skipped' };
  const bin = join(tempDir('echo-c'), 'echo');
  const r = spawnSync('gcc', ['-O2', '-o', bin, join(import.meta.dirname, 'echo.c')], { encoding: 'utf8' });
  if (r.status !== 0) return { why: `gcc failed, the C echo floor is skipped: ${(r.stderr ?? '').split('\n')[0]}` };
  return { bin };
}

/** A native program pinned to `core`, with the Child interface of proc.ts (output, waitFor, stop). */
function spawnPinned(cmd: string, args: string[], core: number): Child {
  const argv = haveTool('taskset') ? ['taskset', '-c', String(core), cmd, ...args] : [cmd, ...args];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.once('exit', () => { exited = true; });
  return {
    proc, pid: proc.pid!, startedAt: performance.now(), output: () => out,
    async waitFor(re, timeoutMs = 10_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const m = re.exec(out);
        if (m) return m;
        if (exited || performance.now() > deadline) throw new Error(`${cmd}: no ${re}: ${out.slice(-500)}`);
        await sleep(10);
      }
    },
    async stop(signal = 'SIGTERM') {
      if (exited) return;
      const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill(signal);
      await gone;
    },
  };
}

/** The Corefile without the named plugins' lines (a plugin's block included; health's lameduck block goes with it). */
export function withoutPlugins(corefile: string, plugins: string[]): string {
  const out: string[] = [];
  let skipping = 0;
  for (const line of corefile.split('\n')) {
    if (skipping > 0) { skipping += (line.match(/\{/g)?.length ?? 0) - (line.match(/\}/g)?.length ?? 0); continue; }
    const word = /^\s*(\S+)/.exec(line)?.[1];
    if (word && plugins.includes(word)) { skipping = (line.match(/\{/g)?.length ?? 0) - (line.match(/\}/g)?.length ?? 0); continue; }
    out.push(line);
  }
  return out.join('\n');
}

interface Running { name: string; what: string; port: number; child: Child; file: string; countGc: boolean }

const cModes: Record<string, { mode: string; what: string }> = {
  c: { mode: 'block', what: 'C echo (test/bench/echo.c, blocking recvfrom/sendto)' },
  'c-epoll': { mode: 'epoll', what: 'C echo, epoll mode (non-blocking socket, epoll_wait, recvfrom until EAGAIN: libuv\'s shape)' },
  'c-spin': { mode: 'spin', what: 'C echo, busy-poll mode (non-blocking recvfrom in a loop: core 0 never idles during the run)' },
};

/** One dnsperf -Q rate -v run against `s`, with the others stopped. */
async function measure(s: Running, rate: number, round: number): Promise<LatencyRun> {
  const load = loadavg()[0]!;
  const gc0 = s.countGc ? await gcTotals(s.child) : undefined;
  const c0 = cpuSeconds(s.child.pid);
  const core0 = coreSeconds(SERVER_CORE);
  const t0 = performance.now();
  const { stdout, result } = dnsperf(s.port, s.file, { seconds: SECONDS, clients: CLIENTS, outstanding: OUTSTANDING, core: CLIENT_CORE, verbose: true, qps: rate });
  const cpu = cpuSeconds(s.child.pid) - c0;
  const wall = (performance.now() - t0) / 1000;
  const core1 = coreSeconds(SERVER_CORE);
  const gc1 = gc0 ? await gcTotals(s.child) : undefined;
  const samples: number[] = [];
  // Verbose lines look like: "> NOERROR name A 0.000123".
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('> ')) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) samples.push(v * 1000);
  }
  if (process.env.BENCH_LATENCY_RAW) {
    // Diagnostics: the samples in completion order (about send order at a fixed rate), one per line.
    mkdirSync(process.env.BENCH_LATENCY_RAW, { recursive: true });
    writeFileSync(join(process.env.BENCH_LATENCY_RAW, `${s.name.replace(/[^\w-]+/g, '_')}-${rate}-${round}.txt`), samples.map((x) => x.toFixed(4)).join('\n'));
  }
  const { slow, stalls } = stallsOf(samples);
  samples.sort((a, b) => a - b);
  return {
    server: s.name, rate, round, load, slow, stalls,
    p50Ms: pct(samples, 0.5), p90Ms: pct(samples, 0.9), p99Ms: pct(samples, 0.99), p999Ms: pct(samples, 0.999), maxMs: samples.length ? samples[samples.length - 1]! : NaN,
    sent: result.sent, lost: result.lost,
    serverCpuPct: (100 * cpu) / wall, otherPct: (100 * Math.max(0, core1.busy - core0.busy - cpu)) / wall, idlePct: (100 * (core1.idle - core0.idle)) / wall,
    ...(gc0 && gc1 ? { gc: { scavenges: gc1.scavenges - gc0.scavenges, majors: gc1.majors - gc0.majors, pauseMs: gc1.pauseMs - gc0.pauseMs, maxPauseMs: gc1.maxPauseMs } } : {}),
  };
}

export async function benchLatency(o: { run?: RunApi; fixtures?: Fixtures; log?: (line: string) => void } = {}): Promise<LatencyResult> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { fixtures, startServer, throughputScenarios } = o.run ?? (await import('./run.ts'));
  const own = o.fixtures === undefined;
  const f = o.fixtures ?? fixtures();
  const scenario = throughputScenarios.find((s) => s.name === SCENARIO);
  if (!scenario) throw new Error(`no throughput scenario named "${SCENARIO}" in run.ts`);
  const loadStart = loadavg();
  const skipped: string[] = [];
  const servers: Running[] = [];
  // The kubeadm Corefile's forward target: a loopback upstream of our own on a port in 20000-31999
  // (`forward . 127.0.0.1:PORT`; the cluster-names mix never reaches it).
  let upstream: Child | undefined;
  let up: { forwardTo: string; child: Child; note: string } | undefined;
  const ownUpstream = async () => {
    if (up) return up;
    const port = await pickPort();
    upstream = spawnNode(join(import.meta.dirname, 'upstream.ts'), ['127.0.0.1', String(port)], { core: CLIENT_CORE });
    await upstream.waitFor(/listening/, 10_000);
    return (up = { forwardTo: `127.0.0.1:${port}`, child: upstream, note: `forward . 127.0.0.1:${port}` });
  };
  try {
    // The cluster-names mix for every server: the echo servers answer any query alike.
    const file = queryFile(scenario.queries(f));
    let echoBin: { bin?: string; why?: string } | undefined;
    for (const spec of SERVERS) {
      const [kind, ...flags] = spec.split(/\s+/);
      if (kind! in cModes) {
        echoBin ??= compileEcho();
        if (!echoBin.bin) { if (!skipped.includes(echoBin.why!)) skipped.push(echoBin.why!); log(`bench: latency: ${echoBin.why}`); continue; }
        const port = await pickPort();
        const child = spawnPinned(echoBin.bin, [String(port), cModes[kind!]!.mode], SERVER_CORE);
        await child.waitFor(/listening/);
        servers.push({ name: spec === 'c' ? 'C echo' : `C echo (${cModes[kind!]!.mode})`, what: cModes[kind!]!.what, port, child, file, countGc: false });
      } else if (kind === 'node') {
        const port = await pickPort();
        const child = spawnNode(join(import.meta.dirname, 'echo.ts'), [String(port)], { core: SERVER_CORE, nodeArgs: [...gcPreload, ...flags] });
        await child.waitFor(/listening/);
        servers.push({ name: `Node echo${flags.length ? ` ${flags.join(' ')}` : ''}`, what: 'Node echo (test/bench/echo.ts, node:dgram)', port, child, file, countGc: true });
      } else if (kind === 'clusterdns') {
        const p: Ports = { dns: await pickPort(), health: await pickPort(), ready: await pickPort(), metrics: await pickPort() };
        // `-PLUGIN` drops that plugin's lines from the Corefile; anything else is a Node flag.
        const drop = flags.filter((x) => /^-[a-z]/.test(x)).map((x) => x.slice(1));
        const nodeFlags = flags.filter((x) => !/^-[a-z]/.test(x));
        const corefile = withoutPlugins(await scenario.corefile(p, { ...f, upstream: ownUpstream }), drop);
        const child = (await startServer(corefile, [...gcPreload, ...nodeFlags])).child;
        const what = [drop.length ? `without ${drop.join(', ')}` : '', nodeFlags.length ? `node ${nodeFlags.join(' ')}` : ''].filter(Boolean).join(', ');
        servers.push({ name: `clusterdns${flags.length ? ` ${flags.join(' ')}` : ''}`, what: `clusterdns, kubeadm Corefile, cluster-names mix${what ? `, ${what}` : ''}`, port: p.dns, child, file, countGc: true });
      } else {
        throw new Error(`BENCH_LATENCY_SERVERS: unknown server "${spec}" (c, c-epoll, c-spin, node [FLAGS], clusterdns [FLAGS])`);
      }
    }
    // Warm up the JIT and caches (unpaced; clusterdns longer).
    for (const s of servers) dnsperf(s.port, s.file, { seconds: s.name.startsWith('clusterdns') ? 2 : 0.5, core: CLIENT_CORE, clients: CLIENTS, outstanding: 200 });
    const only = (s: Running) => {
      for (const x of servers) x.child.proc.kill(x === s ? 'SIGCONT' : 'SIGSTOP');
    };
    const results: LatencyRun[] = [];
    for (let round = 0; round < RUNS; round++) {
      for (const rate of RATES) {
        log(`bench: latency: round ${round + 1}/${RUNS}, ${rate} QPS (load ${loadavg()[0]!.toFixed(2)}) ...`);
        // The order rotates with the round, so no server is always the first after a pause.
        for (let k = 0; k < servers.length; k++) {
          const s = servers[(k + round) % servers.length]!;
          only(s);
          await sleep(100);
          results.push(await measure(s, rate, round));
        }
      }
    }
    return {
      date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), node: process.version, seconds: SECONDS, runs: RUNS, rates: RATES,
      loadStart, loadEnd: loadavg(), servers: servers.map((s) => ({ name: s.name, what: s.what })), skipped, results,
    };
  } finally {
    for (const s of servers) s.child.proc.kill('SIGCONT');
    // SIGKILL: the kubeadm Corefile's lameduck would hold the stop for 5 s.
    for (const s of servers) await s.child.stop(s.name.startsWith('clusterdns') ? 'SIGKILL' : 'SIGTERM');
    await upstream?.stop('SIGTERM');
    if (own) {
      await f.close();
      removeTempDirs();
    }
  }
}

// ---- output ----

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
const spread = (xs: number[], d: number) => `${fmt(median(xs), d)} (${fmt(Math.min(...xs), d)}-${fmt(Math.max(...xs), d)})`;

export function formatLatency(r: LatencyResult): string {
  const loads = [...new Set(r.results.map((x) => x.round))].map((round) => median(r.results.filter((x) => x.round === round).map((x) => x.load)).toFixed(2));
  let t = `Latency at a fixed rate: \`taskset -c ${CLIENT_CORE} dnsperf -s 127.0.0.1 -p PORT -d FILE -l ${r.seconds} -c ${CLIENTS} -q ${OUTSTANDING} -t 2 -Q RATE -v\` against each server on core ${SERVER_CORE}, all sent the cluster-names query file; ${r.runs} rounds, in each one run per server and rate (order rotating), the servers not being measured stopped (SIGSTOP). Percentiles of the completed queries' latencies per run (dnsperf's per-query lines); each cell is the median over the runs (min-max). Over 0.15 ms = the completed queries slower than the issue's p99 target (1% of a run may be); stalls = runs of queries over 0.3 ms in completion order (up to 10 faster ones between), by their slowest query, median per run: one stall of the server, the host or dnsperf delays every query that arrives during it, so these, not the typical query, decide the p99. Server CPU = its user+system time / wall time; core 0 other = core 0 busy with anything but the server (other processes, interrupts, softirq), %. Load average (1 min) ${r.loadStart.map((x) => x.toFixed(2)).join(' ')} at the start, per round ${loads.join(', ')}, ${r.loadEnd.map((x) => x.toFixed(2)).join(' ')} at the end.\n\n`;
  for (const s of r.servers) t += `* **${s.name}**: ${s.what}\n`;
  for (const s of r.skipped) t += `* ${s}\n`;
  const anyGc = r.results.some((x) => x.gc);
  t += `\n| server | QPS | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | p99 ms per run | over 0.15 ms per run | stalls per run: 0.3-1 / 1-2 / 2+ ms | server CPU % | core 0 other % | lost |${anyGc ? ' GCs per run: scavenges / major, pause ms (max) |' : ''}\n`;
  t += `|---|---|---|---|---|---|---|---|---|---|---|---|---|${anyGc ? '---|' : ''}\n`;
  for (const rate of r.rates) {
    for (const s of r.servers) {
      const xs = r.results.filter((x) => x.server === s.name && x.rate === rate);
      if (xs.length === 0) continue;
      const gc = xs.filter((x) => x.gc).map((x) => x.gc!);
      const gcCell = gc.length ? `${fmt(median(gc.map((g) => g.scavenges)))} / ${fmt(median(gc.map((g) => g.majors)))}, ${fmt(median(gc.map((g) => g.pauseMs)), 1)} (${fmt(Math.max(...gc.map((g) => g.maxPauseMs)), 2)})` : '';
      t += `| ${s.name} | ${rate} | ${spread(xs.map((x) => x.p50Ms), 3)} | ${spread(xs.map((x) => x.p90Ms), 3)} | ${spread(xs.map((x) => x.p99Ms), 3)} | ${spread(xs.map((x) => x.p999Ms), 2)} | ${spread(xs.map((x) => x.maxMs), 1)} | ${xs.map((x) => fmt(x.p99Ms, 2)).join(' ')} | ${spread(xs.map((x) => x.slow), 0)} | ${[0, 1, 2].map((k) => fmt(median(xs.map((x) => x.stalls[k])))).join(' / ')} | ${fmt(median(xs.map((x) => x.serverCpuPct)))} | ${fmt(median(xs.map((x) => x.otherPct)))} | ${xs.reduce((a, x) => a + x.lost, 0)} |${anyGc ? ` ${gcCell} |` : ''}\n`;
    }
  }
  return t;
}

async function main(): Promise<void> {
  if (!haveTool('dnsperf')) {
    process.stderr.write('dnsperf is not installed: run `bash scripts/install-tools.sh`\n');
    process.exit(1);
  }
  pinSelf(CLIENT_CORE);
  const r = await benchLatency();
  process.stdout.write(formatLatency(r));
  if (process.env.BENCH_LATENCY_JSON) {
    writeFileSync(process.env.BENCH_LATENCY_JSON, JSON.stringify(r, null, 1));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
