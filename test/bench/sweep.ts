// Latency vs load: dnsperf at fixed offered rates (-Q) against the Node UDP echo floor (echo.ts) and
// against clusterdns with the kubeadm Corefile on the 1,000-Service cluster-names mix (the scenario
// "cluster names: kubeadm Corefile" of run.ts), reading the achieved QPS, the loss and the latency
// percentiles from `dnsperf -v`'s per-query lines. Both servers run at once on core 0 (the one not
// being measured is idle) and their runs alternate at every rate, so a load change on the shared
// machine hits both curves alike. dnsperf runs on core 1.
//
// `npm run bench -- sweep` runs it as part of run.ts (tables; a full run or BENCH_WRITE_DOCS=1 also
// writes docs/performance-latency.svg). Alone: `npm run -s build && node test/bench/sweep.ts [OUT.svg]`.
// BENCH_SWEEP_SECONDS (per point, 3), BENCH_SWEEP_RATES (comma-separated QPS, 0 = unlimited;
// default 5000,10000,20000,30000,40000,50000,60000,0).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dnsperf, haveTool, queryFile } from './dnsperf.ts';
import { cpuSeconds, freePort, pinSelf, removeTempDirs, spawnNode, type Child } from './proc.ts';
import type { Fixtures } from './run.ts';

/**
 * What the sweep uses from run.ts. run.ts passes it in: a static import of run.ts from here would wait
 * for run.ts's top-level await (its main) while main waits for the sweep.
 */
export type RunApi = Pick<typeof import('./run.ts'), 'fixtures' | 'ports' | 'startServer' | 'throughputScenarios'>;

const SERVER_CORE = 0;
const CLIENT_CORE = 1;
const SECONDS = Number(process.env.BENCH_SWEEP_SECONDS ?? 3);
const RATES = (process.env.BENCH_SWEEP_RATES ?? '5000,10000,20000,30000,40000,50000,60000,0').split(',').map(Number).filter((x) => Number.isFinite(x) && x >= 0);
/** dnsperf's client settings for every point: as `latency()` in dnsperf.ts (4 sockets, up to 1000 in flight). */
const CLIENTS = 4;
const OUTSTANDING = 1000;
const SCENARIO = 'cluster names: kubeadm Corefile';

export const sweepServers = ['echo floor', 'clusterdns'] as const;
export type SweepServer = (typeof sweepServers)[number];

export interface SweepPoint {
  server: SweepServer;
  /** Offered rate (dnsperf -Q); 0 = unlimited (as fast as replies come back, 1000 in flight). */
  offered: number;
  /** Achieved: completed queries per second, as dnsperf reports it. */
  qps: number;
  sent: number;
  completed: number;
  lost: number;
  /** Latency percentiles of the completed queries (lost ones are not in them), ms. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The server's user+system CPU time over the run / wall time, %. */
  serverCpuPct: number;
}

export interface SweepResult {
  date: string;
  node: string;
  dnsperf: string;
  seconds: number;
  loadStart: number[];
  loadEnd: number[];
  scenario: string;
  points: SweepPoint[];
}

export function dnsperfVersion(): string {
  const h = spawnSync('dnsperf', ['-h'], { encoding: 'utf8' });
  return /Version (\S+)/.exec(`${h.stdout ?? ''}${h.stderr ?? ''}`)?.[1] ?? '?';
}

/** One point: dnsperf -v at `offered` QPS (0: unlimited) for SECONDS; percentiles from the per-query lines. */
function measure(server: SweepServer, port: number, pid: number, file: string, offered: number): SweepPoint {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  const { stdout, result } = dnsperf(port, file, { seconds: SECONDS, clients: CLIENTS, outstanding: OUTSTANDING, core: CLIENT_CORE, verbose: true, ...(offered > 0 ? { qps: offered } : {}) });
  const cpu = cpuSeconds(pid) - c0;
  const wall = (performance.now() - t0) / 1000;
  const samples: number[] = [];
  // Verbose lines look like: "> NOERROR name A 0.000123" (as latency() in dnsperf.ts reads them).
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('> ')) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) samples.push(v * 1000);
  }
  samples.sort((a, b) => a - b);
  const pct = (p: number) => (samples.length ? samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]! : NaN);
  return {
    server, offered, qps: result.qps, sent: result.sent, completed: result.completed, lost: result.lost,
    p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: samples.length ? samples[samples.length - 1]! : NaN, serverCpuPct: (100 * cpu) / wall,
  };
}

