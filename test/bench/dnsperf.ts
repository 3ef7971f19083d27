// Drive dnsperf against a server process pinned to one core and read back what it measured.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PerfResult { qps: number; avgMs: number; lost: number; sent: number; completed: number }
export interface LatencyResult { p50Ms: number; p99Ms: number; samples: number; lost: number }

export function haveTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** Write a dnsperf query file ("name TYPE" per line) and return its path. */
/** Every query file this process wrote, removed when it exits. */
const queryDirs: string[] = [];
process.once('exit', () => { for (const d of queryDirs) rmSync(d, { recursive: true, force: true }); });

export function queryFile(lines: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterdns-bench-'));
  queryDirs.push(dir);
  const p = join(dir, 'queries.txt');
  writeFileSync(p, lines.join('\n') + '\n');
  return p;
}

function cpuPrefix(core: number | undefined): string[] {
  return core !== undefined && haveTool('taskset') ? ['taskset', '-c', String(core)] : [];
}

/** Throughput: as fast as the server answers, `seconds` long, `outstanding` queries in flight. */
export function dnsperf(port: number, file: string, o: { seconds?: number; outstanding?: number; clients?: number; core?: number; qps?: number; verbose?: boolean } = {}): { result: PerfResult; stdout: string } {
  const args = [...cpuPrefix(o.core), 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', file,
    '-l', String(o.seconds ?? 5), '-c', String(o.clients ?? 8), '-q', String(o.outstanding ?? 200), '-t', '2'];
  if (o.qps) args.push('-Q', String(o.qps));
  if (o.verbose) args.push('-v');
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`dnsperf failed: ${r.stderr}`);
  const out = r.stdout;
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  return {
    stdout: out,
    result: {
      qps: num(/Queries per second:\s+([\d.]+)/),
      avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
      sent: num(/Queries sent:\s+(\d+)/),
      completed: num(/Queries completed:\s+(\d+)/),
      lost: num(/Queries lost:\s+(\d+)/),
    },
  };
}

/** Latency percentiles at a fixed rate, from dnsperf's per-query verbose lines. */
export function latency(port: number, file: string, qps: number, seconds: number, core?: number): LatencyResult {
  const { stdout, result } = dnsperf(port, file, { qps, seconds, verbose: true, core, clients: 4, outstanding: 1000 });
  const samples: number[] = [];
  // Verbose lines look like: "> NOERROR name A 0.000123"
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('> ')) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) samples.push(v * 1000);
  }
  samples.sort((a, b) => a - b);
  const pct = (p: number) => samples.length ? samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]! : NaN;
  return { p50Ms: pct(0.5), p99Ms: pct(0.99), samples: samples.length, lost: result.lost };
}

/** Start a node process pinned to `core`, wait for `ready` on stdout. */
export async function startPinned(args: string[], ready: RegExp, core: number | undefined, cwd?: string): Promise<{ proc: ChildProcess; stdout: () => string }> {
  const cmd = [...cpuPrefix(core), process.execPath, ...args];
  const proc = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30_000);
    const check = () => { if (ready.test(out)) { clearTimeout(t); resolve(); } };
    proc.stdout!.on('data', check);
    proc.once('exit', (c) => { clearTimeout(t); reject(new Error(`server exited ${c}: ${out}`)); });
  });
  return { proc, stdout: () => out };
}

export function rssMiB(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? NaN) / 1024;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
