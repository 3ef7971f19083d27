import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { Rcode, Type } from '../../src/dns/types.ts';
import type { Next } from '../../src/plugin.ts';
import { fakeEnv, makeRequest, serve, sortAndCheck } from '../../test/helpers.ts';
import { plugin, type HostsConfig } from './index.ts';
import { parseAddress, parseHosts } from './hostsfile.ts';
import type { HostsHandler } from './hosts.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'clusterdns-hosts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
function hostsFile(text: string): string {
  const p = path.join(dir, `hosts-${++seq}`);
  writeFileSync(p, text);
  return p;
}

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'hosts').map((d) => new Controller(d, b)));
}
const parse = (directive: string, key = '.'): HostsConfig => plugin.parse(controllers(`${key} {\n${directive}\n}\n`)[0]!);
const parseErr = (directive: string): string => {
  try { parse(directive); } catch (e) { return (e as Error).message; }
  throw new Error('expected an error');
};

/** A terminal next that marks the reply so a test can tell the query went on. */
const nextMark: Next = (req) => { const m = req.reply(Rcode.REFUSED); m.flags.ra = true; return m; };

async function setup(directive: string, key = '.') {
  const f = fakeEnv();
  const cfg = parse(directive, key);
  const h = (await plugin.setup(cfg, f.env)) as HostsHandler;
  const q = (name: string, type: number) => serve(h, makeRequest(name, type), nextMark);
  const stop = async () => { for (const s of f.finalShutdown) await s(); };
  return { ...f, h, q, stop, cfg };
}

const example = `
# comment line
127.0.0.1 localhost localhost.domain
::1       localhost localhost.domain
10.0.0.1  example.org   www.example.org   # trailing comment
::FFFF:10.0.0.2 example.com
10.0.0.3  a.b.deep.example.org
fe80::1%eth0 link.example.org
10.0.0.1  example.org
not-an-ip ignored.example.org
10.0.0.9
`;

describe('hosts: parse', () => {
  it('has CoreDNS defaults', () => {
    expect(parse('hosts', 'example.org')).toEqual({
      path: '/etc/hosts', pathGiven: false, zones: ['example.org.'], inline: [], ttl: 3600,
      reverse: true, reloadMs: 5000, fallthrough: null,
    });
  });

  it('reads FILE, ZONES and the block', () => {
    const cfg = parse('hosts example.hosts Example.ORG example.net {\n 10.0.0.1 example.org\n ttl 60\n reload 15s\n no_reverse\n fallthrough\n}');
    expect(cfg).toEqual({
      path: 'example.hosts', pathGiven: true, zones: ['example.org.', 'example.net.'], inline: ['10.0.0.1 example.org'],
      ttl: 60, reverse: false, reloadMs: 15000, fallthrough: ['.'],
    });
    expect(parse('hosts {\n fallthrough in-addr.arpa ip6.arpa\n reload 0\n}')).toMatchObject({ fallthrough: ['in-addr.arpa.', 'ip6.arpa.'], reloadMs: 0 });
    expect(parse('hosts {\n fe80::1%eth0 link.local\n}').inline).toEqual(['fe80::1%eth0 link.local']);
  });

  it('rejects bad values with CoreDNS wording', () => {
    expect(parseErr('hosts {\n ttl\n}')).toMatch(/plugin\/hosts: Corefile:3 - Error during parsing: ttl needs a time in second/);
    expect(parseErr('hosts {\n ttl abc\n}')).toMatch(/ttl needs a number of second/);
    expect(parseErr('hosts {\n ttl 0\n}')).toMatch(/ttl provided is invalid/);
    expect(parseErr('hosts {\n ttl 65536\n}')).toMatch(/ttl provided is invalid/);
    expect(parseErr('hosts {\n reload\n}')).toMatch(/reload needs a duration \(zero seconds to disable\)/);
    expect(parseErr('hosts {\n reload soon\n}')).toMatch(/invalid duration 'soon'/);
    expect(parseErr('hosts {\n reload -1s\n}')).toMatch(/invalid duration for reload '-1s'/);
    expect(parseErr('hosts {\n no_reverse yes\n}')).toMatch(/Wrong argument count/);
    expect(parseErr('hosts {\n fallthru\n}')).toMatch(/unknown property 'fallthru'/);
    expect(parseErr('hosts {\n 10.0.0.1\n}')).toMatch(/no host name for '10.0.0.1'/);
  });
});

