// clusterdns CLI: CoreDNS-compatible flags, so the kube-system Deployment's args carry over.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { CorefileError } from './corefile/types.ts';
import { loadCorefile } from './corefile/parser.ts';
import { plugins } from './directives.ts';
import { createLogger, type Logger } from './log.ts';
import { Runtime } from './server/runtime.ts';
import { WorkerPool } from './server/workers.ts';
import { banner, platform } from './version.ts';

export interface CliArgs {
  conf: string;
  dnsPort: number;
  version: boolean;
  plugins: boolean;
  quiet: boolean;
  /** Threads answering DNS: 1 (default) = one thread does everything; N > 1 = main + N workers. */
  workers: number;
  /** Reply memo slots per listen address (src/server/memo.ts); 0 turns it off; undefined: default. */
  memo: number | undefined;
}

export class UsageError extends Error {}

/** Go flag syntax: -flag, --flag, -flag=value, -flag value; booleans take no value. */
export function parseArgs(argv: string[]): CliArgs {
  const out: CliArgs = { conf: 'Corefile', dnsPort: 53, version: false, plugins: false, quiet: false, workers: 1, memo: undefined };
  const bools = new Set(['version', 'plugins', 'quiet']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--?([a-zA-Z][\w.-]*)(?:=(.*))?$/.exec(a);
    if (!m) throw new UsageError(`unexpected argument: ${a}`);
    const name = m[1]!;
    let value = m[2];
    if (bools.has(name)) {
      if (value !== undefined && value !== 'true' && value !== 'false') throw new UsageError(`invalid boolean value "${value}" for -${name}`);
      const on = value !== 'false';
      if (name === 'version') out.version = on;
      else if (name === 'plugins') out.plugins = on;
      else out.quiet = on;
      continue;
    }
    if (name !== 'conf' && name !== 'dns.port' && name !== 'workers' && name !== 'memo') throw new UsageError(`flag provided but not defined: -${name}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`flag needs an argument: -${name}`);
    }
    if (name === 'conf') out.conf = value;
    else if (name === 'workers') out.workers = parseWorkers(value);
    else if (name === 'memo') {
      if (!/^\d+$/.test(value) || Number(value) > 1 << 20) throw new UsageError(`invalid value "${value}" for flag -memo (want 0-1048576 replies; 0 turns the reply memo off)`);
      out.memo = Number(value);
    }
    else {
      if (!/^\d+$/.test(value) || Number(value) > 65535) throw new UsageError(`invalid value "${value}" for flag -dns.port`);
      out.dnsPort = Number(value);
    }
  }
  return out;
}

/**
 * The cores this process may use: the CPUs it may run on, capped by a cgroup CPU quota (a container's
 * CPU limit), rounded up. Without the cap, `-workers auto` in a pod limited to 1 CPU on a 64-core node
 * would start 64 workers.
 */
export function usableCores(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number {
  let n = Math.max(1, availableParallelism());
  const cap = (quota: number, period: number) => {
    if (quota > 0 && period > 0) n = Math.min(n, Math.max(1, Math.ceil(quota / period)));
  };
  try {
    const [quota, period] = read('/sys/fs/cgroup/cpu.max').trim().split(/\s+/); // cgroup v2: "max 100000" or "150000 100000"
    if (quota !== 'max') cap(Number(quota), Number(period));
    return n;
  } catch { /* not cgroup v2 */ }
  try {
    cap(Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us').trim()), Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us').trim())); // v1: -1 = none
  } catch { /* no cgroup CPU controller */ }
  return n;
}

/** `-workers N|auto`: auto is the number of cores this process may use (see usableCores). */
export function parseWorkers(value: string): number {
  if (value === 'auto') return usableCores();
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 256) throw new UsageError(`invalid value "${value}" for flag -workers (want 1-256 or auto)`);
  return Number(value);
}

const usage = 'usage: clusterdns [-conf FILE] [-dns.port N] [-workers N|auto] [-memo N] [-plugins] [-quiet] [-version]';

export async function main(argv: string[], log: Logger = createLogger()): Promise<Runtime | undefined> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message} (${usage})\n`);
    process.exitCode = 1;
    return undefined;
  }
  if (args.version) {
    process.stdout.write(`${banner}\n${platform}\n`);
    return undefined;
  }
  if (args.plugins) {
    process.stdout.write('Server types:\n  dns\n\nCaddyfile loaders:\n  flag\n  default\n\nOther plugins:\n' +
      plugins.map((p) => `  dns.${p.name}\n`).join(''));
    return undefined;
  }
  // One worker is today's single thread: no pool, no extra thread, nothing changes.
  let rt: Runtime;
  if (args.workers > 1) {
    const pool = new WorkerPool({ count: args.workers, log, defaultPort: args.dnsPort, ...(args.memo !== undefined ? { memoEntries: args.memo } : {}) });
    rt = new Runtime({ log, defaultPort: args.dnsPort, role: 'main', dataPlane: pool, newLink: pool.newLink });
    rt.metrics.addRemote(() => pool.collect());
  } else {
    rt = new Runtime({ log, defaultPort: args.dnsPort, ...(args.memo !== undefined ? { memoEntries: args.memo } : {}) });
  }
  try {
    if (!existsSync(args.conf)) throw new Error(`open ${args.conf}: no such file or directory`);
    const plan = rt.plan(loadCorefile(args.conf));
    await rt.start(plan);
    if (!args.quiet) {
      for (const l of plan.listeners) {
        const zones = [...new Set(l.blocks.flatMap((b) => b.zones))];
        for (const z of zones) process.stdout.write(`${z}:${l.port}\n`);
      }
      process.stdout.write(`${banner}\n${platform}\n`);
    }
  } catch (e) {
    const msg = e instanceof CorefileError ? e.message : (e as Error).message ?? String(e);
    process.stderr.write(`${msg}\n`);
    await rt.stop().catch(() => undefined);
    process.exitCode = 1;
    return undefined;
  }
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${sig} received; shutting down`);
    rt.stop().then(() => process.exit(0), (e: unknown) => { log.error(`shutdown: ${String(e)}`); process.exit(1); });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGUSR1', () => {
    rt.reload().then(() => log.info('SIGUSR1: configuration reloaded'), (e: unknown) => log.error(`SIGUSR1: reload failed, keeping the running configuration: ${(e as Error).message}`));
  });
  // A DNS server must keep answering: an escaped rejection is a bug to log and count, not a crash.
  process.on('unhandledRejection', (reason) => {
    rt.panics.inc();
    log.error(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`);
  });
  return rt;
}

