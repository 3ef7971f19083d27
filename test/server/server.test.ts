// The server core over real UDP and TCP sockets on loopback.
import { afterEach, describe, expect, it } from 'vitest';
import { decode } from '../../src/dns/codec.ts';
import { type Msg, Rcode, Type } from '../../src/dns/types.ts';
import { DnsError, type Handler } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';
import { queryBytes, sortAndCheck } from '../helpers.ts';
import { tcpConnect, tcpExchange, udpExchange } from '../client.ts';
import { startTest } from './harness.ts';

function answering(name: string, make: (req: Request) => Msg): Handler {
  return { name, serveDNS: (req) => make(req) };
}
const aRecord = (zoneTag: string) => answering('static', (req) => {
  const m = req.reply();
  m.flags.aa = true;
  m.answer.push({ name: req.qname, type: Type.A, class: 1, ttl: 5, data: zoneTag });
  return m;
});
const many = (n: number) => answering('many', (req) => {
  const m = req.reply();
  for (let i = 0; i < n; i++) m.answer.push({ name: req.qname, type: Type.A, class: 1, ttl: 5, data: `10.0.${i >> 8}.${i & 255}` });
  return m;
});
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

let stops: Array<() => Promise<void>> = [];
afterEach(async () => { for (const s of stops) await s(); stops = []; });
async function start(...args: Parameters<typeof startTest>) {
  const s = await startTest(...args);
  stops.push(s.stop);
  return s;
}

