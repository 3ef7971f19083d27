import { describe, expect, it } from 'vitest';
import { decode } from '../../src/dns/codec.ts';
import { type Msg, Rcode, Type } from '../../src/dns/types.ts';
import { DnsError, type Next } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';
import { finalize } from '../../src/server/pipeline.ts';
import { fakeEnv, makeRequest, rr, serve, sortAndCheck } from '../../test/helpers.ts';
import { type CacheConfig, createCache, defaultConfig } from './index.ts';
import { keyOf } from './cache.ts';

const SOA = (ttl = 60, minimum = 30) => `example.org. ${ttl} IN SOA ns.example.org. hostmaster.example.org. 1 7200 1800 86400 ${minimum}`;

interface Shape { rcode?: number; answer?: string[]; ns?: string[]; tc?: boolean; ad?: boolean }

/** A reply to `req` built from zone-file lines. */
function reply(req: Request, s: Shape): Msg {
  const m = req.reply(s.rcode ?? Rcode.NOERROR);
  m.flags.ra = true;
  m.flags.tc = s.tc ?? false;
  m.flags.ad = s.ad ?? false;
  m.answer = (s.answer ?? []).map(rr);
  m.authority = (s.ns ?? []).map(rr);
  return m;
}

/** A `next` that counts its calls and answers with `shape(req)`. */
function upstream(shape: (req: Request) => Shape | Promise<Shape>) {
  const u = {
    calls: 0,
    seen: [] as Request[],
    next: ((req) => {
      u.calls++;
      u.seen.push(req);
      const s = shape(req);
      return s instanceof Promise ? s.then((x) => reply(req, x)) : reply(req, s);
    }) as Next,
  };
  return u;
}

const A = (name: string, ttl = 300, ip = '10.0.0.1') => ({ answer: [`${name} ${ttl} IN A ${ip}`] });

/** A cache on a fake clock (ms). */
function setup(over: (c: CacheConfig) => void = () => undefined) {
  const cfg = defaultConfig(['.']);
  over(cfg);
  const f = fakeEnv();
  const clock = { t: 1_000_000 };
  const cache = createCache(cfg, f.env, { now: () => clock.t });
  const advance = (seconds: number) => { clock.t += seconds * 1000; };
  return { cache, env: f.env, clock, advance, finalShutdown: f.finalShutdown };
}

const q = (name: string, type: number = Type.A, o: Parameters<typeof makeRequest>[2] = {}) => makeRequest(name, type, o);

/** The reply as a client would decode it (TTLs aged by the server's writer). */
function onWire(req: Request, m: Msg): Msg {
  return decode(finalize(req, m, 1232));
}

/** Let background refreshes run. */
const settle = () => new Promise<void>((r) => setTimeout(r, 0));

type MetricEnv = ReturnType<typeof fakeEnv>['env'];
async function metric(env: MetricEnv, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const m = env.metrics.registry.getSingleMetric(name);
  if (!m) return undefined;
  const v = await m.get();
  const hit = v.values.find((x) => Object.entries(labels).every(([k, want]) => String((x.labels as Record<string, unknown>)[k]) === want));
  return hit?.value;
}