describe('hosts: file format', () => {
  it('parses addresses like CoreDNS', () => {
    expect(parseAddress('10.0.0.1')).toEqual([4, '10.0.0.1']);
    expect(parseAddress('::FFFF:10.0.0.2')).toEqual([4, '10.0.0.2']);
    expect(parseAddress('FE80:0::1%eth0')).toEqual([6, 'fe80::1']);
    expect(parseAddress('10.0.0.256')).toBeUndefined();
    expect(parseAddress('localhost')).toBeUndefined();
  });

  it('keeps only names inside the zones, without duplicates', () => {
    const e = parseHosts(example, ['example.org.'], true);
    expect([...e.v4.keys()].sort()).toEqual(['a.b.deep.example.org.', 'example.org.', 'www.example.org.']);
    expect(e.v4.get('example.org.')).toEqual(['10.0.0.1']);
    expect(e.v6.get('link.example.org.')).toEqual(['fe80::1']);
    expect(e.byAddr.get('10.0.0.1')).toEqual(['example.org.', 'www.example.org.']);
    expect(parseHosts(example, ['.'], false).byAddr.size).toBe(0);
  });
});

describe('hosts: answers', () => {
  it('answers A, AAAA and PTR from the file', async () => {
    const s = await setup(`hosts ${hostsFile(example)}`);
    sortAndCheck(await s.q('example.org.', Type.A), { rcode: Rcode.NOERROR, aa: true, answer: ['example.org. 3600 IN A 10.0.0.1'] });
    sortAndCheck(await s.q('WWW.Example.Org.', Type.A), { answer: ['www.example.org. 3600 IN A 10.0.0.1'] });
    sortAndCheck(await s.q('example.com.', Type.A), { answer: ['example.com. 3600 IN A 10.0.0.2'] });
    sortAndCheck(await s.q('localhost.', Type.AAAA), { answer: ['localhost. 3600 IN AAAA ::1'] });
    sortAndCheck(await s.q('1.0.0.127.in-addr.arpa.', Type.PTR), {
      aa: true, answer: ['1.0.0.127.in-addr.arpa. 3600 IN PTR localhost.', '1.0.0.127.in-addr.arpa. 3600 IN PTR localhost.domain.'],
    });
    sortAndCheck(await s.q('2.0.0.10.in-addr.arpa.', Type.PTR), { answer: ['2.0.0.10.in-addr.arpa. 3600 IN PTR example.com.'] });
    sortAndCheck(await s.q('1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.', Type.PTR), {
      answer: ['1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa. 3600 IN PTR link.example.org.'],
    });
    await s.stop();
  });

  it('answers NODATA for a name that exists with other types, NXDOMAIN for one that does not', async () => {
    const s = await setup(`hosts ${hostsFile(example)}`);
    sortAndCheck(await s.q('example.org.', Type.AAAA), { rcode: Rcode.NOERROR, aa: true, answer: [] });
    sortAndCheck(await s.q('example.org.', Type.MX), { rcode: Rcode.NOERROR, aa: true, answer: [] });
    sortAndCheck(await s.q('localhost.', Type.TXT), { rcode: Rcode.NOERROR, answer: [] });
    sortAndCheck(await s.q('missing.example.org.', Type.A), { rcode: Rcode.NXDOMAIN, aa: true, answer: [] });
    // Names above an entry exist: NODATA, so resolvers do not prune the tree below (RFC 8020).
    sortAndCheck(await s.q('deep.example.org.', Type.A), { rcode: Rcode.NOERROR, aa: true, answer: [] });
    sortAndCheck(await s.q('b.deep.example.org.', Type.AAAA), { rcode: Rcode.NOERROR, answer: [] });
    await s.stop();
  });

  it('falls through on NXDOMAIN only, within the fallthrough zones', async () => {
    const s = await setup(`hosts ${hostsFile(example)} {\n fallthrough\n}`);
    expect((await s.q('missing.example.org.', Type.A)).flags.ra).toBe(true);
    expect((await s.q('deep.example.org.', Type.A)).flags.ra).toBe(true); // an empty non-terminal is not ours to answer then
    sortAndCheck(await s.q('example.org.', Type.AAAA), { rcode: Rcode.NOERROR, aa: true, answer: [] });
    await s.stop();
    const t = await setup(`hosts ${hostsFile(example)} {\n fallthrough example.net\n}`);
    expect((await t.q('x.example.net.', Type.A)).flags.ra).toBe(true);
    sortAndCheck(await t.q('x.example.org.', Type.A), { rcode: Rcode.NXDOMAIN });
    await t.stop();
  });

  it('passes names outside its zones and PTR misses to the next plugin', async () => {
    const s = await setup(`hosts ${hostsFile(example)} example.org`);
    expect((await s.q('example.com.', Type.A)).flags.ra).toBe(true);
    expect((await s.q('localhost.', Type.A)).flags.ra).toBe(true);
    expect((await s.q('9.9.9.9.in-addr.arpa.', Type.PTR)).flags.ra).toBe(true);
    // PTR records exist only for names inside the zones.
    expect((await s.q('1.0.0.127.in-addr.arpa.', Type.PTR)).flags.ra).toBe(true);
    sortAndCheck(await s.q('1.0.0.10.in-addr.arpa.', Type.PTR), {
      answer: ['1.0.0.10.in-addr.arpa. 3600 IN PTR example.org.', '1.0.0.10.in-addr.arpa. 3600 IN PTR www.example.org.'],
    });
    await s.stop();
  });

  it('uses the server block zones by default', async () => {
    const s = await setup(`hosts ${hostsFile(example)}`, 'example.com');
    sortAndCheck(await s.q('example.com.', Type.A), { answer: ['example.com. 3600 IN A 10.0.0.2'] });
    expect((await s.q('example.org.', Type.A)).flags.ra).toBe(true);
    await s.stop();
  });

  it('serves inline lines after the file, with ttl and no_reverse', async () => {
    const s = await setup(`hosts ${hostsFile('10.0.0.1 node1\n')} {\n 10.0.0.2 node1\n 10.0.0.3 node2\n fd00::3 node2\n ttl 60\n no_reverse\n}`);
    expect((await s.q('node1.', Type.A)).answer.map((r) => r.data)).toEqual(['10.0.0.1', '10.0.0.2']);
    sortAndCheck(await s.q('node2.', Type.AAAA), { answer: ['node2. 60 IN AAAA fd00::3'] });
    expect((await s.q('3.0.0.10.in-addr.arpa.', Type.PTR)).flags.ra).toBe(true);
    await s.stop();
  });

  it('serves inline entries when the file does not exist, and warns', async () => {
    const s = await setup(`hosts ${path.join(dir, 'nope')} {\n 10.0.0.7 only.inline\n}`);
    expect(s.log.lines).toContain(`[WARNING] File does not exist: ${path.join(dir, 'nope')}`);
    sortAndCheck(await s.q('only.inline.', Type.A), { answer: ['only.inline. 3600 IN A 10.0.0.7'] });
    await s.stop();
  });

  it('copies answer arrays: a reply can be changed without touching the table', async () => {
    const s = await setup(`hosts ${hostsFile(example)}`);
    const m = await s.q('example.org.', Type.A);
    m.answer.length = 0;
    expect((await s.q('example.org.', Type.A)).answer).toHaveLength(1);
    await s.stop();
  });
});