describe('server over UDP', () => {
  it('answers a query with the client ID and question case', async () => {
    const s = await start([{ zones: ['.'], handlers: [aRecord('10.0.0.1')] }]);
    const r = decode((await udpExchange(s.port, queryBytes('WwW.Example.ORG.', Type.A, { id: 4242 })))!);
    expect(r.id).toBe(4242);
    expect(r.flags.qr).toBe(true);
    expect(r.flags.rd).toBe(true);
    expect(r.question[0]!.name).toBe('WwW.Example.ORG.');
    sortAndCheck(r, { rcode: Rcode.NOERROR, answer: ['www.example.org. 5 IN A 10.0.0.1'] });
  });

  it('routes by the longest matching zone and refuses names outside every zone', async () => {
    const s = await start([
      { zones: ['example.org.'], handlers: [aRecord('10.0.0.1')] },
      { zones: ['sub.example.org.'], handlers: [aRecord('10.0.0.2')] },
    ]);
    const a = decode((await udpExchange(s.port, queryBytes('x.sub.example.org.', Type.A)))!);
    expect((a.answer[0]!.data as string)).toBe('10.0.0.2');
    const b = decode((await udpExchange(s.port, queryBytes('x.example.org.', Type.A)))!);
    expect((b.answer[0]!.data as string)).toBe('10.0.0.1');
    const c = decode((await udpExchange(s.port, queryBytes('example.com.', Type.A)))!);
    expect(c.rcode).toBe(Rcode.REFUSED);
  });

  it('drops datagrams that are not queries and FORMERRs bad ones', async () => {
    const s = await start([{ zones: ['.'], handlers: [aRecord('10.0.0.1')] }]);
    const q = queryBytes('example.org.', Type.A, { id: 7 });
    const asResponse = q.slice(); asResponse[2]! |= 0x80;
    expect(await udpExchange(s.port, asResponse, { timeoutMs: 300 })).toBeUndefined();
    expect(await udpExchange(s.port, q.slice(0, 7), { timeoutMs: 300 })).toBeUndefined();
    const two = q.slice(); two[5] = 2;
    const f = decode((await udpExchange(s.port, two))!);
    expect(f.rcode).toBe(Rcode.FORMERR);
    expect(f.id).toBe(7);
    const zero = q.slice(0, 12); zero[5] = 0;
    expect(decode((await udpExchange(s.port, zero))!).rcode).toBe(Rcode.FORMERR);
    // A label length running past the end of the packet.
    const bad = q.slice(0, 16); bad[12] = 40;
    expect(decode((await udpExchange(s.port, bad))!).rcode).toBe(Rcode.FORMERR);
  });

  it('answers NOTIMP for other opcodes, REFUSED for other classes, BADVERS for EDNS > 0', async () => {
    const s = await start([{ zones: ['.'], handlers: [aRecord('10.0.0.1')] }]);
    expect(decode((await udpExchange(s.port, queryBytes('example.org.', Type.SOA, { opcode: 4 })))!).rcode).toBe(Rcode.NOTIMP);
    expect(decode((await udpExchange(s.port, queryBytes('example.org.', Type.A, { qclass: 4 })))!).rcode).toBe(Rcode.REFUSED);
    const bv = decode((await udpExchange(s.port, queryBytes('example.org.', Type.A, { edns: { version: 1 } })))!);
    expect(bv.rcode).toBe(Rcode.BADVERS);
    expect(bv.edns).not.toBeNull();
  });

  it('echoes EDNS with our buffer size and the DO bit; no OPT when the client sent none', async () => {
    const s = await start([{ zones: ['.'], handlers: [aRecord('10.0.0.1')] }]);
    const withDo = decode((await udpExchange(s.port, queryBytes('example.org.', Type.A, { edns: { udpSize: 4096, do: true } })))!);
    expect(withDo.edns).toMatchObject({ udpSize: 1232, version: 0, do: true });
    const plain = decode((await udpExchange(s.port, queryBytes('example.org.', Type.A)))!);
    expect(plain.edns).toBeNull();
  });

  it('truncates to the client size (512 without EDNS, its own size clamped to 1232 with) and sets TC', async () => {
    const s = await start([{ zones: ['.'], handlers: [many(100)] }]);
    const small = await udpExchange(s.port, queryBytes('big.example.org.', Type.A));
    expect(small!.length).toBeLessThanOrEqual(512);
    const m = decode(small!);
    expect(m.flags.tc).toBe(true);
    expect(m.answer.length).toBeGreaterThan(0);
    expect(m.answer.length).toBeLessThan(100);
    const big = await udpExchange(s.port, queryBytes('big.example.org.', Type.A, { edns: { udpSize: 65000 } }));
    expect(big!.length).toBeLessThanOrEqual(1232);
    const bm = decode(big!);
    expect(bm.flags.tc).toBe(bm.answer.length < 100);
    // Over TCP the whole answer fits.
    const full = decode((await tcpExchange(s.tcpPort, queryBytes('big.example.org.', Type.A)))!);
    expect(full.flags.tc).toBe(false);
    expect(full.answer).toHaveLength(100);
  });

  it('shows response observers (log) the TC bit the client got, and the size sent', async () => {
    const seen: Array<{ tc: boolean; size: number }> = [];
    const s = await start([{ zones: ['.'], handlers: [many(100)], setup: (env) => env.onResponse((_req, m, size) => { seen.push({ tc: m.flags.tc, size }); }) }]);
    const small = (await udpExchange(s.port, queryBytes('big.example.org.', Type.A)))!;
    await tcpExchange(s.tcpPort, queryBytes('big.example.org.', Type.A));
    expect(seen).toEqual([{ tc: true, size: small.length }, { tc: false, size: expect.any(Number) as number }]);
    expect(seen[1]!.size).toBeGreaterThan(1600);
  });

  it('turns a plugin exception into SERVFAIL and counts a panic; a DnsError keeps its rcode', async () => {
    const boom: Handler = { name: 'boom', serveDNS: (req) => { if (req.name.startsWith('a')) throw new Error('bug'); return Promise.reject(new DnsError(Rcode.NOTAUTH, 'boom', 'nope')); } };
    const s = await start([{ zones: ['.'], handlers: [boom] }]);
    expect(decode((await udpExchange(s.port, queryBytes('a.example.', Type.A)))!).rcode).toBe(Rcode.SERVFAIL);
    expect(decode((await udpExchange(s.port, queryBytes('b.example.', Type.A)))!).rcode).toBe(Rcode.NOTAUTH);
    const text = await s.rt.metrics.text();
    expect(text).toMatch(/coredns_panics_total 1\b/);
    expect(s.log.lines.some((l) => l.includes('Recovered from panic') && l.includes('bug'))).toBe(true);
  });

  it('a block with no handler plugins answers REFUSED', async () => {
    const s = await start([{ zones: ['.'], handlers: [] }]);
    expect(decode((await udpExchange(s.port, queryBytes('example.', Type.A)))!).rcode).toBe(Rcode.REFUSED);
  });

  it('records coredns_dns_* metrics when enabled and calls response observers once per reply', async () => {
    const seen: string[] = [];
    const s = await start([{
      zones: ['example.org.'], handlers: [aRecord('10.0.0.1')],
      setup: (env) => { env.enableServerMetrics(); env.onResponse((req, reply, size) => seen.push(`${req.qname} ${reply.rcode} ${size}`)); },
    }]);
    await udpExchange(s.port, queryBytes('a.example.org.', Type.A));
    await udpExchange(s.port, queryBytes('b.example.org.', Type.AAAA, { edns: { do: true } }));
    const text = await s.rt.metrics.text();
    expect(text).toContain('coredns_dns_requests_total{server="dns://127.0.0.1:0",zone="example.org.",view="",proto="udp",family="1",type="A"} 1');
    expect(text).toContain('coredns_dns_responses_total{server="dns://127.0.0.1:0",zone="example.org.",view="",rcode="NOERROR",plugin="static"} 2');
    expect(text).toContain('coredns_dns_do_requests_total{server="dns://127.0.0.1:0",zone="example.org.",view=""} 1');
    expect(text).toMatch(/coredns_dns_request_duration_seconds_count\{[^}]*type="AAAA"\} 1/);
    expect(seen).toHaveLength(2);
  });
});

