import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { decode } from '../../src/dns/codec.ts';
import { rrToString } from '../../src/dns/text.ts';
import { type Msg, type RR, Rcode, Type } from '../../src/dns/types.ts';
import { prebuild, writePrebuilt } from '../../src/dns/wire.ts';
import type { Next } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';
import { makeRequest, rr, serve } from '../../test/helpers.ts';
import { loadbalanceHandler, plugin, type LoadbalanceConfig } from './index.ts';
import { balance, parseCidr, permuteWire, sectionOrder } from './loadbalance.ts';
import { finalize } from '../../src/server/pipeline.ts';
import { shuffleRuns as shuffleWire } from '../../src/server/memo.ts';

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'loadbalance').map((d) => new Controller(d, b)));
}
const parse = (directive: string): LoadbalanceConfig => plugin.parse(controllers(`. {\n${directive}\n}\n`)[0]!);
const parseErr = (directive: string): string => {
  try { parse(directive); } catch (e) { return (e as Error).message; }
  throw new Error('expected an error');
};

const text = (rrs: RR[]) => rrs.map((r) => rrToString(r));

/** A reply to `req` with the given answer lines. */
function reply(req: Request, answer: string[], extra: string[] = []): Msg {
  const m = req.reply();
  m.flags.aa = true;
  m.answer = answer.map(rr);
  m.additional = extra.map(rr);
  return m;
}
const answering = (answer: string[], extra: string[] = []): Next => (req) => reply(req, answer, extra);

const fourA = [
  'web.ns.svc.cluster.local. 5 IN A 10.0.0.1',
  'web.ns.svc.cluster.local. 5 IN A 10.0.0.2',
  'web.ns.svc.cluster.local. 5 IN A 10.0.0.3',
  'web.ns.svc.cluster.local. 5 IN A 10.0.0.4',
];

describe('loadbalance: parse', () => {
  it('accepts no policy, round_robin, and prefer lines', () => {
    expect(parse('loadbalance')).toEqual({ policy: 'round_robin', prefer: [] });
    expect(parse('loadbalance round_robin')).toEqual({ policy: 'round_robin', prefer: [] });
    const cfg = parse('loadbalance round_robin {\n prefer 10.0.0.0/8 fd00::/8\n prefer 192.168.1.0/24\n}');
    expect(cfg.prefer.map((c) => c.text)).toEqual(['10.0.0.0/8', 'fd00::/8', '192.168.1.0/24']);
    expect(parse('loadbalance {\n prefer 10.1.2.3/16\n}').prefer[0]!.bits).toBe(16);
  });

  it('rejects what it does not implement, with a clear error', () => {
    expect(parseErr('loadbalance weighted /etc/weights')).toMatch(/plugin\/loadbalance: Corefile:2 - Error during parsing: policy 'weighted' is not supported by clusterdns/);
    expect(parseErr('loadbalance random')).toMatch(/unknown policy: random/);
    expect(parseErr('loadbalance round_robin extra')).toMatch(/unknown property for round_robin/);
    expect(parseErr('loadbalance {\n reload 10s\n}')).toMatch(/unknown property 'reload'/);
    expect(parseErr('loadbalance {\n prefer\n}')).toMatch(/Wrong argument count/);
    expect(parseErr('loadbalance {\n prefer 10.0.0.0\n}')).toMatch(/invalid CIDR "10.0.0.0": missing prefix length/);
    expect(parseErr('loadbalance {\n prefer 10.0.0.0/33\n}')).toMatch(/invalid CIDR "10.0.0.0\/33": invalid prefix length/);
    expect(parseErr('loadbalance {\n prefer nonsense/8\n}')).toMatch(/invalid address/);
  });
});

