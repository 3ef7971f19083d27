import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { type Msg, Opcode, Rcode, Type } from '../../src/dns/types.ts';
import type { Request } from '../../src/request.ts';
import { fakeEnv, makeRequest, rr } from '../../test/helpers.ts';
import { classify } from './classify.ts';
import { COMBINED_FORMAT, COMMON_FORMAT, compileJson, compileText, secondsText, tokenize } from './format.ts';
import { plugin, type LogClass, type LogConfig } from './index.ts';

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'log').map((d) => new Controller(d, b)));
}
/** Parse `log` directives written from line 2 of a Corefile. */
const parseAll = (directives: string): LogConfig[] => controllers(`. {\n${directives}\n}\n`).map((c) => plugin.parse(c));
const parse = (directive: string): LogConfig => parseAll(directive)[0]!;

function reply(req: Request, o: { rcode?: number; answer?: string[]; ns?: string[]; aa?: boolean; ra?: boolean } = {}): Msg {
  const m = req.reply(o.rcode ?? Rcode.NOERROR);
  m.flags.aa = o.aa ?? false;
  m.flags.ra = o.ra ?? false;
  m.answer = (o.answer ?? []).map(rr);
  m.authority = (o.ns ?? []).map(rr);
  return m;
}
const SOA = 'example.org. 5 IN SOA ns.example.org. hostmaster.example.org. 1 7200 1800 86400 5';

/** Set up the directives in one block and return a function that feeds the observer. */
function logging(directives: string) {
  const f = fakeEnv();
  for (const cfg of parseAll(directives)) plugin.setup(cfg, f.env);
  expect(f.responseObservers).toHaveLength(1);
  const observe = (req: Request, m: Msg, size = 68, ms = 0.037990251 * 1000) => f.responseObservers[0]!(req, m, size, ms);
  return { ...f, observe };
}

describe('log: parse', () => {
  const all = new Set<LogClass>(['all']);
  it.each<[string, Partial<LogConfig>]>([
    ['log', { names: ['.'], format: COMMON_FORMAT, classes: all }],
    ['log example.org', { names: ['example.org.'], format: COMMON_FORMAT }],
    ['log Example.ORG. example.net', { names: ['example.org.', 'example.net.'], format: COMMON_FORMAT }],
    ['log . {common}', { names: ['.'], format: COMMON_FORMAT }],
    ['log . {combined}', { names: ['.'], format: COMBINED_FORMAT }],
    ['log a.org b.org "{name} {type}"', { names: ['a.org.', 'b.org.'], format: '{name} {type}' }],
    ['log "{proto} Request: {name}"', { names: ['.'], format: '{proto} Request: {name}' }],
    ['log {\n class denial error\n}', { classes: new Set<LogClass>(['denial', 'error']) }],
    ['log {\n class denial\n class success\n}', { classes: new Set<LogClass>(['denial', 'success']) }],
    ['log {\n minDuration\n}', { minDurationMs: 100, classes: all }],
    ['log {\n class error\n minDuration 1s\n}', { minDurationMs: 1000, classes: new Set<LogClass>(['error']) }],
    ['log {\n format json\n}', { json: true }],
    ['log . {combined} {\n format text\n}', { json: false, format: COMBINED_FORMAT }],
  ])('%j', (text, want) => {
    expect(parse(text)).toMatchObject({ json: false, minDurationMs: 0, ...want });
  });

  it.each([
    ['log {\n class\n}', "plugin/log: Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'class'"],
    ['log {\n class denial failure\n}', "plugin/log: Corefile:3 - Error during parsing: invalid class 'failure' (want all, success, denial or error)"],
    ['log {\n minDuration 1s 2s\n}', "plugin/log: Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after '2s'"],
    ['log {\n minDuration soon\n}', "plugin/log: Corefile:3 - Error during parsing: invalid duration 'soon'"],
    ['log {\n minDuration -1s\n}', "plugin/log: Corefile:3 - Error during parsing: minDuration must not be negative, got '-1s'"],
    ['log {\n format yaml\n}', "plugin/log: Corefile:3 - Error during parsing: unknown format 'yaml' (want json or text)"],
    ['log {\n format\n}', "plugin/log: Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'format'"],
    ['log {\n colour on\n}', "plugin/log: Corefile:3 - Error during parsing: unknown property 'colour'"],
  ])('rejects %j', (text, message) => {
    expect(() => parse(text)).toThrow(message);
  });
});

