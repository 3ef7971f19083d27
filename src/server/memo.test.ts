// The reply memo without sockets: keys, terms, aging, shuffles, admission and the byte budget of
// ReplyMemo, then one trip through the pipeline (handle → offer → memoReply) with a fake chain.
import { describe, expect, it } from 'vitest';
import { decode } from '../dns/codec.ts';
import { parseQuery, type ParsedQuery } from '../dns/query.ts';
import { type Msg, Class, Type } from '../dns/types.ts';
import { prebuild } from '../dns/wire.ts';
import { CounterChild } from '../fastmetrics.ts';
import { memoryLogger } from '../log.ts';
import type { Handler } from '../plugin.ts';
import { Request } from '../request.ts';
import { loadbalanceHandler } from '../../plugins/loadbalance/index.ts';
import { queryBytes, rr, type QueryOpts } from '../../test/helpers.ts';
import { type MemoTerms, ReplyMemo, newMemoCounts } from './memo.ts';
import { type BlockRuntime, type PipelineContext, Router, finalize, handle, memoReply } from './pipeline.ts';
import { compileChain } from './runtime.ts';

/** The memo's clock is whatever `now` it is given (performance.now() in the server). */
const T0 = 1_000_000;
const NAME = 'web.example.org.';
/** Offset just past the question of a query for NAME: where its reply's answer section starts. */
const QEND = 12 + 17 + 4;

const q = (o: QueryOpts = {}, name = NAME, type: number = Type.A) => queryBytes(name, type, o);

function terms(o: Partial<MemoTerms> = {}): MemoTerms {
  return { memoOff: false, memoUntil: Infinity, memoDep: undefined, memoHit: undefined, memoShuffle: undefined, memoAgeFrom: NaN, memoAgeDelta: 0, ...o };
}

/**
 * The reply the server writes for `raw` from prebuilt wire (as pipeline finalize does), with these
 * answer lines, aged by `ttlDelta` seconds; and where its TTLs are.
 */
function written(raw: Uint8Array, lines: string[] = [`${NAME} 300 IN A 10.0.0.1`], ttlDelta = 0): { bytes: Uint8Array; ttlOffsets: Uint32Array } {
  const req = new Request(parseQuery(raw) as ParsedQuery, raw, 'udp', '10.0.0.7', 40000, 'dns://:53');
  const m = req.reply();
  m.flags.aa = true;
  m.answer = lines.map(rr);
  m.wire = prebuild(m);
  m.ttlDelta = ttlDelta;
  return { bytes: finalize(req, m, 1232).slice(), ttlOffsets: m.wire.ttlOffsets };
}

interface Put { tcp?: boolean; now?: number; t?: Partial<MemoTerms>; reply?: Uint8Array; ttlOffsets?: Uint32Array }

/** Offer a reply for `raw` (by default a one-record reply) under `t`; returns the reply offered. */
function put(memo: ReplyMemo, raw: Uint8Array, o: Put = {}): Uint8Array {
  const reply = o.reply ?? written(raw).bytes;
  memo.offer(raw, o.tcp ?? false, terms(o.t), o.now ?? T0, reply, null, Type.A, 0, 'test', o.ttlOffsets);
  return reply;
}
const get = (memo: ReplyMemo, raw: Uint8Array, o: { tcp?: boolean; now?: number } = {}) => memo.lookup(raw, o.tcp ?? false, o.now ?? T0);

/** A copy of `b` with bytes set: [offset, value]*. */
function patched(b: Uint8Array, ...sets: Array<[number, number]>): Uint8Array {
  const out = b.slice();
  for (const [at, v] of sets) out[at] = v;
  return out;
}