describe('cache: positive answers', () => {
  it('answers the second query from the cache', async () => {
    const { cache } = setup();
    const up = upstream((r) => A(r.qname));
    const first = await serve(cache, q('example.org.'), up.next);
    const second = await serve(cache, q('example.org.', Type.A, { id: 7 }), up.next);
    expect(up.calls).toBe(1);
    sortAndCheck(first, { rcode: Rcode.NOERROR, answer: ['example.org. 300 IN A 10.0.0.1'] });
    sortAndCheck(second, { rcode: Rcode.NOERROR, answer: ['example.org. 300 IN A 10.0.0.1'] });
    expect(second.wire).toBeDefined();
    expect(second.id).toBe(7);
    expect(second.flags.ra).toBe(true);
    expect(Object.isFrozen(second.answer)).toBe(true);
  });

  it('keeps the hit path synchronous', () => {
    const { cache } = setup();
    const up = upstream((r) => A(r.qname));
    cache.serveDNS(q('example.org.'), up.next);
    const r = cache.serveDNS(q('example.org.'), up.next);
    expect(r instanceof Promise).toBe(false);
  });

  it('is case-insensitive and separates types and classes', async () => {
    const { cache } = setup();
    const up = upstream((r) => (r.qtype === Type.A ? A(r.qname) : { answer: [`${r.qname} 300 IN AAAA ::1`] }));
    await serve(cache, q('example.org.'), up.next);
    await serve(cache, q('EXAMPLE.Org.'), up.next);
    expect(up.calls).toBe(1);
    await serve(cache, q('example.org.', Type.AAAA), up.next);
    expect(up.calls).toBe(2);
    await serve(cache, q('example.org.', Type.A, { qclass: 3 }), up.next);
    expect(up.calls).toBe(3);
  });

  it('counts the TTL down and misses once it runs out', async () => {
    const { cache, advance } = setup();
    const up = upstream((r) => A(r.qname, 300));
    await serve(cache, q('example.org.'), up.next);
    advance(10.5);
    const req = q('example.org.');
    const m = await serve(cache, req, up.next);
    expect(m.ttlDelta).toBe(10);
    expect(m.answer[0]!.ttl).toBe(300); // shared record untouched; the writer ages it
    sortAndCheck(onWire(req, m), { answer: ['example.org. 290 IN A 10.0.0.1'] });
    // The non-wire path of the server ages too.
    sortAndCheck(decode(finalize(req, { ...m, wire: undefined }, 1232)), { answer: ['example.org. 290 IN A 10.0.0.1'] });
    advance(289);
    sortAndCheck(onWire(req, await serve(cache, q('example.org.'), up.next)), { answer: ['example.org. 1 IN A 10.0.0.1'] });
    expect(up.calls).toBe(1);
    advance(0.5);
    await serve(cache, q('example.org.'), up.next);
    expect(up.calls).toBe(2);
  });

  it('gives every record the entry TTL, as CoreDNS does', async () => {
    const { cache } = setup();
    const up = upstream(() => ({ answer: ['www.example.org. 600 IN CNAME example.org.', 'example.org. 120 IN A 10.0.0.1'] }));
    const req = q('www.example.org.');
    const m = await serve(cache, req, up.next);
    sortAndCheck(onWire(req, m), { answer: ['www.example.org. 120 IN CNAME example.org.', 'example.org. 120 IN A 10.0.0.1'] });
  });

  it('clamps TTLs to [MINTTL, TTL]', async () => {
    const { cache, advance } = setup((c) => { c.success.maxTtl = 30; });
    const up = upstream((r) => (r.name.startsWith('long') ? A(r.qname, 7200) : A(r.qname, 2)));
    const long = q('long.example.org.');
    sortAndCheck(onWire(long, await serve(cache, long, up.next)), { answer: ['long.example.org. 30 IN A 10.0.0.1'] });
    const short = q('short.example.org.');
    sortAndCheck(onWire(short, await serve(cache, short, up.next)), { answer: ['short.example.org. 5 IN A 10.0.0.1'] });
    advance(4);
    await serve(cache, q('short.example.org.'), up.next);
    await serve(cache, q('long.example.org.'), up.next);
    expect(up.calls).toBe(2);
    advance(1);
    await serve(cache, q('short.example.org.'), up.next); // 5 s minimum over
    expect(up.calls).toBe(3);
    advance(25);
    await serve(cache, q('long.example.org.'), up.next); // 30 s maximum over
    expect(up.calls).toBe(4);
  });

  it('takes MINTTL from the success line', async () => {
    const { cache, advance } = setup((c) => { c.success.minTtl = 10; });
    const up = upstream((r) => A(r.qname, 3));
    await serve(cache, q('example.org.'), up.next);
    advance(9);
    await serve(cache, q('example.org.'), up.next);
    expect(up.calls).toBe(1);
  });

  it('keepttl serves the stored TTL', async () => {
    const { cache, advance } = setup((c) => { c.keepTtl = true; });
    const up = upstream((r) => A(r.qname, 100));
    await serve(cache, q('example.org.'), up.next);
    advance(50);
    const req = q('example.org.');
    sortAndCheck(onWire(req, await serve(cache, req, up.next)), { answer: ['example.org. 100 IN A 10.0.0.1'] });
  });

  it('clears AD for clients that asked for neither DO nor AD', async () => {
    const { cache } = setup();
    const up = upstream((r) => ({ ...A(r.qname), ad: true }));
    const req = q('example.org.', Type.A, { edns: { do: true } });
    expect(onWire(req, await serve(cache, req, up.next)).flags.ad).toBe(true);
    const plain = q('example.org.');
    await serve(cache, plain, up.next);
    const again = q('example.org.');
    expect(onWire(again, await serve(cache, again, up.next)).flags.ad).toBe(false);
  });
});

