// Search paths with a real client: glibc (`getent hosts`) in a network + mount namespace of our own,
// with a pod's resolv.conf (3 search domains, ndots:5), against the built CLI on 127.0.0.1:53 — once
// without and once with `autopath @kubernetes`. The work happens in test/e2e/netns/searchpath.ts,
// run under `unshare -n -m`; this side checks the answers and the query counts and prints them.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtCli, root } from './cli.ts';
import { type Lookup, lookupNames, type Result, type Run } from './netns/result.ts';

/** CLUSTERDNS_CLI: run another build of the CLI (e.g. one with local changes) instead of dist/. */
const cli = process.env.CLUSTERDNS_CLI ?? builtCli;
const script = join(root, 'test/e2e/netns/searchpath.ts');

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

function whyNot(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux namespaces';
  if (process.getuid?.() !== 0) return 'not running as root (unshare -n -m and mount need it)';
  for (const t of ['unshare', 'ip', 'mount', 'getent']) if (!has(t)) return `${t} is not installed (scripts/install-tools.sh)`;
  if (!existsSync(cli)) return `${cli} is missing: run \`npm run build\` first`;
  const probe = spawnSync('unshare', ['-n', '-m', '--', 'true'], { timeout: 10_000 });
  if (probe.status !== 0) return `unshare -n -m fails here: ${String(probe.stderr).trim()}`;
  return undefined;
}

const skip = whyNot();
if (skip) console.warn(`test/e2e/searchpath.test.ts skipped: ${skip}`);

/** Run the namespace script to completion (it has its own 60 s deadline; this one is the backstop). */
function runInNamespace(): Promise<{ result: Result | undefined; output: string }> {
  const hostNs = { net: readlinkSync('/proc/self/ns/net'), mnt: readlinkSync('/proc/self/ns/mnt') };
  const args = ['-n', '-m', '--', process.execPath, script, JSON.stringify({ cli, hostNs, deadlineMs: 60_000 })];
  return new Promise((resolve) => {
    const proc = spawn('unshare', args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    proc.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    const timer = setTimeout(() => proc.kill('SIGKILL'), 75_000);
    proc.on('close', () => {
      clearTimeout(timer);
      const line = output.split('\n').find((l) => l.startsWith('RESULT '));
      resolve({ result: line ? (JSON.parse(line.slice(7)) as Result) : undefined, output });
    });
  });
}

const expected: Record<(typeof lookupNames)[number], string> = {
  'my-svc': '10.96.0.10',
  'my-svc.other-ns': '10.96.0.20',
  'my-svc.default.svc.cluster.local.': '10.96.0.10',
  'api.example.com': '203.0.113.10',
};

function table(runs: Run[]): string {
  const rows = lookupNames.map((name) => {
    const cells = runs.map((r) => {
      const l = r.lookups.find((x) => x.name === name)!;
      return `${String(l.total).padStart(2)} (${Object.entries(l.queries).map(([t, n]) => `${t} ${n}`).join(', ')}; upstream ${l.upstream.length})`;
    });
    return `  ${name.padEnd(36)} ${cells.map((c) => c.padEnd(34)).join(' ')}`;
  });
  return [`  ${'getent hosts NAME'.padEnd(36)} ${runs.map((r) => `queries, ${r.mode}`.padEnd(34)).join(' ')}`, ...rows].join('\n');
}

describe('search paths with glibc in a network namespace', () => {
  it.skipIf(skip !== undefined)(`short, namespace-qualified, absolute and external names resolve; autopath saves queries${skip ? ` (skipped: ${skip})` : ''}`,
    { timeout: 90_000 }, async () => {
      const plugins = spawnSync(process.execPath, [cli, '-plugins'], { encoding: 'utf8', timeout: 10_000 }).stdout;
      for (const p of ['autopath', 'forward', 'cache', 'kubernetes', 'prometheus']) {
        expect(plugins, `${cli} does not register ${p} (src/directives.ts)`).toContain(`dns.${p}\n`);
      }

      const { result, output } = await runInNamespace();
      expect(result, `no RESULT line from the namespace script:\n${output}`).toBeDefined();
      if (!result!.ok) throw new Error(`namespace script failed: ${result!.error}\n${output}`);
      const runs = result!.runs;
      console.log(`search path e2e, queries clusterdns received per lookup:\n${table(runs)}`);

      const byMode = (mode: Run['mode']) => {
        const r = runs.find((x) => x.mode === mode)!;
        return { run: r, of: (name: string): Lookup => r.lookups.find((l) => l.name === name)! };
      };
      const plain = byMode('plain');
      const auto = byMode('autopath');

      for (const r of runs) {
        for (const name of lookupNames) {
          const l = r.lookups.find((x) => x.name === name)!;
          expect(l.exit, `${r.mode}: getent hosts ${name}: ${l.output}\n${l.log.join('\n')}`).toBe(0);
          expect(l.addresses, `${r.mode}: getent hosts ${name}`).toEqual([expected[name]]);
        }
      }

      // Without autopath glibc walks the search list itself: NXDOMAIN per domain, then the bare name.
      expect(plain.of('api.example.com').log.slice(0, 4)).toEqual([
        'AAAA api.example.com.default.svc.cluster.local. NXDOMAIN', 'AAAA api.example.com.svc.cluster.local. NXDOMAIN',
        'AAAA api.example.com.cluster.local. NXDOMAIN', 'AAAA api.example.com. NOERROR',
      ]);
      expect(plain.run.autopathSuccess).toBe(0);

      // With it the first search expansion is answered (CNAME to the name that exists): fewer queries.
      expect(auto.of('api.example.com').total).toBeLessThan(plain.of('api.example.com').total);
      expect(auto.of('my-svc.other-ns').total).toBeLessThan(plain.of('my-svc.other-ns').total);
      expect(auto.of('api.example.com').log[0]).toBe('AAAA api.example.com.default.svc.cluster.local. NOERROR');
      expect(auto.of('api.example.com').log).toContain('A api.example.com.default.svc.cluster.local. NOERROR');
      expect(auto.of('api.example.com').upstream).toContain('A api.example.com.');
      // Never worse: names that needed no walk take the same queries.
      expect(auto.of('my-svc').total).toBeLessThanOrEqual(plain.of('my-svc').total);
      expect(auto.of('my-svc.default.svc.cluster.local.').total).toBe(plain.of('my-svc.default.svc.cluster.local.').total);
      expect(auto.run.autopathSuccess).toBeGreaterThan(0);
      // The cluster zone is authoritative: search expansions never reach the upstream.
      for (const r of runs) for (const l of r.lookups) for (const u of l.upstream) expect(u).not.toMatch(/cluster\.local\.$/);
    });
});