describe('ReplyMemo: what it will not key (the full parser decides)', () => {
  const plain = q();
  const edns = q({ edns: { udpSize: 1232 } });
  // OPT at QEND: owner (1), TYPE (2), CLASS = size (2), TTL = ext-rcode, version, DO + Z (4), RDLEN (2).
  it.each<[string, Uint8Array]>([
    ['shorter than a header and a root question', plain.subarray(0, 16)],
    ['a response (QR set)', patched(plain, [2, plain[2]! | 0x80])],
    ['QDCOUNT 0', patched(plain, [5, 0])],
    ['QDCOUNT 2', patched(plain, [5, 2])],
    ['QDCOUNT 257', patched(plain, [4, 1])],
    ['an answer record', patched(plain, [7, 1])],
    ['an authority record', patched(plain, [9, 1])],
    ['ARCOUNT 2', patched(edns, [11, 2])],
    ['ARCOUNT 257', patched(edns, [10, 1])],
    ['a compression pointer for the name', Uint8Array.of(...plain.subarray(0, 12), 0xc0, 12, 0, 1, 0, 1)],
    ['a label longer than 63', q({}, `${'a'.repeat(64)}.org.`)],
    ['a name running past the end', plain.subarray(0, 20)],
    ['a question without its QCLASS', plain.subarray(0, QEND - 1)],
    ['an OPT with an owner name', patched(edns, [QEND, 1])],
    ['an additional record that is not an OPT', patched(edns, [QEND + 2, 250])],
    ['an OPT cut short', edns.subarray(0, edns.length - 1)],
    ['EDNS version 1', q({ edns: { version: 1 } })],
    ['RDLEN past the end', patched(edns, [QEND + 10, 4])],
    ['an option shorter than its header', q({ edns: { options: Uint8Array.of(0, 10, 0) } })],
    ['an option longer than the RDATA', q({ edns: { options: Uint8Array.of(0, 10, 0, 8, 1, 2, 3, 4) } })],
    ['a second option running past the RDATA', q({ edns: { options: Uint8Array.of(0, 10, 0, 0, 0, 12, 0, 1) } })],
  ])('%s: not looked up, not kept, not counted', (_what, raw) => {
    const memo = new ReplyMemo(1232);
    put(memo, raw, { reply: written(plain).bytes });
    expect(memo.size).toBe(0);
    expect(memo.heldBytes).toBe(0);
    expect(get(memo, raw)).toBeNull();
    expect(memo.counts).toEqual({ hits: 0, misses: 0, stale: 0, inserts: 0 });
  });

  it('keeps plain queries, EDNS queries and well-formed options (the controls of the table above)', () => {
    for (const raw of [plain, edns, q({ edns: { options: Uint8Array.of(0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 12, 0, 0) } }), q({}, '.')]) {
      const memo = new ReplyMemo(1232);
      put(memo, raw);
      expect(get(memo, raw)).not.toBeNull();
    }
  });
});