describe('loadbalance: shuffling', () => {
  it('eventually puts every address first, and keeps the record set', async () => {
    const h = loadbalanceHandler(parse('loadbalance'));
    const firsts = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const m = await serve(h, makeRequest('web.ns.svc.cluster.local.', Type.A), answering(fourA));
      expect(text(m.answer).sort()).toEqual(text(fourA.map(rr)).sort());
      firsts.add(m.answer[0]!.data as string);
    }
    expect(firsts.size).toBe(4);
  });

  it('keeps CNAMEs before the addresses and other records in place', () => {
    const m = reply(makeRequest('www.example.org.', Type.A), [
      'a.example.org. 5 IN A 10.0.0.1',
      'www.example.org. 5 IN CNAME a.example.org.',
      'a.example.org. 5 IN A 10.0.0.2',
      'a.example.org. 5 IN TXT "x"',
    ]);
    for (let i = 0; i < 20; i++) {
      const out = balance(m, null);
      expect(out.answer[0]!.type).toBe(Type.CNAME);
      expect(out.answer[1]!.type).toBe(Type.TXT);
      expect(out.answer.slice(2).map((r) => r.type)).toEqual([Type.A, Type.A]);
    }
  });

  it('shuffles MX and the additional section too', () => {
    const m = reply(makeRequest('example.org.', Type.MX),
      ['example.org. 5 IN MX 10 a.example.org.', 'example.org. 5 IN MX 10 b.example.org.', 'example.org. 5 IN MX 10 c.example.org.'],
      ['a.example.org. 5 IN A 10.0.0.1', 'a.example.org. 5 IN A 10.0.0.2', 'a.example.org. 5 IN A 10.0.0.3']);
    const mxFirst = new Set<string>(), extraFirst = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const out = balance(m, null);
      mxFirst.add(rrToString(out.answer[0]!));
      extraFirst.add(rrToString(out.additional[0]!));
    }
    expect(mxFirst.size).toBe(3);
    expect(extraFirst.size).toBe(3);
  });

  it('returns the reply itself when at most one address (and one MX) is there', () => {
    const req = makeRequest('one.example.org.', Type.A);
    const m = reply(req, ['www.example.org. 5 IN CNAME one.example.org.', 'one.example.org. 5 IN A 10.0.0.1']);
    m.wire = prebuild(m);
    expect(balance(m, null)).toBe(m);
    expect(sectionOrder(m.answer, null)).toBeNull();
  });

  it('never mutates the reply it got from next', () => {
    const m = reply(makeRequest('web.ns.svc.cluster.local.', Type.A), fourA);
    const before = text(m.answer);
    const arr = m.answer;
    for (let i = 0; i < 20; i++) balance(m, null);
    expect(m.answer).toBe(arr);
    expect(text(m.answer)).toEqual(before);
  });

  it('passes error replies and zone transfers through untouched', async () => {
    const h = loadbalanceHandler(parse('loadbalance'));
    const nx = (req: Request): Msg => { const m = reply(req, fourA); m.rcode = Rcode.NXDOMAIN; return m; };
    let seen: Msg | undefined;
    const keep: Next = (req) => (seen = nx(req));
    expect(await serve(h, makeRequest('x.', Type.A), keep)).toBe(seen);
    const axfr: Next = (req) => (seen = reply(req, fourA));
    expect(await serve(h, makeRequest('x.', Type.AXFR), axfr)).toBe(seen);
  });

  it('handles async replies and returns sync for sync ones', async () => {
    const h = loadbalanceHandler(parse('loadbalance'));
    const sync = h.serveDNS(makeRequest('web.ns.svc.cluster.local.', Type.A), answering(fourA));
    expect(sync).not.toBeInstanceOf(Promise);
    const later: Next = async (req) => reply(req, fourA);
    const m = await h.serveDNS(makeRequest('web.ns.svc.cluster.local.', Type.A), later);
    expect(m.answer).toHaveLength(4);
  });
});

