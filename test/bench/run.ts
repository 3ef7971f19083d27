// `npm run bench`: dnsperf on loopback against each server pinned to core 0 (dnsperf on core 1),
// beside the Node UDP echo floor measured in the same run; then codec micro-benchmarks.
// Figures vary with what else the machine does: compare ratios within one run, not across runs.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dnsperf, haveTool, latency, median, queryFile, rssMiB, startPinned } from './dnsperf.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const SERVER_CORE = 0;
const CLIENT_CORE = 1;
const only = process.argv.slice(2);

interface Scenario {
  name: string;
  /** Corefile text; PORT is replaced. Undefined = the echo floor. */
  corefile?: string;
  queries: string[];
  /** Extra files written beside the Corefile. */
  files?: Record<string, string>;
}

export interface Row { name: string; qps: number; qpsMin: number; qpsMax: number; avgMs: number; p50Ms: number; p99Ms: number; rssMiB: number; lost: number }

const whoamiQueries = Array.from({ length: 100 }, (_, i) => `host${i}.example.org A`);

export const scenarios: Scenario[] = [
  { name: 'echo floor (node dgram)', queries: whoamiQueries },
  {
    name: 'whoami + prometheus + errors',
    corefile: `.:PORT {\n  bind 127.0.0.1\n  errors\n  prometheus 127.0.0.1:0\n  whoami\n}\n`,
    queries: whoamiQueries,
  },
];

async function measure(s: Scenario): Promise<Row> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  let args: string[];
  let ready: RegExp;
  if (!s.corefile) {
    args = [join(import.meta.dirname, 'echo.ts'), String(port)];
    ready = /listening/;
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'clusterdns-bench-'));
    for (const [f, text] of Object.entries(s.files ?? {})) writeFileSync(join(dir, f), text);
    writeFileSync(join(dir, 'Corefile'), s.corefile.replaceAll('PORT', String(port)));
    // The compiled entry point, as production runs it (type stripping costs ~30 MiB of RSS).
    args = [join(import.meta.dirname, '../../dist/src/cli.js'), '-conf', join(dir, 'Corefile')];
    ready = /clusterdns-/;
  }
  const { proc } = await startPinned(args, ready, SERVER_CORE);
  try {
    const file = queryFile(s.queries);
    // Warm up the JIT and caches.
    dnsperf(port, file, { seconds: 2, core: CLIENT_CORE });
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(dnsperf(port, file, { seconds: SECONDS, core: CLIENT_CORE }).result);
    const rss = rssMiB(proc.pid!);
    const lat = latency(port, file, 10_000, 3, CLIENT_CORE);
    const qs = runs.map((r) => r.qps);
    return {
      name: s.name, qps: median(qs), qpsMin: Math.min(...qs), qpsMax: Math.max(...qs),
      avgMs: median(runs.map((r) => r.avgMs)), p50Ms: lat.p50Ms, p99Ms: lat.p99Ms, rssMiB: rss,
      lost: runs.reduce((a, r) => a + r.lost, 0),
    };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
}

function fmt(n: number, d = 0): string { return Number.isFinite(n) ? n.toFixed(d) : '-'; }

async function main(): Promise<void> {
  if (!haveTool('dnsperf')) {
    process.stderr.write('dnsperf is not installed: run `bash scripts/install-tools.sh` (Debian: apt-get install -y dnsperf)\n');
    process.exit(1);
  }
  const rows: Row[] = [];
  const list = scenarios.filter((s) => only.length === 0 || only.some((o) => s.name.includes(o)) || !s.corefile);
  for (const s of list) {
    process.stderr.write(`bench: ${s.name} ...\n`);
    rows.push(await measure(s));
  }
  const floor = rows.find((r) => !scenarios.find((s) => s.name === r.name)?.corefile)?.qps ?? NaN;
  process.stdout.write(`\nThroughput: dnsperf -c 8 -q 200, ${RUNS} runs x ${SECONDS}s, server on core ${SERVER_CORE}, dnsperf on core ${CLIENT_CORE}; latency at a fixed 10k QPS for 3s\n`);
  process.stdout.write('| scenario | QPS median (min-max) | x echo floor | avg ms | p50 ms @10k | p99 ms @10k | RSS MiB | lost |\n|---|---|---|---|---|---|---|---|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.name} | ${fmt(r.qps)} (${fmt(r.qpsMin)}-${fmt(r.qpsMax)}) | ${fmt(r.qps / floor, 2)} | ${fmt(r.avgMs, 3)} | ${fmt(r.p50Ms, 3)} | ${fmt(r.p99Ms, 3)} | ${fmt(r.rssMiB, 1)} | ${r.lost} |\n`);
  }
  // -workers 1 vs 2 on a kubernetes zone: QPS per server CPU-second and RSS (test/bench/workers.ts).
  if (only.length === 0 || only.includes('workers')) {
    const { benchWorkers, formatWorkers } = await import('./workers.ts');
    process.stdout.write(formatWorkers(await benchWorkers()));
  }
  try {
    const { benchCodec } = await import('./codec.ts');
    const micro = await benchCodec();
    process.stdout.write('\nCodec micro-benchmarks\n| operation | ns/op | ops/s |\n|---|---|---|\n');
    for (const m of micro) process.stdout.write(`| ${m.name} | ${fmt(m.nsPerOp)} | ${fmt(m.opsPerSec)} |\n`);
  } catch (e) {
    process.stdout.write(`\n(codec micro-benchmarks unavailable: ${(e as Error).message})\n`);
  }
}

await main();