describe('ReplyMemo: reuse', () => {
  it('answers with the kept bytes, the new query ID patched in, nothing else changed', () => {
    const memo = new ReplyMemo(1232);
    const reply = put(memo, q({ id: 0x1111, edns: { udpSize: 4096 } }));
    const kept = reply.slice();
    reply.fill(0); // the memo keeps a copy of its own
    const out = get(memo, q({ id: 0xbeef, edns: { udpSize: 4096 } }))!;
    expect(out.length).toBe(kept.length);
    expect([out[0], out[1]]).toEqual([0xbe, 0xef]);
    expect(out.subarray(2)).toEqual(kept.subarray(2));
    expect(decode(out).id).toBe(0xbeef);
  });

  it.each<[string, Uint8Array, boolean, Uint8Array, boolean, boolean]>([
    ['RD', q(), false, q({ rd: false }), false, false],
    ['CD', q(), false, q({ cd: true }), false, false],
    ['the letter case of the name', q(), false, q({}, 'Web.example.org.'), false, false],
    ['qtype', q(), false, q({}, NAME, Type.AAAA), false, false],
    ['qclass', q(), false, q({ qclass: Class.CH }), false, false],
    ['EDNS present or absent (UDP)', q(), false, q({ edns: { udpSize: 512 } }), false, false],
    ['EDNS present or absent (TCP)', q(), true, q({ edns: {} }), true, false],
    ['the DO bit', q({ edns: {} }), false, q({ edns: { do: true } }), false, false],
    ['UDP size 512 and 1232', q({ edns: { udpSize: 512 } }), false, q({ edns: { udpSize: 1232 } }), false, false],
    ['UDP size 600 and 700', q({ edns: { udpSize: 600 } }), false, q({ edns: { udpSize: 700 } }), false, false],
    ['UDP and TCP', q(), false, q(), true, false],
    ['UDP and TCP, with EDNS', q({ edns: {} }), false, q({ edns: {} }), true, false],
    ['UDP sizes below 512 (512 is used)', q({ edns: { udpSize: 100 } }), false, q({ edns: { udpSize: 512 } }), false, true],
    ['UDP sizes 0 and 511', q({ edns: { udpSize: 0 } }), false, q({ edns: { udpSize: 511 } }), false, true],
    ['UDP sizes above maxUdp (maxUdp is used)', q({ edns: { udpSize: 1232 } }), false, q({ edns: { udpSize: 4096 } }), false, true],
    ['UDP sizes 1233 and 65535', q({ edns: { udpSize: 1233 } }), false, q({ edns: { udpSize: 65535 } }), false, true],
    ['the UDP size over TCP (not used)', q({ edns: { udpSize: 512 } }), true, q({ edns: { udpSize: 4096 } }), true, true],
    ['EDNS options', q({ edns: {} }), false, q({ edns: { options: Uint8Array.of(0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8) } }), false, true],
    ['the query ID', q({ id: 1 }), false, q({ id: 2 }), false, true],
  ])('%s', (_what, a, aTcp, b, bTcp, same) => {
    const memo = new ReplyMemo(1232);
    put(memo, a, { tcp: aTcp });
    expect(get(memo, b, { tcp: bTcp }) !== null).toBe(same);
    expect(get(memo, a, { tcp: aTcp })).not.toBeNull();
    // Both kept side by side, or the second replaced the first.
    put(memo, b, { tcp: bTcp });
    expect(memo.size).toBe(same ? 1 : 2);
  });

  it('does not keep a reply whose `until` is not after now; drops it (stale) once now reaches it', () => {
    const memo = new ReplyMemo(1232);
    put(memo, q(), { t: { memoUntil: T0 - 1 } });
    put(memo, q(), { t: { memoUntil: T0 } });
    expect(memo.size).toBe(0);
    put(memo, q(), { t: { memoUntil: T0 + 1000 } });
    expect(get(memo, q(), { now: T0 + 999 })).not.toBeNull();
    expect(get(memo, q(), { now: T0 + 1000 })).toBeNull();
    expect(memo.counts).toEqual({ hits: 1, misses: 0, stale: 1, inserts: 1 });
    expect(memo.size).toBe(0);
    expect(memo.heldBytes).toBe(0);
    expect(get(memo, q(), { now: T0 })).toBeNull(); // gone, not merely skipped
    expect(memo.counts.misses).toBe(1);
  });

  it('is stale once its MemoValidity says so, and stays gone', () => {
    const memo = new ReplyMemo(1232);
    let current = true;
    put(memo, q(), { t: { memoDep: { valid: () => current } } });
    expect(get(memo, q())).not.toBeNull();
    current = false;
    expect(get(memo, q())).toBeNull();
    expect(memo.counts.stale).toBe(1);
    expect(memo.size).toBe(0);
    current = true;
    expect(get(memo, q())).toBeNull();
    expect(memo.counts.misses).toBe(1);
  });

  it('never keeps a reply a plugin turned off (memoOff)', () => {
    const memo = new ReplyMemo(1232);
    put(memo, q(), { t: { memoOff: true } });
    put(memo, q(), { t: { memoOff: true } });
    expect(memo.size).toBe(0);
    expect(memo.counts.inserts).toBe(0);
  });

  it('does not keep replies over 4096 bytes or shorter than a header', () => {
    const memo = new ReplyMemo(1232);
    put(memo, q(), { reply: new Uint8Array(4097) });
    put(memo, q({}, 'b.example.org.'), { reply: new Uint8Array(11) });
    expect(memo.size).toBe(0);
    put(memo, q(), { reply: new Uint8Array(4096) });
    expect(memo.size).toBe(1);
  });

  it('runs memoHit on each hit with that lookup\'s now, never on a miss, a stale lookup or an offer', () => {
    const memo = new ReplyMemo(1232);
    const seen: number[] = [];
    put(memo, q(), { t: { memoHit: (now) => seen.push(now), memoUntil: T0 + 10 } });
    expect(seen).toEqual([]);
    get(memo, q(), { now: T0 + 1 });
    get(memo, q({ id: 9 }), { now: T0 + 2 });
    get(memo, q({}, 'other.example.org.'), { now: T0 + 3 });
    get(memo, q(), { now: T0 + 10 }); // stale
    expect(seen).toEqual([T0 + 1, T0 + 2]);
  });
});

