// Run the built CLI (dist/src/cli.js) as a child process, as an operator would.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pickPort } from '../ports.ts';

export const root = resolve(import.meta.dirname, '../..');
export const builtCli = join(root, 'dist/src/cli.js');

export function tempDir(prefix = 'clusterdns-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A port unlikely to be in use (tests bind 127.0.0.1 only). */
export function randomPort(): number {
  return pickPort();
}

export interface Running {
  proc: ChildProcess;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

export async function runCli(args: string[], opts: { ready?: RegExp; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Running> {
  const proc = spawn(process.execPath, [builtCli, ...args], { cwd: opts.cwd ?? root, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  if (opts.ready) {
    const ready = opts.ready;
    await new Promise<void>((resolvePromise, reject) => {
      const t = setTimeout(() => reject(new Error(`CLI not ready after ${opts.timeoutMs ?? 15000} ms:\n${out}`)), opts.timeoutMs ?? 15000);
      const check = () => { if (ready.test(out)) { clearTimeout(t); resolvePromise(); } };
      proc.stdout!.on('data', check);
      proc.stderr!.on('data', check);
      void exited.then((c) => { clearTimeout(t); reject(new Error(`CLI exited (${c}) before ready:\n${out}`)); });
      check();
    });
  }
  return {
    proc,
    output: () => out,
    stop: async (signal = 'SIGTERM') => { if (proc.exitCode === null) proc.kill(signal); return exited; },
  };
}

/** Run the CLI to completion. */
export function runCliSync(args: string[], cwd = root): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [builtCli, ...args], { cwd, encoding: 'utf8', timeout: 15000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function writeCorefile(dir: string, text: string): string {
  const p = join(dir, 'Corefile');
  writeFileSync(p, text);
  return p;
}

export function dig(args: string[]): { code: number | null; stdout: string } {
  const r = spawnSync('dig', args, { encoding: 'utf8', timeout: 15000 });
  return { code: r.status, stdout: r.stdout + r.stderr };
}

export function haveDig(): boolean {
  return spawnSync('sh', ['-c', 'command -v dig']).status === 0;
}
