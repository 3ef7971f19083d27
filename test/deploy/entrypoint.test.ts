// The production entry point, as deploy/Containerfile and the manifests run it: `node dist/src/cli.js
// -conf /etc/coredns/Corefile` from a read-only tree holding dist/, package.json and the production
// dependencies only, as an unprivileged user, with the Deployment's NODE_OPTIONS. No container engine
// runs here, so the image's layout is rebuilt in a temp dir (a temp path stands in for /etc/coredns)
// and the server is started as `nobody` and queried over UDP on 127.0.0.1.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { loadAll } from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { decode } from '../../src/dns/codec.ts';
import { Rcode, Type } from '../../src/dns/types.ts';
import { udpExchange } from '../client.ts';
import { queryBytes } from '../helpers.ts';
import { pickPort } from '../ports.ts';

const root = resolve(import.meta.dirname, '../..');
const builtCli = join(root, 'dist/src/cli.js');

/** How to run a command as nobody here, or why it cannot be done. */
function privilegeDrop(): { prefix: string[] } | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'not running as root, so the server cannot be started as nobody' };
  if (!existsSync(builtCli)) return { skip: 'dist/src/cli.js is missing: run `npm run build` first' };
  const group = spawnSync('getent', ['group', 'nogroup']).status === 0 ? 'nogroup' : 'nobody';
  const candidates = [
    ['setpriv', '--reuid=nobody', `--regid=${group}`, '--clear-groups'],
    ['runuser', '-u', 'nobody', '--'],
  ];
  for (const prefix of candidates) {
    const r = spawnSync(prefix[0]!, [...prefix.slice(1), process.execPath, '--version'], { encoding: 'utf8' });
    if (r.status === 0) return { prefix };
  }
  return { skip: `neither setpriv nor runuser can run ${process.execPath} as nobody` };
}

/** The Deployment's NODE_OPTIONS, so the heap cap the manifests set is the one started here. */
function deploymentNodeOptions(): string {
  const docs = loadAll(readFileSync(join(root, 'deploy/kubernetes/deployment.yaml'), 'utf8')) as Array<{
    spec: { template: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } } };
  }>;
  return docs[0]!.spec.template.spec.containers[0]!.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
}

/**
 * What `npm ci --omit=dev` installs, without the network: every package-lock entry not marked
 * `dev`, copied from this checkout's node_modules at the same place (so hoisting is the same).
 */
function copyProductionModules(dest: string): number {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; optional?: boolean; link?: boolean }>;
  };
  let n = 0;
  for (const [path, info] of Object.entries(lock.packages)) {
    if (!path.startsWith('node_modules/') || info.dev) continue;
    const src = join(root, path);
    if (!existsSync(src)) {
      if (info.optional) continue; // another platform's optional binary
      throw new Error(`${path} is a production dependency but is not installed`);
    }
    // Nested node_modules are lock entries of their own (and may be dev-only).
    cpSync(src, join(dest, path), {
      recursive: true,
      filter: (s) => !relative(src, s).split(sep).includes('node_modules'),
    });
    n++;
  }
  return n;
}

/** A port below the kernel's ephemeral range, so no outgoing connection of a parallel test holds it. */
function freeUdpPort(): Promise<number> {
  return Promise.resolve(pickPort());
}

/** Pids of processes whose command line mentions `needle`. */
function pidsRunning(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

const drop = privilegeDrop();
if ('skip' in drop) console.warn(`test/deploy/entrypoint.test.ts skipped: ${drop.skip}`);

describe('production entry point', () => {
  let tree: string | undefined;
  let server: ChildProcess | undefined;

  afterAll(() => {
    if (server && server.exitCode === null) server.kill('SIGKILL');
    if (tree) {
      spawnSync('chmod', ['-R', 'u+w', tree]);
      rmSync(tree, { recursive: true, force: true });
    }
  });

  it.skipIf('skip' in drop)(`starts from a read-only copy of the built tree as nobody and answers queries${'skip' in drop ? ` (skipped: ${drop.skip})` : ''}`, { timeout: 90_000 }, async () => {
    const prefix = (drop as { prefix: string[] }).prefix;
    tree = mkdtempSync(join(tmpdir(), 'clusterdns-image-'));
    // The image: /app/{dist,node_modules,package.json}, and the ConfigMap at /etc/coredns/Corefile.
    cpSync(join(root, 'dist'), join(tree, 'dist'), { recursive: true });
    cpSync(join(root, 'package.json'), join(tree, 'package.json'));
    expect(copyProductionModules(tree)).toBeGreaterThan(0);
    expect(existsSync(join(tree, 'node_modules/vitest')), 'dev dependencies are left out').toBe(false);
    expect(existsSync(join(tree, 'node_modules/typescript')), 'dev dependencies are left out').toBe(false);
    mkdirSync(join(tree, 'etc/coredns'), { recursive: true });
    const conf = join(tree, 'etc/coredns/Corefile');
    writeFileSync(conf, '. {\n    bind 127.0.0.1\n    errors\n    whoami\n}\n');
    // Read-only for everyone, readable (and traversable) by nobody.
    chmodSync(tree, 0o755);
    expect(spawnSync('chmod', ['-R', 'a+rX,a-w', tree]).status).toBe(0);
    const touch = spawnSync(prefix[0]!, [...prefix.slice(1), 'touch', join(tree, 'dist/written')]);
    expect(touch.status, 'nobody cannot write into the tree').not.toBe(0);

    const port = await freeUdpPort();
    const cli = join(tree, 'dist/src/cli.js');
    server = spawn(prefix[0]!, [...prefix.slice(1), process.execPath, cli, '-conf', conf, '-dns.port', String(port)], {
      cwd: tree,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'production', NODE_OPTIONS: deploymentNodeOptions() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    server.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
    server.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
    const exited = new Promise<number | null>((r) => server!.once('exit', (code) => r(code)));
    await new Promise<void>((ready, fail) => {
      const t = setTimeout(() => fail(new Error(`not ready after 15 s:\n${output}`)), 15_000);
      const check = () => { if (/clusterdns-\d+\.\d+\.\d+/.test(output)) { clearTimeout(t); ready(); } };
      server!.stdout!.on('data', check);
      void exited.then((code) => { clearTimeout(t); fail(new Error(`exited with ${code} before ready:\n${output}`)); });
    });
    expect(output).toContain(`.:${port}`);

    // It really runs as nobody.
    const pids = pidsRunning(cli);
    expect(pids.length).toBeGreaterThan(0);
    const nobodyUid = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim());
    for (const pid of pids) {
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      expect(Number(uid)).toBe(nobodyUid);
    }

    const reply = await udpExchange(port, queryBytes('example.org.', Type.A, { id: 0x4242 }), { host: '127.0.0.1', timeoutMs: 3000 });
    expect(reply, `no answer; server output:\n${output}`).toBeDefined();
    const msg = decode(reply!);
    expect(msg.id).toBe(0x4242);
    expect(msg.rcode).toBe(Rcode.NOERROR);
    expect([...msg.answer, ...msg.additional].some((rr) => rr.type === Type.A && rr.data === '127.0.0.1')).toBe(true);

    server.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).not.toMatch(/EACCES|EROFS|permission denied/i);
  });
});