describe('cache: negative answers', () => {
  it('caches NXDOMAIN for min(SOA TTL, SOA MINIMUM)', async () => {
    const { cache, advance, env } = setup();
    const up = upstream(() => ({ rcode: Rcode.NXDOMAIN, ns: [SOA(60, 30)] }));
    const req = q('nope.example.org.');
    const first = await serve(cache, req, up.next);
    sortAndCheck(onWire(req, first), { rcode: Rcode.NXDOMAIN, ns: [SOA(30, 30)] });
    advance(29);
    const again = q('nope.example.org.');
    sortAndCheck(onWire(again, await serve(cache, again, up.next)), { rcode: Rcode.NXDOMAIN, ns: [SOA(1, 30)] });
    expect(up.calls).toBe(1);
    expect(await metric(env, 'coredns_cache_hits_total', { type: 'denial' })).toBe(1);
    advance(1);
    await serve(cache, q('nope.example.org.'), up.next);
    expect(up.calls).toBe(2);
  });

  it('uses the SOA TTL when it is the lower one', async () => {
    const { cache } = setup();
    const up = upstream(() => ({ rcode: Rcode.NXDOMAIN, ns: [SOA(20, 300)] }));
    const req = q('nope.example.org.');
    sortAndCheck(onWire(req, await serve(cache, req, up.next)), { ns: [SOA(20, 300)] });
  });

  it('caches NODATA in the denial cache, limited by the denial TTL', async () => {
    const { cache, advance, env } = setup((c) => { c.denial.maxTtl = 10; });
    const up = upstream(() => ({ ns: [SOA(3600, 3600)] }));
    await serve(cache, q('example.org.', Type.AAAA), up.next);
    advance(9);
    await serve(cache, q('example.org.', Type.AAAA), up.next);
    expect(up.calls).toBe(1);
    expect(cache.size).toEqual([0, 1]);
    expect(await metric(env, 'coredns_cache_entries', { type: 'denial' })).toBe(1);
    advance(1);
    await serve(cache, q('example.org.', Type.AAAA), up.next);
    expect(up.calls).toBe(2);
  });

  it('does not cache a denial without an SOA', async () => {
    const { cache } = setup();
    const up = upstream(() => ({ rcode: Rcode.NXDOMAIN }));
    await serve(cache, q('nope.example.org.'), up.next);
    await serve(cache, q('nope.example.org.'), up.next);
    expect(up.calls).toBe(2);
  });
});

describe('cache: what is not cached', () => {
  it('passes truncated replies through uncached', async () => {
    const { cache } = setup();
    const up = upstream((r) => ({ ...A(r.qname), tc: true }));
    const m = await serve(cache, q('example.org.'), up.next);
    expect(m.flags.tc).toBe(true);
    await serve(cache, q('example.org.'), up.next);
    expect(up.calls).toBe(2);
  });

  it('passes replies with a TTL-0 record through uncached and unchanged', async () => {
    const { cache } = setup();
    const up = upstream((r) => ({ answer: [`${r.qname} 0 IN A 10.0.0.1`, `${r.qname} 30 IN A 10.0.0.2`] }));
    const req = q('example.org.');
    sortAndCheck(onWire(req, await serve(cache, req, up.next)), { answer: ['example.org. 0 IN A 10.0.0.1', 'example.org. 30 IN A 10.0.0.2'] });
    await serve(cache, q('example.org.'), up.next);
    expect(up.calls).toBe(2);
    expect(cache.size).toEqual([0, 0]);
  });

  it('does not cache REFUSED or thrown errors', async () => {
    const { cache } = setup();
    const refused = upstream(() => ({ rcode: Rcode.REFUSED }));
    await serve(cache, q('a.example.org.'), refused.next);
    await serve(cache, q('a.example.org.'), refused.next);
    expect(refused.calls).toBe(2);
    let thrown = 0;
    const failing: Next = () => { thrown++; throw new DnsError(Rcode.SERVFAIL, 'forward', 'no healthy upstream'); };
    await expect(serve(cache, q('b.example.org.'), failing)).rejects.toThrow('no healthy upstream');
    await expect(serve(cache, q('b.example.org.'), failing)).rejects.toThrow('no healthy upstream');
    expect(thrown).toBe(2);
  });

  it('drops replies whose question is not the query', async () => {
    const { cache, env } = setup();
    const next: Next = (req) => {
      const m = reply(req, A('other.example.org.'));
      m.question = [{ name: 'other.example.org.', type: Type.A, class: 1 }];
      return m;
    };
    await serve(cache, q('example.org.'), next);
    expect(cache.size).toEqual([0, 0]);
    expect(await metric(env, 'coredns_cache_drops_total')).toBe(1);
  });

  it('leaves names outside its zones alone', async () => {
    const { cache, env } = setup((c) => { c.zones = ['example.org.']; });
    const up = upstream((r) => A(r.qname));
    await serve(cache, q('www.example.net.'), up.next);
    await serve(cache, q('www.example.net.'), up.next);
    expect(up.calls).toBe(2);
    await serve(cache, q('www.example.org.'), up.next);
    await serve(cache, q('www.example.org.'), up.next);
    expect(up.calls).toBe(3);
    expect(await metric(env, 'coredns_cache_requests_total', { zones: 'example.org.' })).toBe(2);
  });
});

