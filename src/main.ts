// clusterdns CLI: CoreDNS-compatible flags, so the kube-system Deployment's args carry over.
import { existsSync } from 'node:fs';
import { CorefileError } from './corefile/types.ts';
import { loadCorefile } from './corefile/parser.ts';
import { plugins } from './directives.ts';
import { createLogger, type Logger } from './log.ts';
import { Runtime } from './server/runtime.ts';
import { banner, platform } from './version.ts';

export interface CliArgs {
  conf: string;
  dnsPort: number;
  version: boolean;
  plugins: boolean;
  quiet: boolean;
}

export class UsageError extends Error {}

/** Go flag syntax: -flag, --flag, -flag=value, -flag value; booleans take no value. */
export function parseArgs(argv: string[]): CliArgs {
  const out: CliArgs = { conf: 'Corefile', dnsPort: 53, version: false, plugins: false, quiet: false };
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
    if (name !== 'conf' && name !== 'dns.port') throw new UsageError(`flag provided but not defined: -${name}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`flag needs an argument: -${name}`);
    }
    if (name === 'conf') out.conf = value;
    else {
      if (!/^\d+$/.test(value) || Number(value) > 65535) throw new UsageError(`invalid value "${value}" for flag -dns.port`);
      out.dnsPort = Number(value);
    }
  }
  return out;
}

export async function main(argv: string[], log: Logger = createLogger()): Promise<Runtime | undefined> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message} (usage: clusterdns [-conf FILE] [-dns.port N] [-plugins] [-quiet] [-version])\n`);
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
  const rt = new Runtime({ log, defaultPort: args.dnsPort });
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

