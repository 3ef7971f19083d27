// Process plumbing for the benchmarks: pinned child processes, free ports, /proc memory readings, and a
// forced GC through the V8 inspector (the only way to collect garbage in another process).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';

export const repoRoot = join(import.meta.dirname, '../..');
/** The compiled entry point, as production runs it (type stripping costs ~30 MiB of RSS). */
export const cliJs = join(repoRoot, 'dist/src/cli.js');

/**
 * The environment the shipped Deployment (deploy/kubernetes/deployment.yaml) gives the clusterdns
 * container (NODE_OPTIONS with the heap settings, malloc tuning), so a bench server runs as production.
 */
export function deploymentEnv(): Record<string, string> {
  const docs = loadAll(readFileSync(join(repoRoot, 'deploy/kubernetes/deployment.yaml'), 'utf8')) as Array<{
    kind?: string;
    spec?: { template?: { spec?: { containers?: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> } } };
  }>;
  const c = docs.find((d) => d?.kind === 'Deployment')?.spec?.template?.spec?.containers?.find((x) => x.name === 'clusterdns');
  if (!c) throw new Error('deploy/kubernetes/deployment.yaml: no clusterdns container');
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return env;
}

const tempDirs: string[] = [];

/** A new directory under the system temp dir, removed by removeTempDirs(). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `clusterdns-bench-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function haveTaskset(): boolean {
  return spawnSync('sh', ['-c', 'command -v taskset']).status === 0;
}

/** Pin this process (all its threads) to one core, so helpers running in it never touch the server's core. */
export function pinSelf(core: number): boolean {
  if (!haveTaskset()) return false;
  return spawnSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' }).status === 0;
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** performance.now() just before spawn. */
  startedAt: number;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolve when the output matches `re` (rejects on exit or after `timeoutMs`). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Signal and wait for the exit (SIGKILL after `timeoutMs`). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

/** Start `node [nodeArgs] script args` pinned to `core` (taskset execs node: the pid is node's). */
export function spawnNode(script: string, args: string[], o: { core?: number; nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Child {
  const cmd = [process.execPath, ...(o.nodeArgs ?? []), script, ...args];
  if (o.core !== undefined && haveTaskset()) cmd.unshift('taskset', '-c', String(o.core));
  const startedAt = performance.now();
  const proc = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env });
  let out = '';
  let exited = false;
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    // Keep the tail only: a chatty child must not grow the bench's memory without bound.
    if (out.length > 1 << 20) out = out.slice(-(1 << 19));
    for (const l of listeners) l();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  proc.once('exit', () => { exited = true; for (const l of listeners) l(); });
  return {
    proc,
    pid: proc.pid!,
    startedAt,
    output: () => out,
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) { done(); resolve(m); } else if (exited) { done(); reject(new Error(`${script} exited (code ${proc.exitCode}): ${out.slice(-2000)}`)); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`${script}: no ${re} within ${timeoutMs} ms: ${out.slice(-2000)}`)); }, timeoutMs);
        const done = () => { clearTimeout(timer); listeners.delete(check); };
        listeners.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (exited) return;
      const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      await gone;
      clearTimeout(t);
    },
  };
}

/** A port free on 127.0.0.1 right now (TCP; the same number is normally free for UDP too). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** RSS, its peak (VmHWM), and RSS split into anonymous memory (the process's own: heap, stacks, malloc) and file-backed pages (the node binary and libraries, mostly shared and clean). */
export interface MemStatus { rssMiB: number; hwmMiB: number; anonMiB: number; fileMiB: number }

export function memStatus(pid: number): MemStatus {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (re: RegExp) => Number(re.exec(s)?.[1] ?? NaN);
  return {
    rssMiB: kib(/VmRSS:\s+(\d+)/) / 1024, hwmMiB: kib(/VmHWM:\s+(\d+)/) / 1024,
    anonMiB: kib(/RssAnon:\s+(\d+)/) / 1024, fileMiB: (kib(/RssFile:\s+(\d+)/) + kib(/RssShmem:\s+(\d+)/)) / 1024,
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Busy and idle seconds of one core so far, from /proc/stat (clock ticks of 1/100 s). */
export function coreSeconds(core: number): { busy: number; idle: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${core} `));
  if (!line) return { busy: NaN, idle: NaN };
  // user nice system idle iowait irq softirq steal ...
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  return { busy: (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / 100, idle: (idle! + iowait!) / 100 };
}

/** Reset VmHWM to the current RSS (Linux ≥ 4.0, "5" > clear_refs). False when not allowed. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Sample VmRSS (and VmHWM) every `everyMs`; `max()` is the highest RSS seen since the last reset. */
export function rssSampler(pid: number, everyMs = 50) {
  let max = 0;
  const tick = () => {
    try { max = Math.max(max, memStatus(pid).rssMiB); } catch { /* exited */ }
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    max: () => { tick(); return max; },
    reset: () => { max = 0; tick(); },
    stop: () => clearInterval(timer),
  };
}

/** HTTP status of a GET, or 0 when the connection fails. */
export async function httpStatus(url: string, timeoutMs = 1000): Promise<number> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return 0;
  }
}

/** Poll `url` until it answers 200; milliseconds since `since` (performance.now()), or NaN after timeout. */
export async function waitHttp200(url: string, since: number, timeoutMs = 60_000, everyMs = 10): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if ((await httpStatus(url, 2000)) === 200) return performance.now() - since;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return NaN;
}

/**
 * A V8 inspector session over the DevTools WebSocket a child opened with `--inspect=127.0.0.1:0`
 * (it prints "Debugger listening on ws://..."): forced GC and evaluation in the child.
 */
export class Inspector {
  private readonly ws: WebSocket;
  private nextId = 1;
  private readonly pending = new Map<number, (v: { result?: unknown; error?: { message: string } }) => void>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener('message', (ev) => {
      const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
      if (msg.id !== undefined) this.pending.get(msg.id)?.(msg);
    });
  }

  static async connect(child: Child): Promise<Inspector> {
    const m = await child.waitFor(/Debugger listening on (ws:\/\/\S+)/, 10_000);
    const ws = new WebSocket(m[1]!);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error('inspector: cannot connect')), { once: true });
    });
    return new Inspector(ws);
  }

  call(method: string, params: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.pending.delete(id); reject(new Error(`inspector: ${method} timed out`)); }, timeoutMs);
      this.pending.set(id, (msg) => {
        clearTimeout(t);
        this.pending.delete(id);
        if (msg.error) reject(new Error(`inspector: ${method}: ${msg.error.message}`));
        else resolve(msg.result);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Full GC (twice: the first may leave weakly held and finalizable objects for the next). */
  async collectGarbage(): Promise<void> {
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.collectGarbage');
  }

  /** process.memoryUsage() of the child, in bytes. */
  async memoryUsage(): Promise<NodeJS.MemoryUsage> {
    const r = await this.call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true }) as { result: { value: string } };
    return JSON.parse(r.result.value) as NodeJS.MemoryUsage;
  }

  close(): void {
    this.ws.close();
  }
}