describe('cache: disable (the kubeadm form)', () => {
  it('caches neither class under cluster.local but everything else', async () => {
    const { cache } = setup((c) => { c.success.maxTtl = 30; c.denial.maxTtl = 30; c.disable = { success: ['cluster.local.'], denial: ['cluster.local.'] }; });
    const up = upstream((r) => (r.name.startsWith('nope') ? { rcode: Rcode.NXDOMAIN, ns: [SOA()] } : A(r.qname)));
    for (const name of ['kubernetes.default.svc.cluster.local.', 'nope.default.svc.cluster.local.']) {
      const before = up.calls;
      await serve(cache, q(name), up.next);
      await serve(cache, q(name), up.next);
      expect(up.calls - before, name).toBe(2);
    }
    // Nothing under a zone disabled for both classes can be stored: such names skip the cache's
    // bookkeeping altogether (no key, no lookup, not counted as cache requests).
    expect(cache.size).toEqual([0, 0]);
    for (const name of ['www.example.org.', 'nope.example.org.']) {
      const before = up.calls;
      await serve(cache, q(name), up.next);
      await serve(cache, q(name), up.next);
      expect(up.calls - before, name).toBe(1);
    }
  });

  it('disables one class only', async () => {
    const { cache } = setup((c) => { c.disable.success = ['cluster.local.']; });
    const up = upstream((r) => (r.name.startsWith('nope') ? { rcode: Rcode.NXDOMAIN, ns: [SOA()] } : A(r.qname)));
    await serve(cache, q('svc.cluster.local.'), up.next);
    await serve(cache, q('svc.cluster.local.'), up.next);
    expect(up.calls).toBe(2);
    await serve(cache, q('nope.cluster.local.'), up.next);
    await serve(cache, q('nope.cluster.local.'), up.next);
    expect(up.calls).toBe(3);
  });
});

describe('cache: keys', () => {
  it('keeps DO and CD queries apart', async () => {
    const { cache } = setup();
    const up = upstream((r) => A(r.qname));
    await serve(cache, q('example.org.'), up.next);
    await serve(cache, q('example.org.', Type.A, { edns: { do: true } }), up.next);
    await serve(cache, q('example.org.', Type.A, { cd: true }), up.next);
    await serve(cache, q('example.org.', Type.A, { cd: true, edns: { do: true } }), up.next);
    expect(up.calls).toBe(4);
    await serve(cache, q('example.org.', Type.A, { edns: { do: false } }), up.next); // EDNS without DO = no DO
    await serve(cache, q('example.org.', Type.A, { cd: true, edns: { do: true } }), up.next);
    expect(up.calls).toBe(4);
  });
});

describe('cache: hashed keys', () => {
  /** Two names whose keys collide (30-bit keys: a birthday search finds one in ~2^15 names). */
  let pair: [string, string] | undefined;
  function collision(): [string, string] {
    return pair ??= search();
  }
  function search(): [string, string] {
    const seen = new Map<number, string>();
    for (let i = 0; ; i++) {
      const name = `host${i}.example.org.`;
      const k = keyOf(q(name));
      const other = seen.get(k);
      if (other !== undefined) return [other, name];
      seen.set(k, name);
    }
  }

  it('never answers one name with another that has the same key', async () => {
    const [a, b] = collision();
    const { cache } = setup();
    const up = upstream((r) => A(r.qname, 300, r.name === a ? '10.0.0.1' : '10.0.0.2'));
    await serve(cache, q(a), up.next);
    sortAndCheck(await serve(cache, q(b), up.next), { answer: [`${b} 300 IN A 10.0.0.2`] });
    sortAndCheck(await serve(cache, q(a), up.next), { answer: [`${a} 300 IN A 10.0.0.1`] });
    expect(up.calls).toBe(3);
  });

  it('does not share an upstream call between colliding names', async () => {
    const [a, b] = collision();
    const { cache } = setup();
    const up = upstream(async (r) => { await settle(); return A(r.qname, 300, r.name === a ? '10.0.0.1' : '10.0.0.2'); });
    const [ra, rb] = await Promise.all([serve(cache, q(a), up.next), serve(cache, q(b), up.next)]);
    sortAndCheck(ra, { answer: [`${a} 300 IN A 10.0.0.1`] });
    sortAndCheck(rb, { answer: [`${b} 300 IN A 10.0.0.2`] });
    expect(up.calls).toBe(2);
  });
});

