import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { Rcode } from '../../src/dns/types.ts';
import { defaultConfig, type ForwardConfig, resolvConfServers } from './config.ts';
import { plugin } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'forward-setup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A resolv.conf in a temp dir (loopback addresses only; nothing is sent to them). */
function resolvConf(text: string): string {
  const p = join(dir, `resolv-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(p, text);
  return p;
}

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'forward').map((d) => new Controller(d, b)));
}
/** Parse one `forward` directive written on line 2 of a Corefile. */
const parse = (directive: string): ForwardConfig => plugin.parse(controllers(`. {\n${directive}\n}\n`)[0]!);

const up = (addr: string, host: string, port: number, family: 4 | 6 = 4) => ({ addr, host, port, family });

describe('forward: parse', () => {
  it('defaults follow CoreDNS', () => {
    expect(parse('forward . 127.0.0.1')).toEqual({
      from: '.', upstreams: [up('127.0.0.1:53', '127.0.0.1', 53)], ...defaultConfig(),
    });
    const d = defaultConfig();
    expect(d.maxFails).toBe(2);
    expect(d.expireMs).toBe(10_000);
    expect(d.healthCheck).toEqual({ intervalMs: 500, recursionDesired: true, domain: '.' });
    expect(d.policy).toBe('random');
    expect(d.maxConcurrent).toBe(0);
    expect(d.timeouts).toEqual({ attemptMs: 2000, totalMs: 5000, healthCheckMs: 1000 });
  });

  it.each([
    ['forward . 127.0.0.1:5300', [up('127.0.0.1:5300', '127.0.0.1', 5300)]],
    ['forward . dns://127.0.0.1', [up('127.0.0.1:53', '127.0.0.1', 53)]],
    ['forward . dns://127.0.0.1:1053', [up('127.0.0.1:1053', '127.0.0.1', 1053)]],
    ['forward . ::1', [up('[::1]:53', '::1', 53, 6)]],
    ['forward . [::1]:5353', [up('[::1]:5353', '::1', 5353, 6)]],
    ['forward . fe80::1%lo', [up('[fe80::1%lo]:53', 'fe80::1%lo', 53, 6)]],
    ['forward . 127.0.0.1 127.0.0.2:54 [::1]:55', [
      up('127.0.0.1:53', '127.0.0.1', 53), up('127.0.0.2:54', '127.0.0.2', 54), up('[::1]:55', '::1', 55, 6)]],
  ])('%s', (text, upstreams) => {
    expect(parse(text).upstreams).toEqual(upstreams);
  });

  it('normalizes FROM, including a reverse CIDR', () => {
    expect(parse('forward Example.ORG 127.0.0.1').from).toBe('example.org.');
    expect(parse('forward 10.0.0.0/8 127.0.0.1').from).toBe('10.in-addr.arpa.');
    const cfg = parse('forward 10.0.0.0/15 127.0.0.1');
    expect(cfg.from).toBe('0.10.in-addr.arpa.');
    expect(cfg.fromWarning).toMatch(/expands to multiple zones/);
  });

  it('reads the nameserver lines of a resolv.conf file (port 53)', () => {
    const p = resolvConf([
      '# comment', 'search cluster.local', 'nameserver 127.0.0.53', 'nameserver   ::1',
      'nameserver not-an-ip', ';nameserver 127.0.0.9', 'options ndots:5', 'nameserver 127.0.0.54 # trailing',
    ].join('\n'));
    expect(parse(`forward . ${p}`).upstreams).toEqual([
      up('127.0.0.53:53', '127.0.0.53', 53), up('[::1]:53', '::1', 53, 6), up('127.0.0.54:53', '127.0.0.54', 53),
    ]);
    // Mixed with addresses, in order.
    expect(parse(`forward . 127.0.0.2:99 ${p}`).upstreams.map((u) => u.addr)).toEqual(['127.0.0.2:99', '127.0.0.53:53', '[::1]:53', '127.0.0.54:53']);
  });

  it('reads every property', () => {
    const cfg = parse(`forward example.org 127.0.0.1 {
      except foo.example.org Bar.example.org.
      force_tcp
      prefer_udp
      expire 30s
      max_fails 5
      max_idle_conns 4
      max_connect_attempts 3
      health_check 2s no_rec domain Health.Example.
      policy round_robin
      max_concurrent 1000
      next NXDOMAIN servfail
      failover SERVFAIL REFUSED notimpl
      failfast_all_unhealthy_upstreams
    }`);
    expect(cfg).toEqual({
      from: 'example.org.', upstreams: [up('127.0.0.1:53', '127.0.0.1', 53)], ...defaultConfig(),
      except: ['foo.example.org.', 'bar.example.org.'], forceTcp: true, preferUdp: true, expireMs: 30_000,
      maxFails: 5, maxIdleConns: 4, maxConnectAttempts: 3,
      healthCheck: { intervalMs: 2000, recursionDesired: false, domain: 'health.example.' },
      policy: 'round_robin', maxConcurrent: 1000, next: [Rcode.NXDOMAIN, Rcode.SERVFAIL],
      failover: [Rcode.SERVFAIL, Rcode.REFUSED, Rcode.NOTIMP], failfastAllUnhealthyUpstreams: true,
    });
    expect(parse('forward . 127.0.0.1 {\nhealth_check 100ms\n}').healthCheck).toEqual({ intervalMs: 100, recursionDesired: true, domain: '.' });
    expect(parse('forward . 127.0.0.1 {\npolicy sequential\n}').policy).toBe('sequential');
    expect(parse('forward . 127.0.0.1 {\nmax_fails 0\n}').maxFails).toBe(0);
  });

  it('allows 15 upstreams, not 16', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => `127.0.0.${i + 1}`).join(' ');
    expect(parse(`forward . ${many(15)}`).upstreams).toHaveLength(15);
    expect(() => parse(`forward . ${many(16)}`)).toThrow('plugin/forward: Corefile:2 - Error during parsing: more than 15 TOs configured: 16');
  });

  const missing = join(dir, 'does-not-exist.conf');
  const empty = resolvConf('search example.org\n');
  it.each([
    ['forward', "Wrong argument count or unexpected line ending after 'forward'"],
    ['forward .', "Wrong argument count or unexpected line ending after '.'"],
    ['forward . notanip', 'not an IP address or file: "notanip"'],
    ['forward . 8.9.1043', 'not an IP address or file: "8.9.1043"'],
    [`forward . ${missing}`, `not an IP address or file: "${missing}"`],
    [`forward . ${empty}`, 'no nameservers found'],
    ['forward . /etc/resolv.conf:53', 'not an IP address or file: "/etc/resolv.conf:53"'],
    ['forward . [::1]', 'not an IP address or file: "[::1]"'],
    ['forward . 127.0.0.1:0', "invalid port '0' in '127.0.0.1:0'"],
    ['forward . 127.0.0.1:99999', "invalid port '99999' in '127.0.0.1:99999'"],
    ['forward . tls://127.0.0.1', "'tls' is not supported as a destination protocol in forward: tls://127.0.0.1:853"],
    ['forward . https://127.0.0.1:8443', "'https' is not supported as a destination protocol in forward: https://127.0.0.1:8443"],
    ['forward bad..zone 127.0.0.1', "unable to normalize 'bad..zone'"],
    ['forward . 127.0.0.1 {\nexcept\n}', "Wrong argument count or unexpected line ending after 'except'", 3],
    ['forward . 127.0.0.1 {\nforce_tcp yes\n}', "Wrong argument count or unexpected line ending after 'yes'", 3],
    ['forward . 127.0.0.1 {\nmax_fails\n}', "Wrong argument count or unexpected line ending after 'max_fails'", 3],
    ['forward . 127.0.0.1 {\nmax_fails -1\n}', "invalid number '-1'", 3],
    ['forward . 127.0.0.1 {\nmax_fails two\n}', "invalid number 'two'", 3],
    ['forward . 127.0.0.1 {\nexpire 10\n}', "invalid duration '10'", 3],
    ['forward . 127.0.0.1 {\nexpire -1s\n}', "expire can't be negative: -1s", 3],
    ['forward . 127.0.0.1 {\nhealth_check -1s\n}', "health_check can't be negative: -1s", 3],
    ['forward . 127.0.0.1 {\nhealth_check 1s rec\n}', 'health_check: unknown option rec', 3],
    ['forward . 127.0.0.1 {\nhealth_check 1s domain\n}', "Wrong argument count or unexpected line ending after 'domain'", 3],
    ['forward . 127.0.0.1 {\nhealth_check 1s domain a..b\n}', 'health_check: invalid domain name a..b', 3],
    ['forward . 127.0.0.1 {\npolicy fastest\n}', "unknown policy 'fastest'", 3],
    ['forward . 127.0.0.1 {\nmax_concurrent -5\n}', "max_concurrent can't be negative: -5", 3],
    ['forward . 127.0.0.1 {\nmax_idle_conns -1\n}', "max_idle_conns can't be negative: -1", 3],
    ['forward . 127.0.0.1 {\nfailover\n}', "Wrong argument count or unexpected line ending after 'failover'", 3],
    ['forward . 127.0.0.1 {\nfailover NOERROR\n}', 'NoError cannot be used in failover', 3],
    ['forward . 127.0.0.1 {\nfailover SERVFAIL BOGUS\n}', 'BOGUS is not a valid rcode', 3],
    ['forward . 127.0.0.1 {\nnext NOPE\n}', 'NOPE is not a valid rcode', 3],
    ['forward . 127.0.0.1 {\ntls\n}', "'tls' is not supported by clusterdns (plain DNS upstreams only)", 3],
    ['forward . 127.0.0.1 {\ntls_servername dns.example\n}', "'tls_servername' is not supported by clusterdns (plain DNS upstreams only)", 3],
    ['forward . 127.0.0.1 {\nbogus\n}', "unknown property 'bogus'", 3],
    ['forward . 127.0.0.1 {\nexcept a.\nprefer_udp\nbogus 1\n}', "unknown property 'bogus'", 5],
  ])('%j fails', (text, message, line = 2) => {
    expect(() => parse(text)).toThrow(`plugin/forward: Corefile:${line} - Error during parsing: ${message}`);
  });

  it('may appear several times in a block', () => {
    expect(plugin.multiple).toBe(true);
    const cs = controllers('. {\nforward a.example 127.0.0.1\nforward . 127.0.0.2\n}\n');
    expect(cs.map((c) => plugin.parse(c).from)).toEqual(['a.example.', '.']);
  });
});

describe('forward: README', () => {
  // (test/readme.test.ts checks them too, once forward is in src/directives.ts.)
  const md = readFileSync(join(import.meta.dirname, 'README.md'), 'utf8');
  const examples = [...md.matchAll(/^(```|~~~)\s*corefile\s*\n([\s\S]*?)^\1\s*$/gm)].map((m) => m[2]!);
  it('has examples', () => { expect(examples.length).toBeGreaterThan(3); });
  // The first example reads the host's /etc/resolv.conf; a sandbox without nameservers skips it.
  const usable = examples.filter((t) => !t.includes('/etc/resolv.conf') || (resolvConfServers('/etc/resolv.conf')?.length ?? 0) > 0);
  it.each(usable.map((t, i) => [i + 1, t]))('example %i parses', (_i, text) => {
    const cf = parseCorefile(text as string, { file: 'README.md', env: {} });
    const cs = cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'forward').map((d) => new Controller(d, b)));
    expect(cs.length).toBeGreaterThan(0);
    for (const c of cs) expect(() => plugin.parse(c)).not.toThrow();
  });
});
