// `-workers N` benchmark: the same 1,000-Service kubernetes zone (manifests) served with 1 and 2
// workers, dnsperf pinned to one core and the server left free to use every core. Raw QPS depends on
// how many cores are left over for the server, so the figure to compare is QPS per server CPU-second:
// queries answered divided by the utime+stime the server process spent meanwhile (/proc/PID/stat),
// i.e. how much work one query costs. RSS is the whole process (every thread) after the runs.
//
// Run alone: `npm run -s build && node test/bench/workers.ts`; `npm run bench` runs it after the others.
// BENCH_WORKERS="1,2,4" picks the worker counts, BENCH_SERVICES the zone size, BENCH_MIX=cluster,misses
// the query mixes; BENCH_RUNS / BENCH_SECONDS as in run.ts.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSmallCluster } from './cluster.ts';
import { dnsperf, haveTool, median, queryFile, rssMiB, startPinned } from './dnsperf.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CLIENT_CORE = 1;
/** Services in the zone (BENCH_SERVICES): RSS growth with zone size shows what is held once. */
const SERVICES = Number(process.env.BENCH_SERVICES ?? 1000);
const CLK_TCK = 100; // USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK)

export interface WorkersRow {
  mix: string;
  workers: number;
  qps: number;
  /** Queries answered per second of server CPU (all threads). */
  qpsPerCpuSecond: number;
  /** Server CPU seconds per wall second during the runs (1.0 = one core busy). */
  cores: number;
  /** Share of the server's CPU spent in the main thread (control plane). */
  mainShare: number;
  rssMiB: number;
  lost: number;
}

/** utime + stime of a process (every thread), in seconds. */
export function cpuSeconds(pid: number, tid?: number): number {
  const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
  const stat = readFileSync(path, 'utf8');
  // Fields after the ")" closing comm: state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/**
 * The query mixes: `cluster` (70% Service A, 10% SRV, 20% search-path NXDOMAIN over 1,000 names: in
 * steady state every reply is cached) and `misses` (200,000 distinct names: every query is built
 * afresh, in a worker by asking the main thread).
 */
export async function benchWorkers(counts: number[] = [1, 2], mixes: Array<'cluster' | 'misses'> = ['cluster', 'misses']): Promise<WorkersRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'clusterdns-bench-workers-'));
  const cluster = writeSmallCluster(join(dir, 'cluster'), { services: SERVICES });
  const files = {
    cluster: queryFile(cluster.queries),
    misses: queryFile(Array.from({ length: 200_000 }, (_, i) => `x${i}.default.svc.cluster.local A`)),
  };
  const rows: WorkersRow[] = [];
  for (const mix of mixes) for (const n of counts) {
    const file = files[mix];
    const port = 20000 + Math.floor(Math.random() * 20000);
    const conf = join(dir, `Corefile-${n}`);
    writeFileSync(conf, `cluster.local:${port} {\n  bind 127.0.0.1\n  errors\n  prometheus 127.0.0.1:0\n` +
      `  kubernetes cluster.local {\n    manifests ${cluster.dir}\n  }\n}\n`);
    const args = [join(import.meta.dirname, '../../dist/src/cli.js'), '-conf', conf, '-workers', String(n)];
    const { proc } = await startPinned(args, /clusterdns-/, undefined);
    const pid = proc.pid!;
    try {
      dnsperf(port, file, { seconds: 2, core: CLIENT_CORE }); // warm up JIT and reply caches
      const qps: number[] = [];
      let queries = 0;
      let lost = 0;
      const main0 = cpuSeconds(pid, pid);
      const cpu0 = cpuSeconds(pid);
      const t0 = performance.now();
      for (let i = 0; i < RUNS; i++) {
        const r = dnsperf(port, file, { seconds: SECONDS, core: CLIENT_CORE }).result;
        qps.push(r.qps);
        queries += r.completed;
        lost += r.lost;
      }
      const wall = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(pid) - cpu0;
      const mainCpu = cpuSeconds(pid, pid) - main0;
      rows.push({
        mix, workers: n, qps: median(qps), qpsPerCpuSecond: queries / cpu, cores: cpu / wall,
        mainShare: n > 1 ? mainCpu / cpu : 1, rssMiB: rssMiB(pid), lost,
      });
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
  }
  return rows;
}

export function formatWorkers(rows: WorkersRow[]): string {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  let out = `\nWorkers: ${SERVICES.toLocaleString('en')}-Service kubernetes zone (manifests), dnsperf -c 8 -q 200 on core ${CLIENT_CORE}, server unpinned, ${RUNS} runs x ${SECONDS}s\n`;
  out += '| queries | workers | QPS median | QPS per server CPU-second | server cores busy | main thread share of CPU | RSS MiB | lost |\n|---|---|---|---|---|---|---|---|\n';
  for (const r of rows) {
    out += `| ${r.mix} | ${r.workers} | ${f(r.qps)} | ${f(r.qpsPerCpuSecond)} | ${f(r.cores, 2)} | ${f(r.mainShare * 100, 1)}% | ${f(r.rssMiB, 1)} | ${r.lost} |\n`;
  }
  return out;
}

if (import.meta.filename === process.argv[1]) {
  if (!haveTool('dnsperf')) {
    process.stderr.write('dnsperf is not installed: run `bash scripts/install-tools.sh`\n');
    process.exit(1);
  }
  const counts = (process.env.BENCH_WORKERS ?? '1,2').split(',').map(Number);
  const mixes = (process.env.BENCH_MIX ?? 'cluster,misses').split(',') as Array<'cluster' | 'misses'>;
  process.stdout.write(formatWorkers(await benchWorkers(counts, mixes)));
}