describe('ReplyMemo: TTL aging', () => {
  const raw = q({ edns: {} });
  const lines = [`${NAME} 300 IN A 10.0.0.1`, `${NAME} 300 IN A 10.0.0.2`];
  const ttls = (b: Uint8Array | null) => decode(b!).answer.map((r) => r.ttl);
  // Served 2.5 s after the cache stored it: TTLs aged by 2 (298) when written.
  const from = T0 - 2500;

  it('lowers the TTLs by the whole seconds of age since memoAgeFrom, beyond memoAgeDelta, floor 0', () => {
    const memo = new ReplyMemo(1232);
    const { bytes, ttlOffsets } = written(raw, lines, 2);
    expect(ttls(bytes)).toEqual([298, 298]);
    put(memo, raw, { reply: bytes, ttlOffsets, t: { memoAgeFrom: from, memoAgeDelta: 2 } });
    expect(ttls(get(memo, raw, { now: from + 2999 }))).toEqual([298, 298]);
    expect(ttls(get(memo, raw, { now: from + 3000 }))).toEqual([297, 297]);
    expect(ttls(get(memo, raw, { now: from + 10_999 }))).toEqual([290, 290]);
    expect(ttls(get(memo, raw, { now: from + 10_500 }))).toEqual([290, 290]); // never raised again
    expect(ttls(get(memo, raw, { now: from + 299_999 }))).toEqual([1, 1]);
    expect(ttls(get(memo, raw, { now: from + 1_000_000 }))).toEqual([0, 0]);
    // Only the TTLs moved: everything else is the reply as offered.
    const out = get(memo, raw, { now: from + 1_000_000 })!;
    for (const o of ttlOffsets) {
      out.fill(0, o, o + 4);
      bytes.fill(0, o, o + 4);
    }
    expect(out).toEqual(bytes);
  });

  it('does not age replies without memoAgeFrom, TTL offsets or not', () => {
    const memo = new ReplyMemo(1232);
    const { bytes, ttlOffsets } = written(raw, lines);
    put(memo, raw, { reply: bytes, ttlOffsets });
    expect(ttls(get(memo, raw, { now: T0 + 1_000_000 }))).toEqual([300, 300]);
  });

  it('without TTL offsets, keeps an aging reply only until its TTLs would next change', () => {
    const memo = new ReplyMemo(1232);
    const { bytes } = written(raw, lines, 2);
    put(memo, raw, { reply: bytes, t: { memoAgeFrom: from, memoAgeDelta: 2 } });
    expect(ttls(get(memo, raw, { now: from + 2999 }))).toEqual([298, 298]);
    expect(get(memo, raw, { now: from + 3000 })).toBeNull();
    expect(memo.counts.stale).toBe(1);
    // Offered when that second has come already: not kept at all.
    put(memo, raw, { reply: bytes, now: from + 3000, t: { memoAgeFrom: from, memoAgeDelta: 2 } });
    expect(memo.size).toBe(0);
    // An earlier memoUntil still wins.
    put(memo, raw, { reply: bytes, t: { memoAgeFrom: from, memoAgeDelta: 2, memoUntil: from + 2600 } });
    expect(get(memo, raw, { now: from + 2600 })).toBeNull();
  });
});

