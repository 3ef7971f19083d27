// The CLI as a process: flags, errors, signals, and answers checked with dig.
import { describe, expect, it } from 'vitest';
import { dig, haveDig, randomPort, runCli, runCliSync, tempDir, writeCorefile } from './cli.ts';

describe('clusterdns CLI', () => {
  it('-version prints the version and platform', () => {
    const r = runCliSync(['-version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^clusterdns-\d+\.\d+\.\d+\n/);
    expect(r.stdout).toContain(`node ${process.version}`);
  });

  it('-plugins lists plugins in chain order', () => {
    const r = runCliSync(['-plugins']);
    expect(r.code).toBe(0);
    const names = r.stdout.split('\n').filter((l) => l.startsWith('  dns.')).map((l) => l.trim().slice(4));
    expect(names).toContain('kubernetes');
    expect(names.indexOf('errors')).toBeLessThan(names.indexOf('kubernetes'));
    expect(names.indexOf('kubernetes')).toBeLessThan(names.indexOf('whoami'));
  });

  it('an unknown flag is one clear line on stderr and exit code 1', () => {
    const r = runCliSync(['-nope']);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^flag provided but not defined: -nope \(usage: clusterdns/);
  });

  it('an unreadable Corefile exits 1 naming the path', () => {
    const r = runCliSync(['-conf', '/nonexistent/Corefile']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/nonexistent/Corefile');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('a bad Corefile names file, line and directive, and starts nothing', () => {
    const dir = tempDir();
    const port = randomPort();
    const conf = writeCorefile(dir, `.:${port} {\n  bind 127.0.0.1\n  whoami\n  health :notaport\n}\n`);
    const r = runCliSync(['-conf', conf]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${conf}:4`);
    expect(r.stderr).toContain('health');
    const unknown = writeCorefile(dir, `.:${port} {\n  whoami\n  frobnicate\n}\n`);
    const u = runCliSync(['-conf', unknown]);
    expect(u.code).toBe(1);
    expect(u.stderr).toContain(`${unknown}:3 - Error during parsing: unknown directive 'frobnicate'`);
  });

  it.runIf(haveDig())('serves dig over UDP and TCP, honours -dns.port, exits 0 on SIGTERM', async () => {
    const dir = tempDir();
    const port = randomPort();
    const conf = writeCorefile(dir, `. {\n  bind 127.0.0.1\n  errors\n  whoami\n}\n`);
    const srv = await runCli(['-conf', conf, '-dns.port', String(port)], { ready: /clusterdns-/ });
    try {
      expect(srv.output()).toContain(`.:${port}`);
      const udp = dig(['@127.0.0.1', '-p', String(port), 'example.org', 'A', '+norec']);
      expect(udp.stdout).toContain('status: NOERROR');
      expect(udp.stdout).toMatch(/example\.org\.\s+0\s+IN\s+A\s+127\.0\.0\.1/);
      expect(udp.stdout).toMatch(/_udp\.example\.org\.\s+0\s+IN\s+SRV\s+0 0 \d+ \./);
      const tcp = dig(['@127.0.0.1', '-p', String(port), 'example.org', 'A', '+tcp']);
      expect(tcp.stdout).toMatch(/_tcp\.example\.org\.\s+0\s+IN\s+SRV/);
      const edns = dig(['@127.0.0.1', '-p', String(port), 'example.org', '+bufsize=4096', '+dnssec']);
      expect(edns.stdout).toMatch(/EDNS: version: 0, flags: do; udp: 1232/);
    } finally {
      expect(await srv.stop('SIGTERM')).toBe(0);
    }
  });
});
