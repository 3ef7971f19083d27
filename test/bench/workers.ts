// `-workers N` benchmark: the same 1,000-Service kubernetes zone (manifests) served with 1 and 2
// workers, dnsperf pinned to one core and the server left free to use every core. Raw QPS depends on
// how many cores are left over for the server, so the figure to compare is QPS per server CPU-second:
// queries answered divided by the utime+stime the server process spent meanwhile (/proc/PID/stat),
// i.e. how much work one query costs. RSS is the whole process (every thread) after the runs.
//
// Run alone: `npm run -s build && node test/bench/workers.ts`; `npm run bench` runs it after the others.
// BENCH_WORKERS="1,2,4" picks the worker counts, BENCH_SERVICES the zone size, BENCH_MIX=cluster,misses
// the query mixes; BENCH_RUNS / BENCH_SECONDS as in run.ts.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { writeSmallCluster } from './cluster.ts';
import { dnsperf, haveTool, median, queryFile } from './dnsperf.ts';
import { cliJs, cpuSeconds, deploymentEnv, freePort, memStatus, removeTempDirs, spawnNode, tempDir } from './proc.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CLIENT_CORE = 1;
/** Services in the zone (BENCH_SERVICES): RSS growth with zone size shows what is held once. */
const SERVICES = Number(process.env.BENCH_SERVICES ?? 1000);

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

/** utime + stime of one thread (its /proc task), in seconds; the main thread's task id is the pid. */
function threadCpuSeconds(pid: number, tid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * The query mixes: `cluster` (70% Service A, 10% SRV, 20% search-path NXDOMAIN over 1,000 names: in
 * steady state every reply is cached) and `misses` (200,000 distinct names: every query is built
 * afresh, in a worker by asking the main thread).
 */
export async function benchWorkers(counts: number[] = [1, 2], mixes: Array<'cluster' | 'misses'> = ['cluster', 'misses']): Promise<WorkersRow[]> {
  const dir = tempDir('workers');
  const cluster = writeSmallCluster(join(dir, 'cluster'), { services: SERVICES });
  const files = {
    cluster: queryFile(cluster.queries),
    misses: queryFile(Array.from({ length: 200_000 }, (_, i) => `x${i}.default.svc.cluster.local A`)),
  };
  const rows: WorkersRow[] = [];
  try {
    for (const mix of mixes) {
      // Every worker count runs at once (an idle server costs nothing) and the runs alternate, so a
      // load change on the shared machine hits all of them alike.
      const servers = [];
      for (const n of counts) {
        const port = await freePort();
        const conf = join(dir, `Corefile-${mix}-${n}`);
        writeFileSync(conf, `cluster.local:${port} {\n  bind 127.0.0.1\n  errors\n  prometheus 127.0.0.1:0\n` +
          `  kubernetes cluster.local {\n    manifests ${cluster.dir}\n  }\n}\n`);
        // Unpinned: with -workers the server is meant to use every core. run.ts pins itself (and so
        // its children) to the client core: widen the server's affinity before it starts its threads.
        // As deployed: the Deployment's NODE_OPTIONS (heap caps apply to every worker's isolate) and malloc settings.
        const child = spawnNode(cliJs, ['-conf', conf, '-workers', String(n)], { env: { ...process.env, ...deploymentEnv() } });
        spawnSync('taskset', ['-a', '-p', '-c', `0-${cpus().length - 1}`, String(child.pid)], { stdio: 'ignore' });
        servers.push({ n, port, child, qps: [] as number[], queries: 0, lost: 0, cpu: 0, mainCpu: 0, wall: 0 });
      }
      try {
        for (const s of servers) {
          await s.child.waitFor(/clusterdns-/);
          dnsperf(s.port, files[mix], { seconds: 2, core: CLIENT_CORE }); // warm up JIT and reply caches
        }
        for (let i = 0; i < RUNS; i++) {
          for (const s of servers) {
            const pid = s.child.pid;
            const main0 = threadCpuSeconds(pid, pid);
            const cpu0 = cpuSeconds(pid);
            const t0 = performance.now();
            const r = dnsperf(s.port, files[mix], { seconds: SECONDS, core: CLIENT_CORE }).result;
            s.wall += (performance.now() - t0) / 1000;
            s.cpu += cpuSeconds(pid) - cpu0;
            s.mainCpu += threadCpuSeconds(pid, pid) - main0;
            s.qps.push(r.qps);
            s.queries += r.completed;
            s.lost += r.lost;
          }
        }
        for (const s of servers) {
          rows.push({
            mix, workers: s.n, qps: median(s.qps), qpsPerCpuSecond: s.queries / s.cpu, cores: s.cpu / s.wall,
            mainShare: s.n > 1 ? s.mainCpu / s.cpu : 1, rssMiB: memStatus(s.child.pid).rssMiB, lost: s.lost,
          });
        }
      } finally {
        for (const s of servers) await s.child.stop('SIGTERM');
      }
    }
  } finally {
    removeTempDirs();
  }
  return rows;
}

export function formatWorkers(rows: WorkersRow[]): string {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  let out = `${SERVICES.toLocaleString('en')}-Service kubernetes zone (manifests), dnsperf -c 8 -q 200 on core ${CLIENT_CORE}, server unpinned, ${RUNS} alternating runs x ${SECONDS}s. ` +
    'cluster: the 70/10/20 mix over 1,000 names (every reply cached in steady state); misses: 200,000 distinct names (none cached).\n';
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