describe('ReplyMemo: shuffles', () => {
  const ips = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
  const lines = ips.map((ip) => `${NAME} 30 IN A ${ip}`);

  it('shuffles each run anew per reuse: every order of 3 records appears, the records never change', () => {
    const memo = new ReplyMemo(1232);
    const raw = q({ edns: {} });
    const { bytes, ttlOffsets } = written(raw, lines);
    // The answer section starts right after the question: three 16-byte A records (owner: a pointer).
    put(memo, raw, { reply: bytes, ttlOffsets, t: { memoShuffle: Int32Array.of(QEND, 16, 3) } });
    const orders = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const out = get(memo, raw)!;
      const m = decode(out);
      const got = m.answer.map((r) => r.data as string);
      expect([...got].sort()).toEqual(ips);
      orders.add(got.join(' '));
      expect(out.subarray(0, QEND)).toEqual(bytes.subarray(0, QEND)); // header and question untouched
      expect(out.subarray(QEND + 48)).toEqual(bytes.subarray(QEND + 48)); // the OPT too
    }
    expect(orders.size).toBe(6);
  });

  it('does not keep runs for a reply that was not copied from the prebuilt wire they describe (no TTL offsets)', () => {
    // A reply encoded instead (truncated for a small UDP size) holds fewer records, elsewhere.
    const memo = new ReplyMemo(1232);
    const raw = q();
    put(memo, raw, { reply: written(raw, lines).bytes, t: { memoShuffle: Int32Array.of(QEND, 16, 3) } });
    expect(memo.size).toBe(0);
  });
});

describe('ReplyMemo: detach', () => {
  it('after detach() the bytes a lookup returned are no longer patched by the next lookup', () => {
    const memo = new ReplyMemo(1232);
    put(memo, q());
    const held = memo.heldBytes;
    const first = get(memo, q({ id: 1 }))!;
    const kept = first.slice();
    memo.detach();
    const second = get(memo, q({ id: 2 }))!;
    expect(first).toEqual(kept);
    expect(second[1]).toBe(2);
    expect(second.subarray(2)).toEqual(kept.subarray(2));
    expect(memo.heldBytes).toBe(held);
    // Without detach() the returned bytes are the entry's own: the next lookup patches them in place.
    const third = get(memo, q({ id: 3 }))!;
    expect(third).toBe(second);
    expect(second[1]).toBe(3);
  });
});

/** The memo's hash of a UDP query without EDNS (as ReplyMemo.scan computes it: FNV-1a over flags, question, size). */
function memoHash(raw: Uint8Array): number {
  let h = 0x811c9dc5 ^ ((raw[2]! << 8) | raw[3]!);
  for (let i = 12; i < raw.length; i++) h = Math.imul(h ^ raw[i]!, 16777619);
  return Math.imul(h ^ 512, 16777619) | 0;
}

describe('ReplyMemo: admission (two ways per hash)', () => {
  it('a question takes a free way at once; with both ways taken, a newcomer displaces only on its second offer', () => {
    const memo = new ReplyMemo(1232, { entries: 2 }); // one set: every question collides
    const [a, b, c] = ['a', 'b', 'c'].map((n) => q({}, `${n}.example.org.`));
    put(memo, a!);
    put(memo, b!);
    expect(memo.size).toBe(2);
    const cReply = put(memo, c!);
    expect(memo.size).toBe(2);
    expect(get(memo, c!)).toBeNull();
    expect(get(memo, a!)).not.toBeNull();
    expect(get(memo, b!)).not.toBeNull();
    put(memo, c!, { reply: cReply });
    expect(memo.size).toBe(2);
    expect(get(memo, c!)!.subarray(2)).toEqual(cReply.subarray(2));
    // The older of the two (a, kept first) is the one that goes.
    expect(get(memo, a!)).toBeNull();
    expect(get(memo, b!)).not.toBeNull();
    expect(memo.counts.inserts).toBe(3);
  });

  it('a question already kept is replaced in place, full set or not', () => {
    const memo = new ReplyMemo(1232, { entries: 2 });
    const [a, b] = ['a', 'b'].map((n) => q({}, `${n}.example.org.`));
    put(memo, a!);
    put(memo, b!);
    const newer = put(memo, a!, { reply: written(a!, ['a.example.org. 300 IN A 10.9.9.9']).bytes });
    expect(get(memo, a!)!.subarray(2)).toEqual(newer.subarray(2));
    expect(get(memo, b!)).not.toBeNull();
    expect(memo.size).toBe(2);
  });

  it('in a larger memo only questions of the same set compete (colliding names found with the memo\'s hash)', () => {
    const memo = new ReplyMemo(1232, { entries: 64 });
    const setOf = (raw: Uint8Array) => memoHash(raw) & 62;
    const names = Array.from({ length: 400 }, (_, i) => q({}, `n${i}.example.org.`));
    const target = setOf(names[0]!);
    const same = names.filter((r) => setOf(r) === target).slice(0, 3);
    const other = names.find((r) => setOf(r) !== target)!;
    expect(same).toHaveLength(3);
    const [a, b, c] = same as [Uint8Array, Uint8Array, Uint8Array];
    put(memo, a);
    put(memo, b);
    put(memo, other); // another set has room: kept at once
    put(memo, c);
    expect(memo.size).toBe(3);
    expect(get(memo, c)).toBeNull();
    expect(get(memo, other)).not.toBeNull();
    put(memo, c);
    expect(get(memo, c)).not.toBeNull();
    expect([get(memo, a), get(memo, b)].filter((x) => x !== null)).toHaveLength(1);
    expect(memo.size).toBe(3);
  });
});