describe('log: format', () => {
  const req = makeRequest('Example.ORG.', Type.A, { id: 29008, remote: '::1', remotePort: 50759, edns: { udpSize: 4096 } });

  it('writes the Common Log Format like CoreDNS', () => {
    const m = reply(req, { answer: ['example.org. 5 IN A 10.0.0.1'], ra: true });
    m.flags.ad = true;
    const line = compileText(COMMON_FORMAT)(req, m, 68, 37.990251);
    expect(line).toBe(`[::1]:50759 - 29008 "A IN example.org. udp ${req.raw.length} false 4096" NOERROR qr,rd,ra,ad 68 0.037990251s`);
  });

  it('prints every placeholder', () => {
    const r = makeRequest('a.example.', Type.SRV, { id: 7, remote: '::ffff:10.1.2.3', remotePort: 1234, proto: 'tcp', rd: false, cd: true, edns: { do: true } });
    r.setMeta('kubernetes/client-namespace', 'default');
    r.setMeta('lazy', () => 'computed');
    const m = reply(r, { rcode: Rcode.NXDOMAIN, aa: true });
    m.flags.tc = true;
    const fmt = '{type} {name} {class} {proto} {size} {remote} {port} {local} {>id} {>opcode} {>do} {>bufsize} {rcode} {rsize} {duration} {>rflags} {/kubernetes/client-namespace} {/lazy} {/missing}';
    expect(compileText(fmt)(r, m, 99, 1.5)).toBe(
      `SRV a.example. IN tcp ${r.raw.length} 10.1.2.3 1234 - 7 0 true 65535 NXDOMAIN 99 0.0015s qr,aa,tc,cd default computed -`);
  });

  it('keeps unknown placeholders and stray braces as text, as CoreDNS does', () => {
    expect(tokenize('A } {foo} {{name}} {name')).toEqual(['A } {foo} {', expect.objectContaining({ key: 'name' }), '} {name']);
    expect(compileText('{>ID} {type}{')(req, reply(req), 0, 0)).toBe('{>ID} A{');
  });

  it('prints rcodes by name and unknown ones as numbers', () => {
    expect(compileText('{rcode}')(req, reply(req, { rcode: Rcode.REFUSED }), 0, 0)).toBe('REFUSED');
    expect(compileText('{rcode}')(req, reply(req, { rcode: 16 }), 0, 0)).toBe('BADSIG');
    expect(compileText('{rcode}')(req, reply(req, { rcode: 3841 }), 0, 0)).toBe('3841');
  });

  it.each([[0, '0'], [37.990251, '0.037990251'], [1500, '1.5'], [0.0001, '0.0000001'], [0.0004, '0.0000004'], [12.000_000_4, '0.012']])(
    'duration %d ms → %s', (ms, want) => { expect(secondsText(ms)).toBe(want); });

  it('writes JSON with one key per placeholder, typed values', () => {
    const m = reply(req, { answer: ['example.org. 5 IN A 10.0.0.1'] });
    const line = compileJson(COMBINED_FORMAT)(req, m, 68, 2.5);
    expect(JSON.parse(line)).toEqual({
      remote: '::1', port: 50759, id: 29008, type: 'A', class: 'IN', name: 'example.org.', proto: 'udp',
      size: req.raw.length, do: false, bufsize: 4096, rcode: 'NOERROR', rflags: 'qr,rd', rsize: 68, duration: 0.0025, opcode: 0,
    });
    const r = makeRequest('q"uote.example.', Type.A);
    r.setMeta('m', 'v');
    expect(JSON.parse(compileJson('{name} {name} {/m} {/none}')(r, reply(r), 0, 0))).toEqual({ name: 'q"uote.example.', m: 'v', none: null });
    expect(compileJson('no placeholders')(r, reply(r), 0, 0)).toBe('{}');
  });
});

