// Forwarding against real DNS servers on 127.0.0.1 (test/upstream.ts). Timeouts are shortened through
// ForwardConfig.timeouts so failure paths run in a few hundred milliseconds.
import { afterEach, describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { decode } from '../../src/dns/codec.ts';
import { Rcode, Type } from '../../src/dns/types.ts';
import { DnsError, type Next } from '../../src/plugin.ts';
import { fakeEnv, makeRequest, queryBytes, serve, sortAndCheck } from '../../test/helpers.ts';
import { udpExchange, tcpExchange } from '../../test/client.ts';
import { startTest } from '../../test/server/harness.ts';
import { deadPort, startUpstream, type Upstream } from '../../test/upstream.ts';
import type { ForwardConfig, ForwardTimeouts } from './config.ts';
import type { Forward } from './forward.ts';
import { plugin } from './index.ts';

const fast: ForwardTimeouts = { attemptMs: 300, totalMs: 2000, healthCheckMs: 150 };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function upstream(): Promise<Upstream> {
  const u = await startUpstream();
  cleanups.push(() => u.close());
  return u;
}

function parse(directive: string): ForwardConfig {
  const cf = parseCorefile(`. {\n${directive}\n}\n`, { file: 'Corefile', env: {} });
  const b = cf.blocks[0]!;
  return plugin.parse(new Controller(b.directives[0]!, b));
}

/** Set up a forward from Corefile text, with short timeouts; shut down after the test. */
function forward(directive: string, over: Partial<ForwardConfig> = {}, fe = fakeEnv()) {
  const cfg = { ...parse(directive), timeouts: fast, ...over };
  const h = plugin.setup(cfg, fe.env) as Forward;
  cleanups.push(async () => { for (const f of fe.finalShutdown.splice(0)) await f(); });
  return { h, fe, metrics: fe.env.metrics };
}

async function metric(fe: ReturnType<typeof fakeEnv>, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = fe.env.metrics.registry.getSingleMetric(name);
  if (!m) return 0;
  const data = await m.get();
  let sum = 0;
  for (const v of data.values) {
    const l = v.labels as Record<string, string | number>;
    if ('metricName' in v && v.metricName !== name && v.metricName !== `${name}_count`) continue;
    if (Object.entries(labels).every(([k, x]) => String(l[k]) === x)) sum += v.value;
  }
  return sum;
}

const answerA = (ip: string) => (q: { qname: string }) => ({ answer: [`${q.qname} 5 IN A ${ip}`] });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const sent = (u: Upstream, name: string) => u.count({ name });

describe('forward: forwarding', () => {
  it('forwards a query and returns the upstream answer as is', async () => {
    const u = await upstream();
    u.handle(answerA('10.0.0.1'));
    const { h, fe } = forward(`forward . ${u.addr}`);
    const req = makeRequest('Www.Example.ORG.', Type.A, { id: 0x4242, edns: { udpSize: 4096, do: true } });
    const m = await serve(h, req);
    sortAndCheck(m, { rcode: Rcode.NOERROR, answer: ['www.example.org. 5 IN A 10.0.0.1'] });
    expect(u.queries).toHaveLength(1);
    const q = u.queries[0]!;
    expect(q.proto).toBe('udp');
    expect(q.qname).toBe('Www.Example.ORG.'); // the client's letter case goes upstream untouched
    expect(q.rd).toBe(true);
    // EDNS kept (DO bit too), the UDP size capped at what we accept from the client.
    expect(q.edns).toEqual({ udpSize: 1232, do: true });
    expect(req.getMeta('forward/upstream')).toBe(u.addr);
    expect(h.inFlight).toBe(0);
    expect(h.proxies[0]!.stats()).toEqual({ udpInFlight: 0, tcpConns: 0, tcpInFlight: 0, probing: false });
    expect(await metric(fe, 'coredns_proxy_request_duration_seconds', { proxy_name: 'forward', to: u.addr, rcode: 'NOERROR' })).toBe(1);
  });

  it('uses a fresh random ID and source port for every query', async () => {
    const u = await upstream();
    u.handle(answerA('10.0.0.1'));
    const { h } = forward(`forward . ${u.addr}`);
    for (let i = 0; i < 20; i++) await serve(h, makeRequest('a.example.', Type.A, { id: 7 }));
    const ids = new Set(u.queries.map((q) => q.id));
    const ports = new Set(u.queries.map((q) => q.port));
    expect(ids.size).toBeGreaterThan(15);
    expect(ids.has(7)).toBe(false);
    expect(ports.size).toBeGreaterThan(15);
  });

  it('passes the query to next when it is outside FROM or under an except name', async () => {
    const u = await upstream();
    u.handle(answerA('10.0.0.1'));
    const { h } = forward(`forward example.org ${u.addr} {\nexcept internal.example.org\n}`);
    let nexts = 0;
    const next: Next = (r) => { nexts++; return r.reply(Rcode.NXDOMAIN); };
    expect((await serve(h, makeRequest('x.internal.example.org.', Type.A), next)).rcode).toBe(Rcode.NXDOMAIN);
    expect((await serve(h, makeRequest('internal.example.org.', Type.A), next)).rcode).toBe(Rcode.NXDOMAIN);
    expect((await serve(h, makeRequest('example.com.', Type.A), next)).rcode).toBe(Rcode.NXDOMAIN);
    expect(nexts).toBe(3);
    expect((await serve(h, makeRequest('www.example.org.', Type.A), next)).rcode).toBe(Rcode.NOERROR);
    // FROM itself is forwarded even if an except name equals it (CoreDNS isAllowedDomain).
    expect((await serve(h, makeRequest('example.org.', Type.A), next)).rcode).toBe(Rcode.NOERROR);
    expect(nexts).toBe(3);
    expect(u.queries.map((q) => q.name)).toEqual(['www.example.org.', 'example.org.']);
  });

  it('reply memo: an answer from upstream is never reused; queries it passes on keep their terms', async () => {
    const u = await upstream();
    u.handle(answerA('10.0.0.1'));
    const { h } = forward(`forward example.org ${u.addr} {\nexcept internal.example.org\n}`);
    expect(h.memo).toBe(true);
    const next: Next = (r) => r.reply(Rcode.NXDOMAIN);
    const forwarded = makeRequest('www.example.org.', Type.A);
    expect((await serve(h, forwarded, next)).rcode).toBe(Rcode.NOERROR);
    expect(forwarded.memoOff).toBe(true);
    for (const name of ['x.internal.example.org.', 'example.com.']) {
      const passed = makeRequest(name, Type.A);
      await serve(h, passed, next);
      expect(passed.memoOff).toBe(false);
    }
  });

  it('forwards over TCP when the client used TCP, and with force_tcp', async () => {
    const u = await upstream();
    u.handle(answerA('10.0.0.2'));
    const a = forward(`forward . ${u.addr}`);
    sortAndCheck(await serve(a.h, makeRequest('t.example.', Type.A, { proto: 'tcp' })), { answer: ['t.example. 5 IN A 10.0.0.2'] });
    const b = forward(`forward . ${u.addr} {\nforce_tcp\n}`);
    sortAndCheck(await serve(b.h, makeRequest('u.example.', Type.A)), { answer: ['u.example. 5 IN A 10.0.0.2'] });
    expect(u.count({ proto: 'tcp' })).toBe(2);
    const c = forward(`forward . ${u.addr} {\nprefer_udp\n}`);
    await serve(c.h, makeRequest('v.example.', Type.A, { proto: 'tcp' }));
    expect(u.count({ proto: 'udp', name: 'v.example.' })).toBe(1);
  });

  it('works behind the real server core (ID and question patched by the server)', async () => {
    const u = await upstream();
    u.handle(answerA('10.9.9.9'));
    const { h } = forward(`forward . ${u.addr}`);
    const srv = await startTest([{ zones: ['.'], handlers: [h] }]);
    cleanups.push(() => srv.stop());
    const r = await udpExchange(srv.port, queryBytes('Srv.Example.', Type.A, { id: 0xbeef }));
    const m = decode(r!);
    expect(m.id).toBe(0xbeef);
    expect(m.question[0]!.name).toBe('Srv.Example.');
    sortAndCheck(m, { answer: ['srv.example. 5 IN A 10.9.9.9'] });
    const t = decode((await tcpExchange(srv.tcpPort, queryBytes('tcp.example.', Type.A, { id: 0x1111 })))!);
    expect(t.id).toBe(0x1111);
    sortAndCheck(t, { answer: ['tcp.example. 5 IN A 10.9.9.9'] });
  });
});

describe('forward: spoofing and garbage', () => {
  it.each(['udp', 'tcp'] as const)('ignores replies with a wrong ID or question, then takes the right one (%s)', async (proto) => {
    const u = await upstream();
    u.handle((q) => ({
      answer: [`${q.qname} 5 IN A 10.0.0.3`],
      before: [
        { wrongId: true, answer: [`${q.qname} 5 IN A 6.6.6.6`] },
        { wrongQuestion: true, answer: ['wrong-question.invalid. 5 IN A 6.6.6.6'] },
        { raw: Uint8Array.from([1, 2, 3]) },
      ],
      delayMs: 20,
    }));
    const { h } = forward(`forward . ${u.addr}`);
    const m = await serve(h, makeRequest('spoof.example.', Type.A, { proto }));
    sortAndCheck(m, { answer: ['spoof.example. 5 IN A 10.0.0.3'] });
  });

  it('times out when only spoofed replies come, and tries the next upstream', async () => {
    const bad = await upstream();
    bad.handle((q) => ({ wrongId: true, answer: [`${q.qname} 5 IN A 6.6.6.6`] }));
    const good = await upstream();
    good.handle(answerA('10.0.0.4'));
    const { h } = forward(`forward . ${bad.addr} ${good.addr} {\npolicy sequential\n}`);
    const t0 = performance.now();
    sortAndCheck(await serve(h, makeRequest('s.example.', Type.A)), { answer: ['s.example. 5 IN A 10.0.0.4'] });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(fast.attemptMs - 20);
  });

  it('treats an undecodable reply as a failure of that upstream', async () => {
    const bad = await upstream();
    // Right ID and question, then an A record whose RDATA runs past the end of the message.
    bad.handle((q) => ({
      raw: Uint8Array.from([q.id >> 8, q.id & 0xff, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, ...q.raw.slice(12),
        0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0]),
    }));
    const good = await upstream();
    good.handle(answerA('10.0.0.5'));
    const { h } = forward(`forward . ${bad.addr} ${good.addr} {\npolicy sequential\n}`);
    sortAndCheck(await serve(h, makeRequest('g.example.', Type.A)), { answer: ['g.example. 5 IN A 10.0.0.5'] });
    expect(bad.count({ name: 'g.example.' })).toBe(1);
  });
});

describe('forward: truncation', () => {
  const big = (q: { qname: string }) => ({
    truncate: true,
    answer: Array.from({ length: 40 }, (_, i) => `${q.qname} 5 IN TXT "${'x'.repeat(40)}${i}"`),
  });

  it('returns a truncated UDP answer to a UDP client (it retries over TCP itself, as with CoreDNS)', async () => {
    const u = await upstream();
    u.handle(big);
    const { h } = forward(`forward . ${u.addr}`);
    const m = await serve(h, makeRequest('big.example.', Type.TXT));
    expect(m.flags.tc).toBe(true);
    expect(u.count({ proto: 'tcp' })).toBe(0);
    const t = await serve(h, makeRequest('big.example.', Type.TXT, { proto: 'tcp' }));
    expect(t.flags.tc).toBe(false);
    expect(t.answer).toHaveLength(40);
  });

  it('prefer_udp: a truncated UDP answer is asked again over TCP to the same upstream', async () => {
    const u = await upstream();
    u.handle(big);
    const other = await upstream();
    const { h, fe } = forward(`forward . ${u.addr} ${other.addr} {\nprefer_udp\npolicy sequential\n}`);
    const m = await serve(h, makeRequest('big.example.', Type.TXT, { proto: 'tcp' }));
    expect(m.flags.tc).toBe(false);
    expect(m.answer).toHaveLength(40);
    expect(u.count({ proto: 'udp' })).toBe(1);
    expect(u.count({ proto: 'tcp' })).toBe(1);
    expect(other.count()).toBe(0);
    expect(await metric(fe, 'coredns_proxy_conn_cache_misses_total', { to: u.addr, proto: 'tcp' })).toBe(1);
  });
});

describe('forward: failures and health', () => {
  it('an upstream that times out is probed, marked down and skipped; a health check brings it back', async () => {
    const a = await upstream();
    const b = await upstream();
    a.handle(() => ({ drop: true }));
    b.handle(answerA('10.0.0.6'));
    const { h, fe } = forward(`forward . ${a.addr} ${b.addr} {\npolicy sequential\nhealth_check 50ms\n}`);
    const pa = h.proxies[0]!;

    // First query: a times out (one attempt), b answers.
    const t0 = performance.now();
    sortAndCheck(await serve(h, makeRequest('one.example.', Type.A)), { answer: ['one.example. 5 IN A 10.0.0.6'] });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(fast.attemptMs - 20);
    expect(sent(a, 'one.example.')).toBe(1);

    // The failed query started the probe: `. IN NS` with RD, until max_fails (2) is exceeded.
    await waitFor(() => pa.down(2), 3000);
    const probes = a.queries.filter((q) => q.name === '.' && q.type === Type.NS);
    expect(probes.length).toBeGreaterThanOrEqual(3);
    expect(probes.every((q) => q.rd && q.proto === 'udp')).toBe(true);
    expect(await metric(fe, 'coredns_proxy_healthcheck_failures_total', { proxy_name: 'forward', to: a.addr })).toBeGreaterThanOrEqual(3);

    // Down: skipped at once.
    const t1 = performance.now();
    sortAndCheck(await serve(h, makeRequest('two.example.', Type.A)), { answer: ['two.example. 5 IN A 10.0.0.6'] });
    expect(performance.now() - t1).toBeLessThan(fast.attemptMs / 2);
    expect(sent(a, 'two.example.')).toBe(0);

    // The upstream recovers: the probe still running gets an answer and clears the fails.
    a.handle(answerA('10.0.0.7'));
    await waitFor(() => !pa.down(2) && !pa.stats().probing, 2000);
    expect(pa.fails).toBe(0);
    sortAndCheck(await serve(h, makeRequest('three.example.', Type.A)), { answer: ['three.example. 5 IN A 10.0.0.7'] });
  });

  it('health_check no_rec and domain shape the probe; force_tcp probes over TCP', async () => {
    const a = await upstream();
    a.handle(() => ({ drop: true }));
    const { h } = forward(`forward . ${a.addr} {\nhealth_check 30ms no_rec domain probe.example\nforce_tcp\n}`);
    await serve(h, makeRequest('x.example.', Type.A)).catch(() => undefined);
    await waitFor(() => a.count({ name: 'probe.example.' }) >= 1, 2000);
    const p = a.queries.find((q) => q.name === 'probe.example.')!;
    expect(p).toMatchObject({ type: Type.NS, rd: false, proto: 'tcp' });
  });

  it('max_fails 0: never probes, never down', async () => {
    const a = await upstream();
    a.handle(() => ({ drop: true }));
    const { h } = forward(`forward . ${a.addr} {\nmax_fails 0\nhealth_check 20ms\n}`, { timeouts: { ...fast, totalMs: 700 } });
    await expect(serve(h, makeRequest('x.example.', Type.A))).rejects.toBeInstanceOf(DnsError);
    await sleep(100);
    expect(a.count({ name: '.' })).toBe(0);
    expect(h.proxies[0]!.down(0)).toBe(false);
  });

  it('all upstreams down: one random try, then SERVFAIL quickly (and counts healthcheck_broken)', async () => {
    const a = await upstream();
    const b = await upstream();
    a.handle(() => ({ drop: true }));
    b.handle(() => ({ drop: true }));
    const { h, fe } = forward(`forward . ${a.addr} ${b.addr} {\nhealth_check 30ms\n}`);
    // The first query fails after two rounds over both upstreams (bounded, not the full 5 s).
    const t0 = performance.now();
    const err = await serve(h, makeRequest('x.example.', Type.A)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DnsError);
    expect((err as DnsError).rcode).toBe(Rcode.SERVFAIL);
    expect(performance.now() - t0).toBeLessThan(4 * fast.attemptMs + 200);
    await waitFor(() => h.proxies.every((p) => p.down(2)), 3000);

    const t1 = performance.now();
    const err2 = await serve(h, makeRequest('y.example.', Type.A)).catch((e: unknown) => e);
    expect((err2 as DnsError).rcode).toBe(Rcode.SERVFAIL);
    expect(performance.now() - t1).toBeLessThan(2 * fast.attemptMs);
    expect(sent(a, 'y.example.') + sent(b, 'y.example.')).toBe(1);
    expect(await metric(fe, 'coredns_forward_healthcheck_broken_total')).toBe(1);
  });

  it('failfast_all_unhealthy_upstreams: SERVFAIL at once when all are down', async () => {
    const a = await upstream();
    a.handle(() => ({ drop: true }));
    const { h } = forward(`forward . ${a.addr} {\nhealth_check 30ms\nfailfast_all_unhealthy_upstreams\n}`);
    await serve(h, makeRequest('x.example.', Type.A)).catch(() => undefined);
    await waitFor(() => h.proxies[0]!.down(2), 3000);
    const t0 = performance.now();
    const err = await serve(h, makeRequest('y.example.', Type.A)).catch((e: unknown) => e);
    expect((err as DnsError).rcode).toBe(Rcode.SERVFAIL);
    expect((err as DnsError).message).toBe('no healthy proxies');
    expect(performance.now() - t0).toBeLessThan(100);
    expect(sent(a, 'y.example.')).toBe(0);
  });

  it('refused ports fail fast and never hang', async () => {
    const port = await deadPort();
    const { h } = forward(`forward . 127.0.0.1:${port}`);
    for (const proto of ['udp', 'tcp'] as const) {
      const t0 = performance.now();
      const err = await serve(h, makeRequest('x.example.', Type.A, { proto })).catch((e: unknown) => e);
      expect((err as DnsError).rcode).toBe(Rcode.SERVFAIL);
      expect(performance.now() - t0).toBeLessThan(fast.attemptMs);
    }
    expect(h.inFlight).toBe(0);
  });

  it('max_connect_attempts caps the failed attempts of one query', async () => {
    const a = await upstream();
    const b = await upstream();
    a.handle(() => ({ drop: true }));
    b.handle(() => ({ drop: true }));
    const { h } = forward(`forward . ${a.addr} ${b.addr} {\nmax_connect_attempts 1\n}`);
    const t0 = performance.now();
    await expect(serve(h, makeRequest('x.example.', Type.A))).rejects.toBeInstanceOf(DnsError);
    expect(performance.now() - t0).toBeLessThan(2 * fast.attemptMs);
    expect(a.count({ name: 'x.example.' }) + b.count({ name: 'x.example.' })).toBe(1);
  });

  it('stays within the total deadline', async () => {
    const a = await upstream();
    a.handle(() => ({ drop: true }));
    const { h } = forward(`forward . ${a.addr} {\nmax_connect_attempts 100\n}`, { timeouts: { attemptMs: 300, totalMs: 700, healthCheckMs: 100 } });
    const t0 = performance.now();
    await expect(serve(h, makeRequest('x.example.', Type.A))).rejects.toBeInstanceOf(DnsError);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(680);
    expect(took).toBeLessThan(1000);
  });
});

describe('forward: rcodes', () => {
  it('returns an upstream SERVFAIL as is without failover', async () => {
    const a = await upstream();
    const b = await upstream();
    a.handle(() => ({ rcode: Rcode.SERVFAIL }));
    b.handle(answerA('10.0.0.8'));
    const { h } = forward(`forward . ${a.addr} ${b.addr} {\npolicy sequential\n}`);
    expect((await serve(h, makeRequest('f.example.', Type.A))).rcode).toBe(Rcode.SERVFAIL);
    expect(b.count()).toBe(0);
  });

  it('failover SERVFAIL: tries the next upstream', async () => {
    const a = await upstream();
    const b = await upstream();
    a.handle(() => ({ rcode: Rcode.SERVFAIL }));
    b.handle(answerA('10.0.0.8'));
    const { h } = forward(`forward . ${a.addr} ${b.addr} {\npolicy sequential\nfailover SERVFAIL REFUSED\n}`);
    sortAndCheck(await serve(h, makeRequest('f.example.', Type.A)), { rcode: Rcode.NOERROR, answer: ['f.example. 5 IN A 10.0.0.8'] });
  });

  it('failover: when every upstream fails over, the last answer is returned after one round', async () => {
    const ups = [await upstream(), await upstream(), await upstream()];
    ups.forEach((u, i) => u.handle(() => ({ rcode: i === 2 ? Rcode.REFUSED : Rcode.SERVFAIL })));
    const { h } = forward(`forward . ${ups.map((u) => u.addr).join(' ')} {\npolicy sequential\nfailover SERVFAIL REFUSED\n}`);
    const t0 = performance.now();
    expect((await serve(h, makeRequest('f.example.', Type.A))).rcode).toBe(Rcode.REFUSED);
    expect(performance.now() - t0).toBeLessThan(200);
    expect(ups.map((u) => u.count())).toEqual([1, 1, 1]);
  });

  it('next NXDOMAIN: hands the query to the following forward', async () => {
    const a = await upstream();
    const b = await upstream();
    a.handle(() => ({ rcode: Rcode.NXDOMAIN }));
    b.handle(answerA('10.0.0.9'));
    const fe = fakeEnv();
    fe.env.block.plugins = ['forward', 'forward'];
    const first = forward(`forward . ${a.addr} {\nnext NXDOMAIN\n}`, {}, fe);
    const second = forward(`forward . ${b.addr} {\nnext NXDOMAIN\n}`, {}, fe);
    const chain: Next = (r) => first.h.serveDNS(r, (r2) => second.h.serveDNS(r2, (r3) => r3.reply(Rcode.REFUSED)));
    sortAndCheck(await chain(makeRequest('n.example.', Type.A)), { answer: ['n.example. 5 IN A 10.0.0.9'] });
    // The last forward has no forward after it: its NXDOMAIN is returned, not passed on.
    b.handle(() => ({ rcode: Rcode.NXDOMAIN }));
    expect((await chain(makeRequest('m.example.', Type.A))).rcode).toBe(Rcode.NXDOMAIN);
  });
});

describe('forward: max_concurrent', () => {
  it('refuses queries above the limit at once, counts them, and keeps no state for them', async () => {
    const u = await upstream();
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    u.handle(async (q) => { await gate; return { answer: [`${q.qname} 5 IN A 10.0.1.1`] }; });
    const { h, fe } = forward(`forward . ${u.addr} {\nmax_concurrent 2\n}`, { timeouts: { ...fast, attemptMs: 5000, totalMs: 5000 } });
    const slow = [serve(h, makeRequest('s1.example.', Type.A)), serve(h, makeRequest('s2.example.', Type.A))];
    expect(h.inFlight).toBe(2);
    const heapBefore = process.memoryUsage().heapUsed;
    let refused = 0;
    for (let i = 0; i < 10_000; i++) {
      if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
      try {
        await h.serveDNS(makeRequest('r.example.', Type.A), () => { throw new Error('no next'); });
      } catch (e) {
        if (e instanceof DnsError && e.rcode === Rcode.REFUSED) refused++;
      }
    }
    expect(refused).toBe(10_000);
    expect(h.inFlight).toBe(2);
    expect(h.proxies[0]!.stats().udpInFlight).toBe(2);
    expect(await metric(fe, 'coredns_forward_max_concurrent_rejects_total')).toBe(10_000);
    expect(u.count({ name: 'r.example.' })).toBe(0);
    // Rejections keep nothing: the heap does not grow by anything like 10k pending entries.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(20 * 1024 * 1024);
    release();
    await Promise.all(slow);
    expect(h.inFlight).toBe(0);
    expect(h.proxies[0]!.stats()).toEqual({ udpInFlight: 0, tcpConns: 0, tcpInFlight: 0, probing: false });
    sortAndCheck(await serve(h, makeRequest('after.example.', Type.A)), { answer: ['after.example. 5 IN A 10.0.1.1'] });
  });
});

describe('forward: TCP connection cache', () => {
  it('reuses one connection for sequential queries and counts hits and misses', async () => {
    const u = await upstream();
    u.handle(answerA('10.0.2.1'));
    const { h, fe } = forward(`forward . ${u.addr} {\nforce_tcp\n}`);
    for (let i = 0; i < 5; i++) sortAndCheck(await serve(h, makeRequest(`q${i}.example.`, Type.A)), { answer: [`q${i}.example. 5 IN A 10.0.2.1`] });
    expect(u.tcpConnections).toBe(1);
    expect(u.count({ proto: 'tcp' })).toBe(5);
    expect(await metric(fe, 'coredns_proxy_conn_cache_misses_total', { proxy_name: 'forward', to: u.addr, proto: 'tcp' })).toBe(1);
    expect(await metric(fe, 'coredns_proxy_conn_cache_hits_total', { proxy_name: 'forward', to: u.addr, proto: 'tcp' })).toBe(4);
    expect(h.proxies[0]!.stats()).toMatchObject({ tcpConns: 1, tcpInFlight: 0 });
  });

  it('pipelines concurrent queries on few connections; answers out of order are matched by ID', async () => {
    const u = await upstream();
    // Later queries answered sooner: replies come back in reverse order.
    u.handle((q) => ({ delayMs: 100 - Number(q.name.slice(1, q.name.indexOf('.'))) * 3, answer: [`${q.qname} 5 IN A 10.0.2.2`] }));
    const { h } = forward(`forward . ${u.addr} {\nforce_tcp\n}`);
    const ms = await Promise.all(Array.from({ length: 30 }, (_, i) => serve(h, makeRequest(`p${i}.example.`, Type.A))));
    ms.forEach((m, i) => sortAndCheck(m, { answer: [`p${i}.example. 5 IN A 10.0.2.2`] }));
    expect(u.tcpConnections).toBeLessThanOrEqual(2);
  });

  it('closes idle connections after expire, and opens a new one later', async () => {
    const u = await upstream();
    u.handle(answerA('10.0.2.3'));
    const { h } = forward(`forward . ${u.addr} {\nforce_tcp\nexpire 100ms\n}`);
    await serve(h, makeRequest('e1.example.', Type.A));
    expect(u.openTcpConnections).toBe(1);
    await waitFor(() => u.openTcpConnections === 0, 1000);
    expect(h.proxies[0]!.stats().tcpConns).toBe(0);
    await serve(h, makeRequest('e2.example.', Type.A));
    expect(u.tcpConnections).toBe(2);
  });

  it('retries transparently when the upstream closed a cached connection', async () => {
    const u = await upstream();
    u.handle((q) => (q.name === 'close.example.' && q.conn === 1 ? { closeTcp: true } : { answer: [`${q.qname} 5 IN A 10.0.2.4`] }));
    const { h } = forward(`forward . ${u.addr} {\nforce_tcp\n}`);
    await serve(h, makeRequest('warm.example.', Type.A));
    sortAndCheck(await serve(h, makeRequest('close.example.', Type.A)), { answer: ['close.example. 5 IN A 10.0.2.4'] });
    expect(u.tcpConnections).toBe(2);
    expect(h.proxies[0]!.fails).toBe(0);
  });

  it('max_idle_conns bounds the idle connections kept', async () => {
    const u = await upstream();
    u.handle((q) => ({ delayMs: 30, answer: [`${q.qname} 5 IN A 10.0.2.5`] }));
    const { h } = forward(`forward . ${u.addr} {\nforce_tcp\nmax_idle_conns 1\n}`);
    // 40 concurrent queries need 3 connections (16 in flight each); afterwards only one stays.
    await Promise.all(Array.from({ length: 40 }, (_, i) => serve(h, makeRequest(`i${i}.example.`, Type.A))));
    expect(u.tcpConnections).toBe(3);
    await waitFor(() => u.openTcpConnections === 1, 1000);
    expect(h.proxies[0]!.stats().tcpConns).toBe(1);
  });
});

describe('forward: policies and shutdown', () => {
  it('round_robin rotates the first upstream; sequential always starts with the first', async () => {
    const ups = [await upstream(), await upstream(), await upstream()];
    ups.forEach((u) => u.handle(answerA('10.0.3.1')));
    const rr = forward(`forward . ${ups.map((u) => u.addr).join(' ')} {\npolicy round_robin\n}`);
    for (let i = 0; i < 6; i++) await serve(rr.h, makeRequest('r.example.', Type.A));
    expect(ups.map((u) => u.count())).toEqual([2, 2, 2]);
    ups.forEach((u) => u.reset());
    const seq = forward(`forward . ${ups.map((u) => u.addr).join(' ')} {\npolicy sequential\n}`);
    for (let i = 0; i < 4; i++) await serve(seq.h, makeRequest('s.example.', Type.A));
    expect(ups.map((u) => u.count())).toEqual([4, 0, 0]);
  });

  it('random spreads queries over the upstreams', async () => {
    const ups = [await upstream(), await upstream()];
    ups.forEach((u) => u.handle(answerA('10.0.3.2')));
    const { h } = forward(`forward . ${ups.map((u) => u.addr).join(' ')}`);
    for (let i = 0; i < 40; i++) await serve(h, makeRequest('x.example.', Type.A));
    expect(ups[0]!.count()).toBeGreaterThan(5);
    expect(ups[1]!.count()).toBeGreaterThan(5);
  });

  it('final shutdown ends queries in flight, closes connections and stops probes', async () => {
    const u = await upstream();
    u.handle((q) => (q.proto === 'tcp' ? { answer: [`${q.qname} 5 IN A 10.0.4.1`] } : { drop: true }));
    const fe = fakeEnv();
    const { h } = forward(`forward . ${u.addr} {\nhealth_check 20ms\n}`, { timeouts: { ...fast, attemptMs: 5000, totalMs: 5000 } }, fe);
    await serve(h, makeRequest('tcp.example.', Type.A, { proto: 'tcp' }));
    const pending = serve(h, makeRequest('hang.example.', Type.A)).catch((e: unknown) => e);
    await waitFor(() => h.proxies[0]!.stats().udpInFlight === 1, 1000);
    for (const f of fe.finalShutdown.splice(0)) await f();
    const err = await pending;
    expect(err).toBeInstanceOf(DnsError);
    expect(h.proxies[0]!.stats()).toEqual({ udpInFlight: 0, tcpConns: 0, tcpInFlight: 0, probing: false });
    await waitFor(() => u.openTcpConnections === 0, 1000);
  });
});

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error('waitFor: condition not met in time');
    await sleep(10);
  }
}
