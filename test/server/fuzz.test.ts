// 100,000 random and mutated packets at a running server: no crash, no unhandled rejection,
// memory flat, and a valid query is still answered afterwards.
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode } from '../../src/dns/codec.ts';
import { Rcode, Type } from '../../src/dns/types.ts';
import type { Handler } from '../../src/plugin.ts';
import { queryBytes } from '../helpers.ts';
import { tcpConnect, udpExchange } from '../client.ts';
import { startTest } from './harness.ts';

// A deterministic PRNG so a failure can be replayed.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >> 17; s ^= s << 5; s >>>= 0; return s / 0x100000000; };
}

function mutations(rand: () => number): Uint8Array[] {
  const base = [
    queryBytes('www.example.org.', Type.A),
    queryBytes('a.b.c.d.e.f.example.', Type.SRV, { edns: { udpSize: 4096, do: true } }),
    queryBytes('.', Type.NS),
  ];
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const out: Uint8Array[] = [];
  // Truncated headers.
  for (let n = 0; n < 12; n++) out.push(base[0]!.slice(0, n));
  // QDCOUNT 0 and 2.
  for (const qd of [0, 2]) { const b = base[0]!.slice(); b[5] = qd; out.push(b); }
  // A compression pointer loop in the question (points at itself) and one pointing forward.
  out.push(Uint8Array.from([...base[0]!.slice(0, 12), 0xc0, 12, 0, 1, 0, 1]));
  out.push(Uint8Array.from([...base[0]!.slice(0, 12), 0xc0, 14, 0xc0, 12, 0, 1, 0, 1]));
  // A label over 63 bytes (length byte 64 = reserved label type) and a name over 255 bytes.
  out.push(Uint8Array.from([...base[0]!.slice(0, 12), 64, ...new Array(64).fill(97), 0, 0, 1, 0, 1]));
  const long: number[] = [];
  for (let i = 0; i < 5; i++) long.push(60, ...new Array(60).fill(98));
  out.push(Uint8Array.from([...base[0]!.slice(0, 12), ...long, 0, 0, 1, 0, 1]));
  // Bogus OPT records: owner not root, two OPTs, option running past the end, OPT in the answer section.
  const opt = (owner: number[], rdata: number[]) => [...owner, 0, 41, 16, 0, 0, 0, 0, 0, rdata.length >> 8, rdata.length & 255, ...rdata];
  const q = base[0]!;
  const withAr = (n: number, ...recs: number[][]) => { const b = Uint8Array.from([...q, ...recs.flat()]); b[11] = n; return b; };
  out.push(withAr(1, opt([1, 97, 0], [])));
  out.push(withAr(2, opt([0], []), opt([0], [])));
  out.push(withAr(1, opt([0], [0, 10, 0, 50, 1, 2])));
  { const b = Uint8Array.from([...q, ...opt([0], [])]); b[7] = 1; out.push(b); }
  while (out.length < 100_000) {
    const b = pick(base).slice();
    const kind = rand();
    if (kind < 0.4) {
      const flips = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < flips; i++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      out.push(b);
    } else if (kind < 0.6) {
      out.push(b.slice(0, Math.floor(rand() * b.length)));
    } else if (kind < 0.8) {
      const r = new Uint8Array(Math.floor(rand() * 600));
      for (let i = 0; i < r.length; i++) r[i] = Math.floor(rand() * 256);
      out.push(r);
    } else {
      // Keep a valid header (so FORMERR is possible) with a random body.
      const r = new Uint8Array(12 + Math.floor(rand() * 80));
      r.set(b.subarray(0, 12));
      for (let i = 12; i < r.length; i++) r[i] = Math.floor(rand() * 256);
      out.push(r);
    }
  }
  return out;
}

describe('fuzz: a running server under garbage', () => {
  let s: Awaited<ReturnType<typeof startTest>>;
  const rejections: unknown[] = [];
  const onRejection = (e: unknown) => { rejections.push(e); };
  beforeAll(async () => {
    process.on('unhandledRejection', onRejection);
    const answer: Handler = {
      name: 'answer', serveDNS: (req) => {
        const m = req.reply();
        m.answer.push({ name: req.qname, type: Type.A, class: 1, ttl: 5, data: '10.0.0.1' });
        return req.name.length % 2 ? m : Promise.resolve(m);
      },
    };
    s = await startTest([{ zones: ['.'], handlers: [answer] }]);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    await s.stop();
  });

  it('survives 100,000 random and mutated packets over UDP and TCP', async () => {
    const packets = mutations(prng(0xc0ffee));
    const sock = dgram.createSocket('udp4');
    let replies = 0;
    sock.on('message', () => { replies++; });
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const memBefore = process.memoryUsage().rss;
    // Send in bursts, yielding so the server (same process) keeps up and nothing is dropped by the kernel.
    for (let i = 0; i < packets.length; i += 200) {
      for (let j = i; j < Math.min(i + 200, packets.length); j++) sock.send(packets[j]!, s.port, '127.0.0.1');
      await new Promise((r) => setImmediate(r));
    }
    // Some of the same over TCP, framed (a bad frame must not kill the listener).
    const c = await tcpConnect(s.tcpPort);
    for (let i = 0; i < 2000; i++) c.send(packets[i * 37 % packets.length]!.subarray(0, 65535));
    await new Promise((r) => setTimeout(r, 500));
    c.close();
    sock.close();
    expect(replies).toBeGreaterThan(0);
    const ok = decode((await udpExchange(s.port, queryBytes('still.alive.', Type.A)))!);
    expect(ok.rcode).toBe(Rcode.NOERROR);
    expect(ok.answer).toHaveLength(1);
    expect(rejections).toEqual([]);
    const grownMiB = (process.memoryUsage().rss - memBefore) / (1 << 20);
    expect(grownMiB).toBeLessThan(100);
    expect(s.rt.listeners[0]!.inflightCount).toBe(0);
  }, 60_000);
});