describe('server over TCP', () => {
  it('answers pipelined queries as they complete, out of order', async () => {
    const slowFirst: Handler = {
      name: 'slow', serveDNS: async (req) => {
        if (req.name.startsWith('slow')) await delay(150);
        const m = req.reply();
        m.answer.push({ name: req.qname, type: Type.A, class: 1, ttl: 5, data: '10.0.0.9' });
        return m;
      },
    };
    const s = await start([{ zones: ['.'], handlers: [slowFirst] }]);
    const c = await tcpConnect(s.tcpPort);
    c.send(queryBytes('slow.example.', Type.A, { id: 1 }));
    c.send(queryBytes('fast.example.', Type.A, { id: 2 }));
    c.send(queryBytes('fast2.example.', Type.A, { id: 3 }));
    const replies = (await c.read(3)).map((b) => decode(b).id);
    expect(replies).toHaveLength(3);
    expect(replies[2]).toBe(1);
    c.close();
  });

  it('handles a query split across writes and several in one write', async () => {
    const s = await start([{ zones: ['.'], handlers: [aRecord('10.0.0.1')] }]);
    const c = await tcpConnect(s.tcpPort);
    const q1 = queryBytes('one.example.', Type.A, { id: 11 });
    const q2 = queryBytes('two.example.', Type.A, { id: 12 });
    const frame = (q: Uint8Array) => { const f = Buffer.alloc(q.length + 2); f.writeUInt16BE(q.length); f.set(q, 2); return f; };
    const both = Buffer.concat([frame(q1), frame(q2)]);
    c.sock.write(both.subarray(0, 5));
    await delay(50);
    c.sock.write(both.subarray(5));
    const ids = (await c.read(2)).map((b) => decode(b).id).sort();
    expect(ids).toEqual([11, 12]);
    c.close();
  });

  it('closes idle connections and refuses connections over the limit', async () => {
    const s = await start([{ zones: ['.'], handlers: [aRecord('10.0.0.1')] }], { listener: { tcpIdleMs: 200, maxTcpConnections: 2 } });
    const a = await tcpConnect(s.tcpPort);
    const b = await tcpConnect(s.tcpPort);
    const c = await tcpConnect(s.tcpPort);
    await delay(100);
    expect(c.closed).toBe(true);
    await delay(400);
    expect(a.closed).toBe(true);
    expect(b.closed).toBe(true);
    // The server still answers new clients.
    const r = decode((await tcpExchange(s.tcpPort, queryBytes('example.', Type.A)))!);
    expect(r.rcode).toBe(Rcode.NOERROR);
  });

  it('a client that never reads cannot hold the server', async () => {
    const s = await start([{ zones: ['.'], handlers: [many(200)] }], { listener: { maxTcpPendingBytes: 64 * 1024 } });
    const c = await tcpConnect(s.tcpPort);
    c.sock.pause();
    for (let i = 0; i < 500; i++) c.send(queryBytes('big.example.', Type.A, { id: i }));
    await delay(500);
    const r = decode((await udpExchange(s.port, queryBytes('other.example.', Type.A)))!);
    expect(r.rcode).toBe(Rcode.NOERROR);
    c.close();
  });
});

describe('shutdown', () => {
  it('runs shutdown hooks while still answering, then drains in-flight queries before closing', async () => {
    const events: string[] = [];
    const slow: Handler = { name: 'slow', serveDNS: async (req) => { await delay(200); return req.reply(); } };
    const s = await startTest([{
      zones: ['.'], handlers: [slow],
      setup: (env) => {
        env.onShutdown(async () => { events.push('lameduck'); await delay(100); });
        env.onFinalShutdown(() => { events.push('final'); });
      },
    }]);
    const pending = udpExchange(s.port, queryBytes('late.example.', Type.A, { id: 99 }), { timeoutMs: 2000 });
    await delay(20);
    await s.stop();
    const r = await pending;
    expect(r && decode(r).id).toBe(99);
    expect(events).toEqual(['lameduck', 'final']);
  });
});