describe('hosts: reload and metrics', () => {
  const gauge = async (f: Awaited<ReturnType<typeof setup>>, name: string) =>
    (await f.env.metrics.registry.getSingleMetric(name)!.get()).values[0]?.value;

  it('exports the entry count and the file time', async () => {
    const p = hostsFile('10.0.0.1 a.example.org b.example.org\nfd00::1 a.example.org\n');
    utimesSync(p, 1_700_000_000, 1_700_000_000);
    const s = await setup(`hosts ${p} {\n 10.0.0.5 c.example.org\n}`);
    // 3 forward + 3 reverse from the file, 1 + 1 inline.
    expect(await gauge(s, 'coredns_hosts_entries')).toBe(8);
    expect(await gauge(s, 'coredns_hosts_reload_timestamp_seconds')).toBe(1_700_000_000);
    await s.stop();
  });

  it('re-reads the file when its content changes, every reload period', async () => {
    const p = hostsFile('10.0.0.1 node1\n');
    const f = fakeEnv();
    const cfg = { ...parse(`hosts ${p}`), reloadMs: 20 };
    const h = (await plugin.setup(cfg, f.env)) as HostsHandler;
    for (const s of f.startup) await s();
    const ask = async () => (await serve(h, makeRequest('node1.', Type.A), nextMark)).answer.map((r) => r.data);
    expect(await ask()).toEqual(['10.0.0.1']);
    writeFileSync(p, '10.0.0.2 node1\n10.0.0.3 node1\n');
    await expect.poll(ask, { timeout: 2000, interval: 10 }).toEqual(['10.0.0.2', '10.0.0.3']);
    // Deleted: the last good data stays.
    unlinkSync(p);
    await new Promise((r) => setTimeout(r, 60));
    expect(await ask()).toEqual(['10.0.0.2', '10.0.0.3']);
    // Back again, with new content.
    writeFileSync(p, '10.0.0.4 node1\n');
    await expect.poll(ask, { timeout: 2000, interval: 10 }).toEqual(['10.0.0.4']);
    // After shutdown the timer is gone: changes are no longer seen.
    for (const s of f.finalShutdown) await s();
    writeFileSync(p, '10.0.0.5 node1\n');
    await new Promise((r) => setTimeout(r, 80));
    expect(await ask()).toEqual(['10.0.0.4']);
  });

  it('does not re-parse when only the file time changed', async () => {
    const p = hostsFile('10.0.0.1 node1\n');
    const s = await setup(`hosts ${p}`);
    const before = s.h.data.table;
    utimesSync(p, new Date(), new Date(Date.now() + 5000));
    expect(await s.h.data.refresh()).toBe(false);
    expect(s.h.data.table).toBe(before);
    writeFileSync(p, '10.0.0.1 node1\n10.0.0.2 node2\n');
    expect(statSync(p).size).toBeGreaterThan(0);
    expect(await s.h.data.refresh()).toBe(true);
    expect(s.h.data.table).not.toBe(before);
    await s.stop();
  });

  it('reply memo: replies (answers and fallthroughs alike) depend on the table, which a changed file retires', async () => {
    const p = hostsFile('10.0.0.1 node1.example.org\n');
    const s = await setup(`hosts ${p} example.org {\n fallthrough\n}`);
    expect(s.h.memo).toBe(true);
    const ask = async (name: string, type: number) => {
      const req = makeRequest(name, type);
      await serve(s.h, req, nextMark);
      return req;
    };
    const answered = await ask('node1.example.org.', Type.A);
    const passed = await ask('node2.example.org.', Type.A); // fallthrough: the next plugin answers
    const ptr = await ask('9.9.9.9.in-addr.arpa.', Type.PTR);
    const outside = await ask('example.com.', Type.A); // not ours: the table was never read
    for (const r of [answered, passed, ptr]) {
      expect(r.memoOff).toBe(false);
      expect(r.memoDep?.valid()).toBe(true);
    }
    expect(outside.memoDep).toBeUndefined();
    // A touch changes nothing; new content does: every reply that read the old table is out of date.
    utimesSync(p, new Date(), new Date(Date.now() + 5000));
    await s.h.data.refresh();
    expect(answered.memoDep!.valid()).toBe(true);
    writeFileSync(p, '10.0.0.1 node1.example.org\n10.0.0.2 node2.example.org\n');
    expect(await s.h.data.refresh()).toBe(true);
    for (const r of [answered, passed, ptr]) expect(r.memoDep!.valid()).toBe(false);
    expect((await ask('node2.example.org.', Type.A)).memoDep!.valid()).toBe(true);
    await s.stop();
  });

  it('does not start a timer with reload 0', async () => {
    const s = await setup(`hosts ${hostsFile('10.0.0.1 node1\n')} {\n reload 0\n}`);
    expect(s.startup).toHaveLength(0);
    await s.stop();
  });
});

describe('hosts: README', () => {
  it('every corefile example parses', () => {
    const md = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
    const blocks = [...md.matchAll(/(?:```|~~~) ?corefile\n([\s\S]*?)(?:```|~~~)/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks) for (const c of controllers(b)) plugin.parse(c);
  });
});