describe('loadbalance: prefer', () => {
  it('puts addresses of preferred subnets first, in subnet order', () => {
    const cfg = parse('loadbalance {\n prefer 192.168.0.0/16 10.1.0.0/16\n}');
    const m = reply(makeRequest('x.example.org.', Type.A), [
      'x.example.org. 5 IN A 10.2.0.1', 'x.example.org. 5 IN A 10.1.0.1',
      'x.example.org. 5 IN A 172.16.0.1', 'x.example.org. 5 IN A 192.168.3.4',
    ]);
    for (let i = 0; i < 20; i++) {
      const out = balance(m, cfg.prefer);
      expect(out.answer.slice(0, 2).map((r) => r.data)).toEqual(['192.168.3.4', '10.1.0.1']);
      expect(out.answer.slice(2).map((r) => r.data).sort()).toEqual(['10.2.0.1', '172.16.0.1']);
    }
  });

  it('matches IPv6 subnets', () => {
    const prefer = [parseCidr('fd00:1::/32')].filter((c) => typeof c !== 'string');
    const m = reply(makeRequest('x.example.org.', Type.AAAA), ['x.example.org. 5 IN AAAA 2001:db8::1', 'x.example.org. 5 IN AAAA fd00:1::5']);
    for (let i = 0; i < 10; i++) expect(balance(m, prefer).answer[0]!.data).toBe('fd00:1::5');
  });
});

describe('loadbalance: prebuilt wire', () => {
  const q = (req: Request) => decode(writePrebuilt(req.getMeta('w')!, req.query, req.raw, null, 65535)!);

  it('moves record bytes instead of dropping the wire, and the bytes match the object', () => {
    const req = makeRequest('web.ns.svc.cluster.local.', Type.A);
    const m = reply(req, fourA);
    m.wire = prebuild(m);
    const firsts = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const out = balance(m, null);
      expect(out.wire).toBeDefined();
      expect(out.wire!.bytes).not.toBe(m.wire.bytes);
      req.setMeta('w', out.wire);
      const onWire = q(req);
      expect(text(onWire.answer)).toEqual(text(out.answer));
      firsts.add(out.answer[0]!.data as string);
    }
    expect(firsts.size).toBe(4);
    // The shared wire was not touched.
    req.setMeta('w', m.wire);
    expect(text(q(req).answer)).toEqual(text(m.answer));
  });

  it('works behind a CNAME (addresses owned by a pointer to the target)', () => {
    const req = makeRequest('www.example.org.', Type.A);
    const m = reply(req, ['www.example.org. 5 IN CNAME lb.example.org.', 'lb.example.org. 5 IN A 10.0.0.1', 'lb.example.org. 5 IN A 10.0.0.2', 'lb.example.org. 5 IN A 10.0.0.3']);
    m.wire = prebuild(m);
    for (let i = 0; i < 30; i++) {
      const out = balance(m, null);
      expect(out.wire).toBeDefined();
      req.setMeta('w', out.wire);
      expect(text(q(req).answer)).toEqual(text(out.answer));
    }
  });

  it('drops the wire when records would change size or order of other records', () => {
    // CNAME after the addresses: the CNAME has to move, which is not a safe byte move.
    const req = makeRequest('a.example.org.', Type.A);
    const m = reply(req, ['a.example.org. 5 IN A 10.0.0.1', 'a.example.org. 5 IN A 10.0.0.2', 'a.example.org. 5 IN CNAME b.example.org.']);
    m.wire = prebuild(m);
    const out = balance(m, null);
    expect(out.answer[0]!.type).toBe(Type.CNAME);
    expect(out.wire).toBeUndefined();
    // A and AAAA mixed (ANY): different lengths.
    const req2 = makeRequest('a.example.org.', Type.ANY);
    const m2 = reply(req2, ['a.example.org. 5 IN A 10.0.0.1', 'a.example.org. 5 IN AAAA fd00::1']);
    m2.wire = prebuild(m2);
    let dropped = false;
    for (let i = 0; i < 40 && !dropped; i++) {
      const o = balance(m2, null);
      if (o.answer[0]!.type === Type.AAAA) { expect(o.wire).toBeUndefined(); dropped = true; }
    }
    expect(dropped).toBe(true);
  });

  it('refuses wire whose counts do not match the object', () => {
    const req = makeRequest('web.ns.svc.cluster.local.', Type.A);
    const m = reply(req, fourA);
    const w = prebuild(m);
    expect(permuteWire(w, [3, 0, 0], [[1, 0, 2], null, null])).toBeUndefined();
    expect(permuteWire(w, [4, 0, 0], [[1, 0, 3, 2], null, null])).toBeDefined();
  });
});