/**
 * The sweep. `run`: run.ts's exports (imported here when not given). `fixtures` (run.ts) gives the cluster manifests and the loopback upstream the kubeadm
 * Corefile forwards to; without it the sweep makes and removes its own.
 */
export async function benchSweep(o: { run?: RunApi; fixtures?: Fixtures; log?: (line: string) => void } = {}): Promise<SweepResult> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { fixtures, ports, startServer, throughputScenarios } = o.run ?? (await import('./run.ts'));
  const own = o.fixtures === undefined;
  const f = o.fixtures ?? fixtures();
  const scenario = throughputScenarios.find((s) => s.name === SCENARIO);
  if (!scenario) throw new Error(`no throughput scenario named "${SCENARIO}" in run.ts`);
  const loadStart = loadavg();
  let echo: Child | undefined;
  let server: Child | undefined;
  try {
    const file = queryFile(scenario.queries(f));
    const echoPort = await freePort();
    echo = spawnNode(join(import.meta.dirname, 'echo.ts'), [String(echoPort)], { core: SERVER_CORE });
    await echo.waitFor(/listening/);
    const p = await ports();
    server = (await startServer(await scenario.corefile(p, f))).child;
    // Warm up the JIT and caches (both sides).
    dnsperf(p.dns, file, { seconds: 2, core: CLIENT_CORE });
    dnsperf(echoPort, file, { seconds: 1, core: CLIENT_CORE });
    const points: SweepPoint[] = [];
    for (const rate of RATES) {
      log(`bench: sweep: ${rate > 0 ? `${rate} QPS` : 'unlimited'} ...`);
      points.push(measure('echo floor', echoPort, echo.pid, file, rate));
      points.push(measure('clusterdns', p.dns, server.pid, file, rate));
    }
    return {
      date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), node: process.version, dnsperf: dnsperfVersion(), seconds: SECONDS,
      loadStart, loadEnd: loadavg(), scenario: SCENARIO, points,
    };
  } finally {
    // SIGKILL: the kubeadm Corefile's lameduck would hold the stop for 5 s.
    await server?.stop('SIGKILL');
    await echo?.stop('SIGTERM');
    if (own) {
      await f.close();
      removeTempDirs();
    }
  }
}

// ---- output ----

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
const rateText = (r: number) => (r > 0 ? String(r) : 'unlimited');

export function formatSweep(r: SweepResult): string {
  let t = `Latency vs load: dnsperf on core 1 at each offered rate for ${r.seconds} s, alternately against the echo floor (test/bench/echo.ts) and clusterdns with the kubeadm Corefile on the cluster-names mix ("${r.scenario}"), both on core 0 and both sent the same query file: \`taskset -c 1 dnsperf -s 127.0.0.1 -p PORT -d FILE -l ${r.seconds} -c ${CLIENTS} -q ${OUTSTANDING} -t 2 -Q RATE -v\` (no \`-Q\` for "unlimited": then ${OUTSTANDING} queries stay in flight and latency is queueing). Achieved QPS as dnsperf reports it; p50/p99/max over the completed queries' per-query latencies (\`-v\`); loss = lost / sent; server CPU = user+system time of the server over the run / wall time. Plot: docs/performance-latency.svg. Load average ${r.loadStart.map((x) => x.toFixed(2)).join(' ')} at the start, ${r.loadEnd.map((x) => x.toFixed(2)).join(' ')} at the end.\n\n`;
  t += '| offered QPS | echo floor QPS | loss % | p50 ms | p99 ms | max ms | server CPU % | clusterdns QPS | loss % | p50 ms | p99 ms | max ms | server CPU % |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n';
  for (const rate of [...new Set(r.points.map((p) => p.offered))]) {
    const cells = sweepServers.map((s) => {
      const p = r.points.find((x) => x.server === s && x.offered === rate);
      if (!p) return '- | - | - | - | - | -';
      return `${fmt(p.qps)} | ${fmt((100 * p.lost) / p.sent, 2)} | ${fmt(p.p50Ms, 3)} | ${fmt(p.p99Ms, 3)} | ${fmt(p.maxMs, 1)} | ${fmt(p.serverCpuPct)}`;
    });
    t += `| ${rateText(rate)} | ${cells.join(' | ')} |\n`;
  }
  return t;
}

