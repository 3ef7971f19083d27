// Fuzz the two parsers that see untrusted bytes: parseQuery (every datagram) and decode (upstream
// replies). parseQuery must never throw; decode must throw nothing but DecodeError; and whatever decode
// accepts must survive encode → decode unchanged (up to the letter case compression may unify).
// Deterministic: a fixed seed, overridable with FUZZ_SEED, and the failing input is printed in hex.
import { describe, expect, it } from 'vitest';
import { parseQuery } from './query.ts';
import { DecodeError, decode, encode } from './codec.ts';
import { type Msg, type RR, Type, newMsg } from './types.ts';
import { queryBytes, rr } from '../../test/helpers.ts';

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x5eed);
const MUTATED = 120_000;
const RANDOM = 30_000;

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function corpus(): Uint8Array[] {
  const out: Uint8Array[] = [
    queryBytes('kubernetes.default.svc.cluster.local.', Type.A),
    queryBytes('Web.NS.svc.cluster.local.', Type.AAAA, { edns: { udpSize: 1232, do: true } }),
    queryBytes('_http._tcp.web.ns.svc.cluster.local.', Type.SRV, { edns: { options: Uint8Array.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]) } }),
    queryBytes('.', Type.NS, { cd: true }),
    queryBytes('10.0.96.10.in-addr.arpa.', Type.PTR, { edns: { version: 1 } }),
  ];
  const reply = (q: string, qt: number, an: RR[], ns: RR[] = [], ar: RR[] = [], edns = true): Msg => {
    const m = newMsg(0xabcd);
    m.flags.qr = true;
    m.flags.aa = true;
    m.question.push({ name: q, type: qt, class: 1 });
    m.answer = an; m.authority = ns; m.additional = ar;
    if (edns) m.edns = { udpSize: 1232, version: 0, do: true, options: [{ code: 10, data: Uint8Array.from([9, 9, 9, 9, 9, 9, 9, 9]) }] };
    return m;
  };
  const headless: RR[] = [];
  for (let i = 0; i < 8; i++) headless.push(rr(`x.svc.ns.svc.cluster.local. 5 IN A 10.244.0.${i}`));
  const msgs: Msg[] = [
    reply('x.svc.ns.svc.cluster.local.', Type.A, headless),
    reply('web.ns.svc.cluster.local.', Type.AAAA, [rr('web.ns.svc.cluster.local. 5 IN AAAA fd00::1')], [], [], false),
    reply('_http._tcp.web.ns.svc.cluster.local.', Type.SRV,
      [rr('_http._tcp.web.ns.svc.cluster.local. 5 IN SRV 0 50 80 pod-1.web.ns.svc.cluster.local.')], [],
      [rr('pod-1.web.ns.svc.cluster.local. 5 IN A 10.244.1.1')]),
    reply('missing.ns.svc.cluster.local.', Type.A, [],
      [rr('cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5')]),
    reply('www.example.org.', Type.A, [rr('www.example.org. 60 IN CNAME web.example.org.'), rr('web.example.org. 60 IN A 192.0.2.1')],
      [rr('example.org. 60 IN NS ns1.example.org.')], [rr('example.org. 60 IN MX 10 mail.example.org.')]),
    reply('t.example.', Type.TXT, [rr('t.example. 60 IN TXT "v=spf1 -all" ""')]),
    reply('svc.example.', Type.HTTPS, [{ name: 'svc.example.', type: Type.HTTPS, class: 1, ttl: 30, data: Uint8Array.from([0, 1, 0, 0, 1, 0, 3, 2, 104, 50]) }]),
  ];
  const bad = reply('a.example.', Type.A, []);
  bad.rcode = 16;
  msgs.push(bad);
  for (const m of msgs) out.push(encode(m));
  return out;
}

const INTERESTING = [0, 1, 0x3f, 0x40, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xff, 12, 41];