describe('cache: one upstream query per key', () => {
  it('lets concurrent misses wait for the first', async () => {
    const { cache } = setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const up = upstream(async (r) => { await gate; return A(r.qname); });
    const replies = [1, 2, 3, 4, 5].map((id) => serve(cache, q('example.org.', Type.A, { id }), up.next));
    const other = serve(cache, q('example.net.'), up.next);
    await settle();
    expect(up.calls).toBe(2);
    release();
    const got = await Promise.all(replies);
    expect(got.map((m) => m.id)).toEqual([1, 2, 3, 4, 5]);
    for (const m of got) sortAndCheck(m, { answer: ['example.org. 300 IN A 10.0.0.1'] });
    await other;
    expect(up.calls).toBe(2);
  });

  it('shares an uncacheable reply and a failure too', async () => {
    const { cache } = setup();
    let fail = true;
    const up = upstream(async (r) => {
      await settle();
      if (fail) throw new DnsError(Rcode.SERVFAIL, 'forward', 'timeout');
      return { answer: [`${r.qname} 0 IN A 10.0.0.1`] };
    });
    const failed = await Promise.allSettled([serve(cache, q('example.org.'), up.next), serve(cache, q('example.org.'), up.next)]);
    expect(failed.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    expect(up.calls).toBe(1);
    fail = false;
    const ok = await Promise.all([serve(cache, q('example.org.'), up.next), serve(cache, q('example.org.'), up.next)]);
    expect(ok.map((m) => m.answer[0]!.ttl)).toEqual([0, 0]);
    expect(up.calls).toBe(2);
  });

  it('lets a waiter ask again when the shared reply was truncated', async () => {
    const { cache } = setup();
    const up = upstream(async (r) => { await settle(); return { ...A(r.qname), tc: r.proto === 'udp' }; });
    const [udp, tcp] = await Promise.all([serve(cache, q('example.org.'), up.next), serve(cache, q('example.org.', Type.A, { proto: 'tcp' }), up.next)]);
    expect(udp.flags.tc).toBe(true);
    expect(tcp.flags.tc).toBe(false);
    expect(up.calls).toBe(2);
  });
});

describe('cache: prefetch', () => {
  it('refreshes a popular entry near expiry in the background', async () => {
    const { cache, advance, env } = setup((c) => { c.prefetch = { amount: 2, windowMs: 60_000, percentage: 10 }; });
    let ip = '10.0.0.1';
    const up = upstream((r) => A(r.qname, 100, ip));
    await serve(cache, q('example.org.'), up.next);
    advance(50);
    await serve(cache, q('example.org.'), up.next); // popular: 1 hit, TTL 50 left
    advance(41);
    ip = '10.0.0.2';
    const hit = cache.serveDNS(q('example.org.'), up.next) as Msg; // 2 hits, TTL 9 <= 10% of 100
    expect(hit.ttlDelta).toBe(91);
    sortAndCheck(hit, { answer: ['example.org. 100 IN A 10.0.0.1'] }); // still the cached answer
    expect(up.calls).toBe(1); // the refresh starts after the reply
    await settle();
    expect(up.calls).toBe(2);
    expect(up.seen[1]!.proto).toBe('tcp');
    advance(4);
    const fresh = await serve(cache, q('example.org.'), up.next);
    expect(fresh.ttlDelta).toBe(4);
    sortAndCheck(fresh, { answer: ['example.org. 100 IN A 10.0.0.2'] });
    expect(await metric(env, 'coredns_cache_prefetch_total')).toBe(1);
  });

  it('does not prefetch entries that are not popular enough', async () => {
    const { cache, advance } = setup((c) => { c.prefetch = { amount: 3, windowMs: 10_000, percentage: 50 }; });
    const up = upstream((r) => A(r.qname, 100));
    await serve(cache, q('example.org.'), up.next);
    for (const dt of [60, 15, 15]) { // gaps longer than the 10 s window reset the count
      advance(dt);
      await serve(cache, q('example.org.'), up.next);
      await settle();
    }
    expect(up.calls).toBe(1);
  });
});

describe('cache: serve_stale', () => {
  it('immediate: answers with TTL 0 and refreshes in the background', async () => {
    const { cache, advance, env } = setup((c) => { c.serveStale = { ms: 3_600_000, verify: false }; });
    let ip = '10.0.0.1';
    const up = upstream((r) => A(r.qname, 10, ip));
    await serve(cache, q('example.org.'), up.next);
    advance(15);
    ip = '10.0.0.2';
    const req = q('example.org.');
    const stale = cache.serveDNS(req, up.next) as Msg;
    sortAndCheck(onWire(req, stale), { answer: ['example.org. 0 IN A 10.0.0.1'] });
    expect(up.calls).toBe(1);
    await settle();
    expect(up.calls).toBe(2);
    const again = q('example.org.');
    sortAndCheck(onWire(again, await serve(cache, again, up.next)), { answer: ['example.org. 10 IN A 10.0.0.2'] });
    expect(await metric(env, 'coredns_cache_served_stale_total')).toBe(1);
  });

  it('immediate: keeps serving stale while the backend fails, until DURATION is over', async () => {
    const { cache, advance } = setup((c) => { c.serveStale = { ms: 60_000, verify: false }; });
    let broken = false;
    const up = upstream((r) => { if (broken) throw new DnsError(Rcode.SERVFAIL, 'forward', 'down'); return A(r.qname, 10); });
    await serve(cache, q('example.org.'), up.next);
    broken = true;
    for (let i = 0; i < 3; i++) {
      advance(15);
      const req = q('example.org.');
      sortAndCheck(onWire(req, await serve(cache, req, up.next)), { answer: ['example.org. 0 IN A 10.0.0.1'] });
      await settle();
    }
    expect(up.calls).toBe(4);
    advance(60);
    await expect(serve(cache, q('example.org.'), up.next)).rejects.toThrow('down');
  });

  it('verify: serves the fresh answer when the backend has one', async () => {
    const { cache, advance, env } = setup((c) => { c.serveStale = { ms: 3_600_000, verify: true }; });
    let ip = '10.0.0.1';
    const up = upstream((r) => A(r.qname, 10, ip));
    await serve(cache, q('example.org.'), up.next);
    advance(15);
    ip = '10.0.0.2';
    const req = q('example.org.');
    sortAndCheck(onWire(req, await serve(cache, req, up.next)), { answer: ['example.org. 10 IN A 10.0.0.2'] });
    expect(up.calls).toBe(2);
    expect(await metric(env, 'coredns_cache_served_stale_total')).toBeUndefined();
  });

  it('verify: serves stale when the backend throws SERVFAIL', async () => {
    const { cache, advance, env } = setup((c) => { c.serveStale = { ms: 3_600_000, verify: true }; });
    let broken = false;
    const up = upstream(async (r) => { if (broken) throw new DnsError(Rcode.SERVFAIL, 'forward', 'down'); return A(r.qname, 10); });
    await serve(cache, q('example.org.'), up.next);
    advance(15);
    broken = true;
    const req = q('example.org.');
    sortAndCheck(onWire(req, await serve(cache, req, up.next)), { rcode: Rcode.NOERROR, answer: ['example.org. 0 IN A 10.0.0.1'] });
    expect(up.calls).toBe(2);
    expect(await metric(env, 'coredns_cache_served_stale_total')).toBe(1);
  });

  it('verify: serves stale on a SERVFAIL reply and does not cache that reply', async () => {
    const { cache, advance } = setup((c) => { c.serveStale = { ms: 3_600_000, verify: true }; });
    let broken = false;
    const up = upstream((r) => (broken ? { rcode: Rcode.SERVFAIL } : A(r.qname, 10)));
    await serve(cache, q('example.org.'), up.next);
    advance(15);
    broken = true;
    for (let i = 0; i < 2; i++) {
      const req = q('example.org.');
      sortAndCheck(onWire(req, await serve(cache, req, up.next)), { rcode: Rcode.NOERROR, answer: ['example.org. 0 IN A 10.0.0.1'] });
    }
    expect(up.calls).toBe(3);
  });
});

describe('cache: servfail', () => {
  it('keeps SERVFAIL replies for the servfail duration', async () => {
    const { cache, advance } = setup();
    const up = upstream(() => ({ rcode: Rcode.SERVFAIL }));
    await serve(cache, q('example.org.'), up.next);
    advance(4.9);
    const m = await serve(cache, q('example.org.'), up.next);
    expect(m.rcode).toBe(Rcode.SERVFAIL);
    expect(up.calls).toBe(1);
    advance(0.1);
    await serve(cache, q('example.org.'), up.next);
    expect(up.calls).toBe(2);
  });

  it('servfail 0 turns it off', async () => {
    const { cache } = setup((c) => { c.servfailMs = 0; });
    const up = upstream(() => ({ rcode: Rcode.SERVFAIL }));
    await serve(cache, q('example.org.'), up.next);
    await serve(cache, q('example.org.'), up.next);
    expect(up.calls).toBe(2);
  });
});

describe('cache: reply memo terms', () => {
  it('a hit may be reused until the entry expires, aged from when it was stored (the test clock translated to performance.now())', async () => {
    const { cache, advance } = setup();
    const up = upstream((r) => A(r.qname, 300));
    const miss = q('example.org.');
    await serve(cache, miss, up.next);
    expect(miss.memoOff).toBe(true);
    advance(10.5);
    const req = q('example.org.');
    const before = performance.now();
    const m = cache.serveDNS(req, up.next) as Msg;
    const after = performance.now();
    expect(req.memoOff).toBe(false);
    // Stored 10.5 s ago on the cache's clock, expiring 300 s after that: the same instants on the memo's.
    expect(req.memoAgeFrom).toBeGreaterThanOrEqual(before - 10_500 - 1e-6);
    expect(req.memoAgeFrom).toBeLessThanOrEqual(after - 10_500 + 1e-6);
    expect(req.memoUntil - req.memoAgeFrom).toBeCloseTo(300_000, 3);
    // The TTLs as served were aged by the same whole seconds the memo starts from.
    expect(m.ttlDelta).toBe(10);
    expect(req.memoAgeDelta).toBe(10);
    sortAndCheck(onWire(req, m), { answer: ['example.org. 290 IN A 10.0.0.1'] });
  });

  it('without a test clock, until is the expiry and the age counts from the store, both on performance.now()', async () => {
    const f = fakeEnv();
    const cache = createCache(defaultConfig(['.']), f.env);
    const up = upstream((r) => A(r.qname, 300));
    const before = performance.now();
    await serve(cache, q('example.org.'), up.next);
    const req = q('example.org.');
    await serve(cache, req, up.next);
    expect(req.memoAgeFrom).toBeGreaterThanOrEqual(before);
    expect(req.memoAgeFrom).toBeLessThanOrEqual(performance.now());
    expect(req.memoUntil - req.memoAgeFrom).toBe(300_000);
    expect(req.memoAgeDelta).toBe(0);
  });

  it('keepttl: until the expiry, no aging', async () => {
    const { cache } = setup((c) => { c.keepTtl = true; });
    const up = upstream((r) => A(r.qname, 300));
    await serve(cache, q('example.org.'), up.next);
    const req = q('example.org.');
    await serve(cache, req, up.next);
    expect(req.memoOff).toBe(false);
    expect(Number.isNaN(req.memoAgeFrom)).toBe(true);
    expect(req.memoUntil).toBeLessThan(Infinity);
  });

  it('with prefetch, until is when a hit would first look at prefetching', async () => {
    const { cache, advance } = setup((c) => { c.prefetch = { amount: 2, windowMs: 60_000, percentage: 10 }; });
    const up = upstream((r) => A(r.qname, 100));
    await serve(cache, q('example.org.'), up.next);
    const req = q('example.org.');
    await serve(cache, req, up.next);
    // TTL 100, prefetch at 10 s left: 90 s after the store.
    expect(req.memoUntil - req.memoAgeFrom).toBeCloseTo(90_000, 3);
    // Past that point a hit is answered with an until already gone: the memo does not keep it.
    advance(90);
    const late = q('example.org.');
    await serve(cache, late, up.next);
    expect(late.memoUntil).toBeLessThanOrEqual(performance.now());
  });

  it('a reuse counts as a hit does (success and denial), through one counter per server and kind', async () => {
    const { cache, env } = setup();
    const up = upstream((r) => (r.name.startsWith('nx') ? { rcode: Rcode.NXDOMAIN, ns: [SOA()] } : A(r.qname)));
    const names = ['a.example.org.', 'b.example.org.', 'nx.example.org.'];
    for (const n of names) await serve(cache, q(n), up.next);
    const [a, b, nx] = names.map((n) => q(n));
    for (const r of [a!, b!, nx!]) await serve(cache, r, up.next);
    const other = q('a.example.org.', Type.A, { server: 'dns://127.0.0.1:1053' });
    await serve(cache, other, up.next);
    // Shared by entries (a kept reply does not keep a cache entry alive), apart per kind and server.
    expect(a!.memoHit).toBeDefined();
    expect(a!.memoHit).toBe(b!.memoHit);
    expect(nx!.memoHit).not.toBe(a!.memoHit);
    expect(other.memoHit).not.toBe(a!.memoHit);
    const labels = { server: 'dns://:53' };
    expect(await metric(env, 'coredns_cache_requests_total', labels)).toBe(6);
    a!.memoHit!(performance.now());
    b!.memoHit!(performance.now());
    nx!.memoHit!(performance.now());
    expect(await metric(env, 'coredns_cache_requests_total', labels)).toBe(9);
    expect(await metric(env, 'coredns_cache_hits_total', { ...labels, type: 'success' })).toBe(4);
    expect(await metric(env, 'coredns_cache_hits_total', { ...labels, type: 'denial' })).toBe(2);
    expect(await metric(env, 'coredns_cache_misses_total', labels)).toBe(3);
    expect(await metric(env, 'coredns_cache_requests_total', { server: 'dns://127.0.0.1:1053' })).toBe(1);
  });

  it('with prefetch, a reuse also makes the entry popular, as a hit does', async () => {
    const { cache, advance, env } = setup((c) => { c.prefetch = { amount: 3, windowMs: 120_000, percentage: 10 }; });
    const up = upstream((r) => A(r.qname, 100));
    await serve(cache, q('reused.example.org.'), up.next);
    await serve(cache, q('asked.example.org.'), up.next);
    advance(10);
    const reused = q('reused.example.org.');
    await serve(cache, reused, up.next); // 1 hit
    await serve(cache, q('asked.example.org.'), up.next); // 1 hit
    reused.memoHit!(performance.now());
    reused.memoHit!(performance.now()); // reused twice from the memo: 3
    expect(await metric(env, 'coredns_cache_hits_total', { type: 'success' })).toBe(4);
    advance(81); // 9 s left: within 10%
    await serve(cache, q('reused.example.org.'), up.next); // 4 >= 3: prefetch
    await serve(cache, q('asked.example.org.'), up.next); // 2 < 3: not popular enough
    await settle();
    expect(up.calls).toBe(3);
    expect(up.seen[2]!.name).toBe('reused.example.org.');
  });

  it('a miss and a stale answer are not reusable', async () => {
    const { cache, advance } = setup((c) => { c.serveStale = { ms: 3_600_000, verify: false }; });
    const up = upstream((r) => A(r.qname, 10));
    const miss = q('example.org.');
    await serve(cache, miss, up.next);
    expect(miss.memoOff).toBe(true);
    advance(15);
    const stale = q('example.org.');
    sortAndCheck(onWire(stale, await serve(cache, stale, up.next)), { answer: ['example.org. 0 IN A 10.0.0.1'] });
    expect(stale.memoOff).toBe(true);
    await settle();
    const verify = setup((c) => { c.serveStale = { ms: 3_600_000, verify: true }; });
    await serve(verify.cache, q('example.org.'), up.next);
    verify.advance(15);
    const refreshed = q('example.org.');
    await serve(verify.cache, refreshed, up.next);
    expect(refreshed.memoOff).toBe(true);
    const uncached = q('example.com.');
    await serve(cache, uncached, (r) => reply(r, { rcode: Rcode.REFUSED }));
    expect(uncached.memoOff).toBe(true);
  });
});

describe('cache: capacity and metrics', () => {
  it('evicts the least recently used entry and counts it', async () => {
    const { cache, env } = setup((c) => { c.success.capacity = 3; });
    const up = upstream((r) => A(r.qname));
    for (const n of ['a', 'b', 'c']) await serve(cache, q(`${n}.example.org.`), up.next);
    await serve(cache, q('a.example.org.'), up.next); // a is now the most recent
    await serve(cache, q('d.example.org.'), up.next); // evicts b
    expect(cache.size).toEqual([3, 0]);
    expect(up.calls).toBe(4);
    await serve(cache, q('a.example.org.'), up.next);
    expect(up.calls).toBe(4);
    await serve(cache, q('b.example.org.'), up.next);
    expect(up.calls).toBe(5);
    expect(await metric(env, 'coredns_cache_evictions_total', { type: 'success', server: 'dns://:53', zones: '.', view: '' })).toBe(2);
    expect(await metric(env, 'coredns_cache_entries', { type: 'success' })).toBe(3);
  });

  it('exports CoreDNS metric names and labels, per listen address', async () => {
    const { cache, env, finalShutdown } = setup();
    const up = upstream((r) => A(r.qname));
    await serve(cache, q('example.org.'), up.next);
    await serve(cache, q('example.org.'), up.next);
    await serve(cache, q('example.org.', Type.A, { server: 'dns://127.0.0.1:1053' }), up.next);
    const text = await env.metrics.text();
    expect(text).toContain('coredns_cache_requests_total{server="dns://:53",zones=".",view=""} 2');
    expect(text).toContain('coredns_cache_requests_total{server="dns://127.0.0.1:1053",zones=".",view=""} 1');
    expect(text).toContain('coredns_cache_hits_total{server="dns://:53",type="success",zones=".",view=""} 1');
    expect(text).toContain('coredns_cache_misses_total{server="dns://:53",zones=".",view=""} 1');
    expect(text).toContain('coredns_cache_entries{server="dns://:53",type="success",zones=".",view=""} 1');
    expect(text).toContain('coredns_cache_entries{server="dns://:53",type="denial",zones=".",view=""} 0');
    // Scraping again does not count twice; a replaced cache keeps the totals monotonic.
    await serve(cache, q('example.org.'), up.next);
    for (const f of finalShutdown) await f();
    const after = await env.metrics.text();
    expect(after).toContain('coredns_cache_requests_total{server="dns://:53",zones=".",view=""} 3');
    expect(after).not.toContain('coredns_cache_entries{');
  });
});