const esc = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** A hand-written SVG line chart: x = achieved QPS (linear), y = latency (log), p50 solid and p99 dashed per server. */
export function renderSweepSvg(r: SweepResult): string {
  const W = 960;
  const H = 540;
  const L = 78;
  const R = 720;
  const T = 78;
  const B = 470;
  const colors: Record<SweepServer, string> = { 'echo floor': '#1f77b4', clusterdns: '#d62728' };
  const pts = r.points.filter((p) => Number.isFinite(p.qps) && p.p50Ms > 0 && p.p99Ms > 0);
  const lat = pts.flatMap((p) => [p.p50Ms, p.p99Ms]);
  const yLo = Math.floor(Math.log10(Math.min(...lat, 1)));
  const yHi = Math.max(yLo + 1, Math.ceil(Math.log10(Math.max(...lat, 1))));
  const xStep = 10_000;
  const xHi = Math.max(xStep, Math.ceil(Math.max(...pts.map((p) => p.qps), 1) / xStep) * xStep);
  const x = (q: number) => L + ((R - L) * q) / xHi;
  const y = (ms: number) => B - ((B - T) * (Math.log10(ms) - yLo)) / (yHi - yLo);
  const n = (v: number) => v.toFixed(1);
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text x="${W / 2}" y="26" text-anchor="middle" font-size="16" font-weight="bold">clusterdns vs the Node echo floor: latency vs achieved QPS (loopback, dnsperf -Q)</text>`);
  o.push(`<text x="${W / 2}" y="46" text-anchor="middle" fill="#444">${esc(`${r.date}, Node ${r.node}, dnsperf ${r.dnsperf}; kubeadm Corefile, 1,000-Service cluster-names mix, ${r.seconds} s per point`)}</text>`);
  o.push(`<text x="${W / 2}" y="62" text-anchor="middle" fill="#444">${esc(`server on core 0, dnsperf on core 1 of a shared 2-core machine, load average ${r.loadStart.map((v) => v.toFixed(2)).join(' ')} at start, ${r.loadEnd.map((v) => v.toFixed(2)).join(' ')} at end`)}</text>`);
  // Grid and ticks.
  o.push('<g stroke-width="1">');
  for (let d = yLo; d <= yHi; d++) {
    const v = 10 ** d;
    o.push(`<line x1="${L}" y1="${n(y(v))}" x2="${R}" y2="${n(y(v))}" stroke="#bbbbbb"/>`);
    o.push(`<text x="${L - 8}" y="${n(y(v) + 4)}" text-anchor="end" stroke="none">${esc(v >= 1 ? String(v) : v.toFixed(-d))}</text>`);
    if (d < yHi) for (let k = 2; k <= 9; k++) o.push(`<line x1="${L}" y1="${n(y(k * v))}" x2="${R}" y2="${n(y(k * v))}" stroke="#eeeeee"/>`);
  }
  for (let q = 0; q <= xHi; q += xStep) {
    o.push(`<line x1="${n(x(q))}" y1="${T}" x2="${n(x(q))}" y2="${B}" stroke="#e4e4e4"/>`);
    o.push(`<line x1="${n(x(q))}" y1="${B}" x2="${n(x(q))}" y2="${B + 5}" stroke="#000000"/>`);
    o.push(`<text x="${n(x(q))}" y="${B + 19}" text-anchor="middle" stroke="none">${q === 0 ? '0' : `${q / 1000}k`}</text>`);
  }
  o.push('</g>');
  o.push(`<rect x="${L}" y="${T}" width="${R - L}" height="${B - T}" fill="none" stroke="#000000"/>`);
  o.push(`<text x="${(L + R) / 2}" y="${B + 42}" text-anchor="middle" font-size="13">achieved QPS (queries completed per second, as dnsperf reports it)</text>`);
  o.push(`<text transform="translate(22 ${(T + B) / 2}) rotate(-90)" text-anchor="middle" font-size="13">latency, ms (log scale)</text>`);
  // Series: in order of offered rate (unlimited last), so the line follows the load as it rises.
  for (const s of sweepServers) {
    const ps = pts.filter((p) => p.server === s).sort((a, b) => (a.offered || Infinity) - (b.offered || Infinity));
    for (const [key, dash] of [['p50Ms', ''], ['p99Ms', ' stroke-dasharray="7 5"']] as const) {
      if (ps.length > 1) o.push(`<polyline fill="none" stroke="${colors[s]}" stroke-width="2"${dash} points="${ps.map((p) => `${n(x(p.qps))},${n(y(p[key]))}`).join(' ')}"/>`);
      for (const p of ps) {
        const tip = `${s}, offered ${rateText(p.offered)}: ${fmt(p.qps)} QPS, ${key === 'p50Ms' ? 'p50' : 'p99'} ${fmt(p[key], 3)} ms, loss ${fmt((100 * p.lost) / p.sent, 2)}%`;
        o.push(`<circle cx="${n(x(p.qps))}" cy="${n(y(p[key]))}" r="3.5" fill="${p.offered > 0 ? colors[s] : '#ffffff'}" stroke="${colors[s]}" stroke-width="1.5"><title>${esc(tip)}</title></circle>`);
      }
    }
  }
  // Legend (right of the plot).
  const lx = R + 20;
  let ly = T + 10;
  o.push(`<text x="${lx}" y="${ly}" font-weight="bold">legend</text>`);
  for (const s of sweepServers) {
    for (const [label, dash] of [['p50', ''], ['p99', ' stroke-dasharray="7 5"']] as const) {
      ly += 22;
      o.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 36}" y2="${ly - 4}" stroke="${colors[s]}" stroke-width="2"${dash}/>`);
      o.push(`<circle cx="${lx + 18}" cy="${ly - 4}" r="3.5" fill="${colors[s]}"/>`);
      o.push(`<text x="${lx + 44}" y="${ly}">${esc(`${s} ${label}`)}</text>`);
    }
  }
  ly += 22;
  o.push(`<circle cx="${lx + 18}" cy="${ly - 4}" r="3.5" fill="#ffffff" stroke="#555555" stroke-width="1.5"/>`);
  o.push(`<text x="${lx + 44}" y="${ly}">unlimited rate (no -Q)</text>`);
  const notes = [
    'Points in order of offered rate:',
    [...new Set(r.points.map((p) => p.offered))].map((q) => (q > 0 ? `${q / 1000}k` : 'max')).join(', '),
    '',
    'Each point: one dnsperf run,',
    `-c ${CLIENTS} -q ${OUTSTANDING} -t 2 -v; percentiles`,
    'of completed queries only.',
    'Below saturation x = offered;',
    'at saturation the line turns up',
    'and x stops growing.',
    '',
    'Absolute figures move by tens',
    'of percent between runs on this',
    'shared machine (p99 most).',
  ];
  ly += 30;
  for (const line of notes) {
    o.push(`<text x="${lx}" y="${ly}" fill="#444" font-size="11">${esc(line)}</text>`);
    ly += 15;
  }
  o.push('</svg>');
  return `${o.join('\n')}\n`;
}

async function main(): Promise<void> {
  if (!haveTool('dnsperf')) {
    process.stderr.write('dnsperf is not installed: run `bash scripts/install-tools.sh`\n');
    process.exit(1);
  }
  pinSelf(CLIENT_CORE);
  const r = await benchSweep();
  process.stdout.write(formatSweep(r));
  const out = process.argv[2];
  if (out) {
    writeFileSync(out, renderSweepSvg(r));
    process.stderr.write(`bench: wrote ${out}\n`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