describe('ReplyMemo: size, bytes and counts', () => {
  // Names of one length: every entry holds the same bytes.
  const raws = Array.from({ length: 6 }, (_, i) => q({}, `n${i}.example.org.`));
  const reply = written(raws[0]!).bytes;
  const per = 16 + 4 + reply.length; // question (name 16 bytes, type, class) + reply

  it('counts the question and reply bytes of what it holds', () => {
    const memo = new ReplyMemo(1232, { entries: 1024 });
    for (const r of raws.slice(0, 3)) put(memo, r, { reply });
    expect(memo.size).toBe(3);
    expect(memo.heldBytes).toBe(3 * per);
    put(memo, raws[0]!, { reply: new Uint8Array(100) }); // replaced: the old reply's bytes are given back
    expect(memo.size).toBe(3);
    expect(memo.heldBytes).toBe(2 * per + 20 + 100);
    put(memo, raws[1]!, { reply, t: { memoUntil: T0 + 1 } });
    expect(get(memo, raws[1]!, { now: T0 + 1 })).toBeNull(); // stale: dropped
    expect(memo.heldBytes).toBe(per + 20 + 100);
    memo.clear();
    expect(memo.size).toBe(0);
    expect(memo.heldBytes).toBe(0);
  });

  it('starts over when a new reply would exceed maxBytes', () => {
    const memo = new ReplyMemo(1232, { entries: 1024, maxBytes: 3 * per + 10 });
    for (const r of raws.slice(0, 3)) put(memo, r, { reply });
    expect(memo.size).toBe(3);
    put(memo, raws[3]!, { reply });
    expect(memo.size).toBe(1);
    expect(memo.heldBytes).toBe(per);
    expect(get(memo, raws[0]!)).toBeNull();
    expect(get(memo, raws[3]!)).not.toBeNull();
    expect(memo.counts.inserts).toBe(4);
  });

  it('keeps size equal to the entries held through displacements, drops and starting over', () => {
    const memo = new ReplyMemo(1232, { entries: 8, maxBytes: 40 * per });
    const held = () => (memo as unknown as { table: unknown[] }).table.filter((e) => e !== undefined).length;
    const many = Array.from({ length: 60 }, (_, i) => q({}, `m${String(i).padStart(2, '0')}.example.org.`));
    for (let round = 0; round < 4; round++) {
      many.forEach((r, i) => {
        put(memo, r, { reply, t: { memoUntil: T0 + (i % 3 === 0 ? 1 : 60_000) } });
        if (i % 5 === 0) get(memo, many[(i * 7) % many.length]!, { now: T0 + 1 }); // some stale: dropped
        expect(memo.size).toBe(held());
      });
    }
    expect(memo.size).toBeGreaterThan(0);
  });

  it('counts hits, misses, stale lookups and inserts, into counts shared across memos (reloads)', () => {
    const counts = newMemoCounts();
    const before = new ReplyMemo(1232, {}, counts);
    put(before, raws[0]!, { t: { memoUntil: T0 + 5 } });
    put(before, raws[1]!, { t: { memoOff: true } });
    get(before, raws[0]!);
    get(before, raws[0]!);
    get(before, raws[1]!);
    get(before, raws[0]!, { now: T0 + 5 });
    expect(counts).toEqual({ hits: 2, misses: 1, stale: 1, inserts: 1 });
    const after = new ReplyMemo(1232, {}, counts);
    expect(after.counts).toBe(counts);
    put(after, raws[2]!);
    get(after, raws[2]!);
    get(after, raws[3]!);
    expect(counts).toEqual({ hits: 3, misses: 2, stale: 1, inserts: 2 });
    expect(after.size).toBe(1);
  });
});