describe('log: classes', () => {
  const q = (type: number) => makeRequest('example.org.', type);
  it.each<[string, () => Msg, string]>([
    ['answer', () => reply(q(Type.A), { answer: ['example.org. 5 IN A 10.0.0.1'] }), 'success'],
    ['CNAME only for A (NODATA)', () => reply(q(Type.A), { answer: ['example.org. 5 IN CNAME x.example.net.'] }), 'denial'],
    ['CNAME answer for MX', () => reply(q(Type.MX), { answer: ['example.org. 5 IN CNAME x.example.net.'] }), 'success'],
    ['NODATA', () => reply(q(Type.AAAA), { ns: [SOA] }), 'denial'],
    ['NXDOMAIN', () => reply(q(Type.A), { rcode: Rcode.NXDOMAIN, ns: [SOA] }), 'denial'],
    ['NXDOMAIN without SOA', () => reply(q(Type.A), { rcode: Rcode.NXDOMAIN }), 'error'],
    ['referral', () => reply(q(Type.A), { ns: ['example.org. 5 IN NS ns1.example.org.'] }), 'success'],
    ['empty NOERROR', () => reply(q(Type.A)), 'success'],
    ['SERVFAIL', () => reply(q(Type.A), { rcode: Rcode.SERVFAIL }), 'error'],
    ['REFUSED', () => reply(q(Type.A), { rcode: Rcode.REFUSED }), 'error'],
    ['AXFR', () => reply(q(Type.AXFR), { answer: [SOA] }), 'error'],
    ['NOTIFY', () => ({ ...reply(q(Type.SOA)), opcode: Opcode.NOTIFY }), 'error'],
  ])('%s → %s', (_name, make, want) => {
    expect(classify(make())).toBe(want);
  });
});

describe('log: observer', () => {
  it('logs every query by default with an [INFO] prefix and no plugin prefix', () => {
    const s = logging('log');
    const req = makeRequest('Example.ORG.', Type.A, { id: 29008, remote: '10.244.0.7', remotePort: 40000 });
    s.observe(req, reply(req, { answer: ['example.org. 5 IN A 10.0.0.1'] }));
    expect(s.log.lines).toEqual([`[INFO] 10.244.0.7:40000 - 29008 "A IN example.org. udp ${req.raw.length} false 512" NOERROR qr,rd 68 0.037990251s`]);
  });

  it('logs only names under the given zones', () => {
    const s = logging('log example.org "{name}"');
    for (const n of ['example.org.', 'a.b.Example.org.', 'example.com.', 'notexample.org.']) {
      const req = makeRequest(n, Type.A);
      s.observe(req, reply(req));
    }
    expect(s.log.lines).toEqual(['[INFO] example.org.', '[INFO] a.b.example.org.']);
  });

  it('logs only the asked classes, and slow answers with minDuration', () => {
    const s = logging('log . "{name} {rcode}" {\n class denial\n minDuration 50ms\n}');
    const ok = makeRequest('ok.example.', Type.A);
    const nx = makeRequest('nx.example.', Type.A);
    s.observe(ok, reply(ok, { answer: ['ok.example. 5 IN A 10.0.0.1'] }), 50, 10);
    s.observe(nx, reply(nx, { rcode: Rcode.NXDOMAIN, ns: [SOA] }), 50, 10);
    s.observe(ok, reply(ok, { answer: ['ok.example. 5 IN A 10.0.0.1'] }), 50, 50.1);
    expect(s.log.lines).toEqual(['[INFO] nx.example. NXDOMAIN', '[INFO] ok.example. NOERROR']);
  });

  it('lets the first directive that covers a name decide, so a query is logged once', () => {
    const s = logging('log example.org "first {name}" {\n class error\n}\nlog . "second {name}"');
    const a = makeRequest('a.example.org.', Type.A);
    const b = makeRequest('b.example.net.', Type.A);
    s.observe(a, reply(a));
    s.observe(a, reply(a, { rcode: Rcode.SERVFAIL }));
    s.observe(b, reply(b));
    expect(s.log.lines).toEqual(['[INFO] first a.example.org.', '[INFO] second b.example.net.']);
  });

  it('writes bare JSON lines with format json', () => {
    const s = logging('log . "{name} {rcode} {duration}" {\n format json\n}');
    const req = makeRequest('example.org.', Type.A);
    s.observe(req, reply(req), 40, 1);
    expect(s.log.lines).toEqual(['{"name":"example.org.","rcode":"NOERROR","duration":0.001}']);
  });

  it('keeps blocks and instances apart', () => {
    const a = fakeEnv();
    const b = fakeEnv({ instance: a.instance, block: { zones: ['.'], servers: [], index: 1, plugins: [] } });
    plugin.setup(parse('log'), a.env);
    plugin.setup(parse('log'), b.env);
    expect(a.responseObservers).toHaveLength(1);
    expect(b.responseObservers).toHaveLength(1);
  });
});