function mutate(seed: Uint8Array, rnd: () => number): Uint8Array {
  let b = Array.from(seed);
  const pick = (n: number): number => Math.floor(rnd() * n);
  const steps = 1 + pick(4);
  for (let s = 0; s < steps; s++) {
    const at = pick(b.length + 1);
    switch (pick(12)) {
      case 0: if (b.length) b[pick(b.length)] = pick(256); break; // random byte
      case 1: if (b.length) b[pick(b.length)]! ^= 1 << pick(8); break; // bit flip
      case 2: if (b.length) b[pick(b.length)] = INTERESTING[pick(INTERESTING.length)]!; break;
      case 3: b = b.slice(0, pick(b.length + 1)); break; // truncate
      case 4: b.splice(at, 0, ...Array.from({ length: 1 + pick(8) }, () => pick(256))); break; // insert
      case 5: { // compression pointer to itself, forward, or backwards somewhere
        const target = [at, at + 2 + pick(20), pick(at + 1), 12][pick(4)]!;
        b.splice(at, 2, 0xc0 | ((target >> 8) & 0x3f), target & 0xff);
        break;
      }
      case 6: if (b.length) b[pick(b.length)] = 64 + pick(192); break; // label > 63 / bad label type
      case 7: { // a name longer than 255 bytes
        const long: number[] = [];
        for (let i = 0; i < 5; i++) long.push(63, ...new Array<number>(63).fill(97 + i));
        b.splice(at, 0, ...long, 0);
        break;
      }
      case 8: { // counts: QDCOUNT 0 or 2, large or off-by-one counts
        if (b.length < 12) break;
        const field = 4 + 2 * pick(4);
        const v = [0, 1, 2, 3, 0xffff, pick(65536)][pick(6)]!;
        b[field] = v >> 8; b[field + 1] = v & 0xff;
        break;
      }
      case 9: { // bogus OPT records: wrong owner, truncated options, duplicates
        const rdata = [[], [0, 10, 0], [0, 10, 0, 9, 1], [0, 10, 0, 2, 1, 2], [0xff]][pick(5)]!;
        const owner = pick(3) === 0 ? [1, 97, 0] : [0];
        const opt = [...owner, 0, 41, pick(256), pick(256), pick(256), pick(256), pick(256), 0, rdata.length >> 8, rdata.length & 0xff, ...rdata];
        b.push(...opt);
        if (b.length >= 12) b[11] = (b[11]! + 1) & 0xff;
        break;
      }
      case 10: { // duplicate a chunk (repeats records, shifts pointers)
        const from = pick(b.length + 1);
        const chunk = b.slice(from, from + 1 + pick(40));
        b.splice(at, 0, ...chunk);
        break;
      }
      default: if (b.length > 2) b[2] = pick(256); break; // flags: QR, opcode
    }
  }
  return Uint8Array.from(b);
}

/** Comparable text: names case-folded, and TXT with no strings (rdlen 0) equal to one empty string, which is how encode writes it. */
function lowerAll(m: Msg): string {
  return JSON.stringify(m, (_k, v: unknown) => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
    if (v && typeof v === 'object' && (v as RR).type === Type.TXT && Array.isArray((v as RR).data) && (v as { data: string[] }).data.length === 0) return { ...v, data: [''] };
    return v;
  }).toLowerCase();
}

interface Failure { input: string; error: string }

function check(buf: Uint8Array, failures: Failure[], stats: { parsed: number; decoded: number }): void {
  // Replies in the corpus are dropped at QR: parse them with QR cleared too, to reach the body.
  const asQuery = buf.length > 2 && buf[2]! & 0x80 ? Uint8Array.from(buf) : null;
  if (asQuery) asQuery[2]! &= 0x7f;
  for (const b of asQuery ? [buf, asQuery] : [buf]) {
    try {
      const q = parseQuery(b);
      if (!('kind' in q)) stats.parsed++;
    } catch (e) {
      failures.push({ input: Buffer.from(b).toString('hex'), error: `parseQuery threw: ${String(e)}` });
    }
  }
  let m: Msg;
  try {
    m = decode(buf);
  } catch (e) {
    if (!(e instanceof DecodeError)) failures.push({ input: Buffer.from(buf).toString('hex'), error: `decode threw a non-DecodeError: ${String((e as Error)?.stack ?? e)}` });
    return;
  }
  stats.decoded++;
  // Whatever decode accepts, encode must write back, and decode must read the same message again.
  try {
    const again = decode(encode(m));
    if (lowerAll(again) !== lowerAll(m)) failures.push({ input: Buffer.from(buf).toString('hex'), error: 'decode(encode(decode(x))) differs' });
  } catch (e) {
    failures.push({ input: Buffer.from(buf).toString('hex'), error: `re-encode failed: ${String(e)}` });
  }
}

describe('fuzz', () => {
  it(`parseQuery never throws, decode throws only DecodeError (${MUTATED + RANDOM} packets, seed ${SEED})`, () => {
    const rnd = prng(SEED);
    const seeds = corpus();
    const failures: Failure[] = [];
    const stats = { parsed: 0, decoded: 0 };
    for (let i = 0; i < MUTATED && failures.length < 5; i++) {
      check(mutate(seeds[i % seeds.length]!, rnd), failures, stats);
    }
    for (let i = 0; i < RANDOM && failures.length < 5; i++) {
      const len = Math.floor(rnd() * (i % 10 === 0 ? 600 : 40));
      const b = new Uint8Array(len);
      for (let j = 0; j < len; j++) b[j] = Math.floor(rnd() * 256);
      check(b, failures, stats);
    }
    expect(failures).toEqual([]);
    console.log(`fuzz: seed ${SEED}, ${stats.parsed} accepted by parseQuery, ${stats.decoded} by decode`);
    // The mutations must leave enough valid input to exercise the deeper paths, not only the front door.
    expect(stats.parsed).toBeGreaterThan(MUTATED / 10);
    expect(stats.decoded).toBeGreaterThan(MUTATED / 10);
  }, 60_000); // ~2 s on an idle machine; room for a loaded CI runner
});