describe('reply memo through the pipeline (handle, then memoReply; no sockets)', () => {
  /** A block of loadbalance in front of a terminal handler answering `n` A records from prebuilt wire. */
  function pipeline(n: number) {
    const shared: Msg = {
      id: 0, opcode: 0, rcode: 0, flags: { qr: true, aa: true, tc: false, rd: false, ra: false, ad: false, cd: false },
      question: [{ name: NAME, type: Type.A, class: Class.IN }],
      answer: Array.from({ length: n }, (_, i) => rr(`${NAME} 30 IN A 10.0.${i >> 8}.${i & 255}`)),
      authority: [], additional: [], edns: null,
    };
    shared.wire = prebuild(shared);
    const zone: Handler = { name: 'zone', memo: true, serveDNS: () => shared };
    const block: BlockRuntime = {
      index: 0, zones: ['.'], chain: compileChain([loadbalanceHandler({ policy: 'round_robin', prefer: [] }), zone]),
      responseObservers: [], errorObservers: [], metrics: false, memo: true,
    };
    const memo = new ReplyMemo(1232);
    const ctx: PipelineContext = {
      server: 'dns://:53', router: new Router([{ zone: '.', block, stats: null }]), log: memoryLogger(),
      panics: new CounterChild(), maxUdpSize: 1232, memo,
    };
    /** The reply a client gets: from the memo when it has one, else from the chain. */
    const ask = (raw: Uint8Array, proto: 'udp' | 'tcp' = 'udp'): Uint8Array => {
      const hit = memoReply(ctx, raw, proto, performance.now());
      if (hit !== null) return hit.slice();
      let out: Uint8Array | undefined;
      const r = handle(ctx, raw, proto, '10.0.0.7', 40000, (b) => { out = b.slice(); });
      expect(r).toBeUndefined(); // a synchronous chain
      return out!;
    };
    return { memo, ask };
  }

  it('reuses a shuffled reply written from prebuilt wire, reshuffled each time', () => {
    const { memo, ask } = pipeline(4);
    const firsts = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const m = decode(ask(q({ id: i, edns: {} })));
      expect(m.id).toBe(i);
      expect(m.answer.map((r) => r.data).sort()).toEqual(['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.3']);
      firsts.add(m.answer[0]!.data as string);
    }
    expect(memo.counts.hits).toBe(59);
    expect(firsts.size).toBe(4);
  });

  it('a reply too large for the client (encoded, truncated) is not reused with runs that describe the prebuilt wire', () => {
    // 40 A records: 640 bytes of answers, over the 512 of a client without EDNS.
    const { ask } = pipeline(40);
    for (let i = 0; i < 5; i++) {
      const m = decode(ask(q({ id: i })));
      expect(m.id).toBe(i);
      expect(m.flags.tc).toBe(true);
      expect(m.answer.length).toBeLessThan(40);
    }
    // Over TCP the same reply fits and comes from the wire: reused.
    for (let i = 0; i < 3; i++) expect(decode(ask(q({ id: i }), 'tcp')).answer).toHaveLength(40);
  });
});