describe('loadbalance: reply memo terms', () => {
  const h = loadbalanceHandler({ policy: 'round_robin', prefer: [] });
  /** A next answering from prebuilt wire, as kubernetes and cache do. */
  const prebuilt = (answer: string[], extra: string[] = []): Next => (req) => {
    const m = reply(req, answer, extra);
    m.wire = prebuild(m);
    return m;
  };
  /** The reply as written (finalize: the prebuilt wire copied), and the req's terms after loadbalance. */
  async function terms(name: string, type: number, next: Next, handler = h) {
    const req = makeRequest(name, type);
    const m = await serve(handler, req, next);
    return { req, bytes: finalize(req, m, 65535).slice() };
  }
  /** Shuffle `bytes` by `runs` many times as the memo does: every section must keep its records. */
  function checkRuns(bytes: Uint8Array, runs: Int32Array): void {
    const sorted = (b: Uint8Array) => { const d = decode(b); return [d.answer, d.authority, d.additional].map((s) => text(s).sort()); };
    const want = sorted(bytes);
    const b = bytes.slice();
    for (let i = 0; i < 30; i++) {
      shuffleWire(b, runs);
      expect(sorted(b)).toEqual(want);
    }
  }

  it('asks a reuse to shuffle the run of A records as it lies in the wire: [start, 16, count]', async () => {
    const { req, bytes } = await terms('web.ns.svc.cluster.local.', Type.A, prebuilt(fourA));
    expect(req.memoOff).toBe(false);
    // Right after the question (12 + 26 name bytes + 4), to the end of the reply.
    expect([...req.memoShuffle!]).toEqual([42, 16, 4]);
    expect(42 + 4 * 16).toBe(bytes.length);
    const ips = decode(bytes).answer.map((r) => r.data);
    for (let k = 0; k < 4; k++) {
      const o = 42 + 16 * k;
      expect([...bytes.subarray(o, o + 12)]).toEqual([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4]); // owner: pointer to the question
      expect([...bytes.subarray(o + 12, o + 16)].join('.')).toBe(ips[k]);
    }
    checkRuns(bytes, req.memoShuffle!);
  });

  it('AAAA records: 28 bytes each; behind a CNAME the run starts after it', async () => {
    const six = ['fd00::1', 'fd00::2', 'fd00::3'].map((ip) => `web.ns.svc.cluster.local. 5 IN AAAA ${ip}`);
    const v6 = await terms('web.ns.svc.cluster.local.', Type.AAAA, prebuilt(six));
    expect([...v6.req.memoShuffle!]).toEqual([42, 28, 3]);
    checkRuns(v6.bytes, v6.req.memoShuffle!);
    const cname = await terms('www.example.org.', Type.A, prebuilt([
      'www.example.org. 5 IN CNAME lb.example.org.', 'lb.example.org. 5 IN A 10.0.0.1', 'lb.example.org. 5 IN A 10.0.0.2',
    ]));
    const [start, size, count] = cname.req.memoShuffle!;
    expect([size, count]).toEqual([16, 2]);
    expect(start! + 2 * 16).toBe(cname.bytes.length);
    expect(start).toBeGreaterThan(12 + 17 + 4 + 12); // question, then the CNAME record
    checkRuns(cname.bytes, cname.req.memoShuffle!);
  });

  it('one run per section that needs one', async () => {
    const { req, bytes } = await terms('x.example.org.', Type.A, prebuilt(
      ['x.example.org. 5 IN CNAME a.example.org.', 'a.example.org. 5 IN A 10.0.0.1', 'a.example.org. 5 IN A 10.0.0.2'],
      ['a.example.org. 5 IN A 10.0.0.3', 'a.example.org. 5 IN A 10.0.0.4', 'a.example.org. 5 IN A 10.0.0.5'],
    ));
    const runs = [...req.memoShuffle!];
    expect(runs).toHaveLength(6);
    expect([runs[1], runs[2], runs[4], runs[5]]).toEqual([16, 2, 16, 3]);
    expect(runs[3]).toBe(runs[0]! + 2 * 16);
    expect(runs[3]! + 3 * 16).toBe(bytes.length);
    checkRuns(bytes, req.memoShuffle!);
  });

  it('sets nothing for a reply with nothing to shuffle', async () => {
    for (const answer of [['one.example.org. 5 IN A 10.0.0.1'], ['www.example.org. 5 IN CNAME one.example.org.', 'one.example.org. 5 IN A 10.0.0.1'], []]) {
      const { req } = await terms('one.example.org.', Type.A, prebuilt(answer));
      expect(req.memoOff).toBe(false);
      expect(req.memoShuffle).toBeUndefined();
    }
    const nx = makeRequest('x.example.org.', Type.A);
    await serve(h, nx, (r) => { const m = reply(r, fourA); m.rcode = Rcode.NXDOMAIN; return m; });
    expect(nx.memoOff).toBe(false);
    expect(nx.memoShuffle).toBeUndefined();
  });

  it('turns the memo off where a reuse could not just shuffle runs of equal records', async () => {
    const off = async (name: string, type: number, next: Next, handler = h) => {
      const { req } = await terms(name, type, next, handler);
      expect(req.memoShuffle).toBeUndefined();
      return req.memoOff;
    };
    // prefer: the order is not a plain shuffle.
    expect(await off('web.ns.svc.cluster.local.', Type.A, prebuilt(fourA), loadbalanceHandler(parse('loadbalance {\n prefer 10.0.0.0/30\n}')))).toBe(true);
    // A CNAME after the addresses: balance() regroups.
    expect(await off('a.example.org.', Type.A, prebuilt(['a.example.org. 5 IN A 10.0.0.1', 'a.example.org. 5 IN A 10.0.0.2', 'a.example.org. 5 IN CNAME b.example.org.']))).toBe(true);
    // A and AAAA in one run: sizes differ.
    expect(await off('a.example.org.', Type.ANY, prebuilt(['a.example.org. 5 IN A 10.0.0.1', 'a.example.org. 5 IN AAAA fd00::1']))).toBe(true);
    // Two MX records: not address records.
    expect(await off('example.org.', Type.MX, prebuilt(['example.org. 5 IN MX 10 a.example.org.', 'example.org. 5 IN MX 20 b.example.org.']))).toBe(true);
    // No prebuilt wire: no offsets to shuffle at.
    expect(await off('web.ns.svc.cluster.local.', Type.A, answering(fourA))).toBe(true);
  });

  it('leaves a reply the chain already turned off alone', async () => {
    const req = makeRequest('web.ns.svc.cluster.local.', Type.A);
    const next = prebuilt(fourA);
    await serve(h, req, (r) => { r.noMemo(); return next(r); });
    expect(req.memoOff).toBe(true);
    expect(req.memoShuffle).toBeUndefined();
  });
});

describe('loadbalance: README', () => {
  it('every corefile example parses', () => {
    const md = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
    const blocks = [...md.matchAll(/(?:```|~~~) ?corefile\n([\s\S]*?)(?:```|~~~)/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks) for (const c of controllers(b)) plugin.parse(c);
  });
});
