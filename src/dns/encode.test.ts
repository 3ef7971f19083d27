import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import { encode } from './encode.ts';
import { decode } from './codec.ts';
import { type Msg, type RR, Type, newMsg } from './types.ts';
import { rr } from '../../test/helpers.ts';

const HEADLESS = 'x.svc.ns.svc.cluster.local.';

function reply(qname: string, qtype: number, answer: RR[] = [], authority: RR[] = [], additional: RR[] = []): Msg {
  const m = newMsg(0x4242);
  m.flags.qr = true;
  m.flags.aa = true;
  m.question.push({ name: qname, type: qtype, class: 1 });
  m.answer = answer;
  m.authority = authority;
  m.additional = additional;
  return m;
}

function headless(n: number): Msg {
  const answer: RR[] = [];
  for (let i = 0; i < n; i++) answer.push(rr(`${HEADLESS} 5 IN A 10.244.${i >> 8}.${i & 0xff}`));
  return reply(HEADLESS, Type.A, answer);
}

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;

/** How often `needle` occurs in `hay` (to see that a label was written once and pointed at after). */
function countOccurrences(hay: Uint8Array, needle: Uint8Array): number {
  let n = 0;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    n++;
  }
  return n;
}

function wireName(name: string): Uint8Array {
  const out: number[] = [];
  for (const l of name.replace(/\.$/, '').split('.')) out.push(l.length, ...Buffer.from(l, 'latin1'));
  out.push(0);
  return Uint8Array.from(out);
}

describe('encode: header', () => {
  it('writes id, every flag, opcode, the low rcode bits and the counts', () => {
    const m = reply('a.example.', Type.A, [rr('a.example. 60 IN A 192.0.2.1')], [rr('example. 60 IN NS ns.example.')]);
    m.id = 0xbeef;
    m.opcode = 2;
    m.rcode = 3;
    m.flags = { qr: true, aa: true, tc: true, rd: true, ra: true, ad: true, cd: true };
    const b = encode(m);
    expect(u16(b, 0)).toBe(0xbeef);
    expect(u16(b, 2)).toBe(0x8000 | (2 << 11) | 0x0400 | 0x0200 | 0x0100 | 0x0080 | 0x0020 | 0x0010 | 3);
    expect([u16(b, 4), u16(b, 6), u16(b, 8), u16(b, 10)]).toEqual([1, 1, 1, 0]);
    const d = decode(b);
    expect(d.flags).toEqual(m.flags);
    expect(d.opcode).toBe(2);
    expect(d.rcode).toBe(3);
  });

  it('clears flags that are off', () => {
    const m = newMsg(1);
    m.question.push({ name: 'example.', type: 1, class: 1 });
    expect(u16(encode(m), 2)).toBe(0);
  });

  it('agrees with dns-packet on flags and rcode', () => {
    const m = reply('a.example.', Type.A);
    m.rcode = 3;
    m.flags.rd = true;
    m.flags.ra = true;
    const p = dnsPacket.decode(Buffer.from(encode(m)));
    expect(p.id).toBe(0x4242);
    expect((p as { rcode?: string }).rcode).toBe('NXDOMAIN');
    expect(p.flag_aa && p.flag_rd && p.flag_ra && p.flag_qr).toBe(true);
    expect(p.flag_tc).toBe(false);
  });
});

describe('encode: name compression', () => {
  it('a 20-record headless answer is ~364 bytes, not ~840', () => {
    const b = encode(headless(20));
    // 12 header + 32 question + 20 × (2 pointer + 10 + 4)
    expect(b.length).toBe(12 + 32 + 20 * 16);
    const p = dnsPacket.decode(Buffer.from(b));
    expect(p.answers!.length).toBe(20);
    expect(p.answers!.every((a) => a.name === 'x.svc.ns.svc.cluster.local')).toBe(true);
    // dns-packet's own encoding of the same message does not compress.
    const plain = dnsPacket.encode(p);
    expect(plain.length).toBeGreaterThan(800);
  });

  it('points owners at the question case-insensitively', () => {
    const m = reply('Web.Example.COM.', Type.A, [rr('web.example.com. 60 IN A 192.0.2.1')]);
    const b = encode(m);
    // Question at 12; the answer owner is one pointer to it.
    expect(b[12 + 17 + 4]).toBe(0xc0);
    expect(b[12 + 17 + 5]).toBe(12);
    expect(decode(b).answer[0]!.name).toBe('Web.Example.COM.');
  });

  it('compresses suffixes, and names inside NS, CNAME, PTR, SOA and MX', () => {
    const m = reply('www.example.org.', Type.A, [
      rr('www.example.org. 60 IN CNAME web.example.org.'),
      rr('web.example.org. 60 IN A 192.0.2.7'),
      rr('example.org. 60 IN MX 10 mail.example.org.'),
      rr('1.2.0.192.in-addr.arpa. 60 IN PTR web.example.org.'),
    ], [
      rr('example.org. 60 IN NS ns1.example.org.'),
      rr('example.org. 60 IN SOA ns1.example.org. hostmaster.example.org. 1 2 3 4 5'),
    ]);
    const b = encode(m);
    // "example" is written exactly once; every other occurrence is a pointer.
    expect(countOccurrences(b, Buffer.from('\x07example', 'latin1'))).toBe(1);
    expect(countOccurrences(b, Buffer.from('\x03web', 'latin1'))).toBe(1);
    expect(countOccurrences(b, Buffer.from('\x03ns1', 'latin1'))).toBe(1);
    const d = decode(b);
    expect(d.answer).toEqual(m.answer);
    expect(d.authority).toEqual(m.authority);
    // Independent decoder agrees.
    const p = dnsPacket.decode(Buffer.from(b));
    const data = (a: dnsPacket.Answer): unknown => (a as { data?: unknown }).data;
    expect(p.answers!.map(data)).toEqual(['web.example.org', '192.0.2.7', { preference: 10, exchange: 'mail.example.org' }, 'web.example.org']);
    expect((data(p.authorities![1]!) as { rname: string }).rname).toBe('hostmaster.example.org');
  });

  it('never compresses the SRV target (RFC 2782), but later names may point into it', () => {
    const m = reply('_http._tcp.svc.ns.svc.cluster.local.', Type.SRV,
      [rr('_http._tcp.svc.ns.svc.cluster.local. 5 IN SRV 0 100 80 pod-1.svc.ns.svc.cluster.local.')], [],
      [rr('pod-1.svc.ns.svc.cluster.local. 5 IN A 10.0.0.1')]);
    const b = encode(m);
    // The target is written in full even though "svc.ns.svc.cluster.local." is in the question.
    expect(countOccurrences(b, wireName('pod-1.svc.ns.svc.cluster.local.'))).toBe(1);
    const d = decode(b);
    expect(d.answer).toEqual(m.answer);
    expect(d.additional).toEqual(m.additional);
    // The additional owner is a pointer to the target.
    const addOwner = b.length - 16;
    expect(b[addOwner]! & 0xc0).toBe(0xc0);
  });

  it('never points at offsets >= 0x4000', () => {
    const answer: RR[] = [];
    // ~30 KiB of distinct names: suffixes first seen past 16 KiB must be written out, not pointed at.
    for (let i = 0; i < 600; i++) answer.push(rr(`host-${i}.zone-${i}.example. 60 IN TXT "${'x'.repeat(20)}"`));
    for (let i = 0; i < 600; i++) answer.push(rr(`again.host-${i}.zone-${i}.example. 60 IN A 10.0.${i >> 8}.${i & 0xff}`));
    const m = reply('example.', Type.ANY, answer);
    const b = encode(m);
    expect(b.length).toBeGreaterThan(0x4000 * 2);
    expect(decode(b).answer).toEqual(answer);
    expect(dnsPacket.decode(Buffer.from(b)).answers!.length).toBe(1200);
  });

  it('handles the root name', () => {
    const m = reply('.', Type.NS, [rr('. 518400 IN NS a.root-servers.net.')]);
    const b = encode(m);
    expect(b[12]).toBe(0);
    const d = decode(b);
    expect(d.question[0]!.name).toBe('.');
    expect(d.answer[0]!.name).toBe('.');
  });

  it('treats names without a trailing dot as FQDNs', () => {
    const m = reply('a.example', Type.A, [{ name: 'a.example', type: 1, class: 1, ttl: 1, data: '192.0.2.1' }]);
    const d = decode(encode(m));
    expect(d.question[0]!.name).toBe('a.example.');
    expect(d.answer[0]!.name).toBe('a.example.');
    expect(encode(m).length).toBe(12 + 11 + 4 + 2 + 10 + 4);
  });

  it('round-trips escapes as readName produces them', () => {
    const names = [
      'a\\.b.example.', 'back\\\\slash.example.', '\\000\\255\\032x.example.', 'sp\\032ace.example.',
      'UPPER\\.Case.Example.', '\\127.example.',
    ];
    for (const n of names) {
      const m = reply(n, Type.A, [{ name: n, type: 1, class: 1, ttl: 1, data: '192.0.2.1' }]);
      const b = encode(m);
      const d = decode(b);
      expect(d.question[0]!.name).toBe(n);
      expect(d.answer[0]!.name).toBe(n);
    }
    // "\." is a dot inside a label: one label "a.b", then "example".
    const b = encode(reply('a\\.b.example.', Type.A));
    expect(Array.from(b.subarray(12, 25))).toEqual([3, 97, 46, 98, 7, ...Buffer.from('example'), 0]);
    // \DDD for a printable letter is the same name as the letter: compressed against it.
    const m = reply('abc.example.', Type.A, [{ name: '\\097bc.example.', type: 1, class: 1, ttl: 1, data: '192.0.2.1' }]);
    expect(decode(encode(m)).answer[0]!.name).toBe('abc.example.');
  });

  it('compresses escaped names against each other, case-insensitively', () => {
    const n = 'a\\032b.Example.';
    const m = reply(n, Type.A, [{ name: 'A\\032B.example.', type: 1, class: 1, ttl: 1, data: '192.0.2.1' }]);
    const b = encode(m);
    expect(b.length).toBe(12 + 13 + 4 + 16);
  });

  it('writes non-ASCII as UTF-8', () => {
    const d = decode(encode(reply('bücher.example.', Type.A)));
    expect(d.question[0]!.name).toBe('b\\195\\188cher.example.');
    expect(decode(encode(reply('\u{1F600}.x.', Type.A))).question[0]!.name).toBe('\\240\\159\\152\\128.x.');
    expect(decode(encode(reply('\\\u{1F600}.x.', Type.A))).question[0]!.name).toBe('\\240\\159\\152\\128.x.');
    expect(decode(encode(reply('\ud800.x.', Type.A))).question[0]!.name).toBe('\\239\\191\\189.x.');
  });

  it('agrees with an independent decoder on many random names (hash table stress)', () => {
    let seed = 12345;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
    const alphabet = 'aAbBcC-0_';
    const zones = ['svc.cluster.local.', 'Cluster.Local.', 'example.', 'b.example.', 'B.EXAMPLE.', 'a\\.b.example.'];
    const label = (): string => Array.from({ length: 1 + rnd(3) }, () => alphabet[rnd(alphabet.length)]).join('');
    for (let round = 0; round < 20; round++) {
      const answer: RR[] = [];
      for (let i = 0; i < 400; i++) {
        const owner = [label(), label()].slice(0, 1 + rnd(2)).join('.') + '.' + zones[rnd(zones.length)];
        const target = label() + '.' + zones[rnd(zones.length)];
        answer.push({ name: owner, type: 5, class: 1, ttl: 1, data: target });
      }
      const m = reply('q.' + zones[rnd(zones.length)], Type.CNAME, answer);
      const b = encode(m);
      const d = decode(b);
      const lower = (rs: RR[]): string[] => rs.map((r) => `${r.name} ${String(r.data)}`.toLowerCase());
      expect(lower(d.answer)).toEqual(lower(answer));
      const p = dnsPacket.decode(Buffer.from(b));
      expect(p.answers!.map((a) => a.name.toLowerCase() + '.')).toEqual(d.answer.map((r) => r.name.replace(/\\\./g, '.').toLowerCase()));
    }
  });

  it('rejects labels over 63 and names over 255 bytes', () => {
    expect(() => encode(reply(`${'a'.repeat(64)}.example.`, Type.A))).toThrow(/63/);
    expect(() => encode(reply(`${'a'.repeat(63)}.example.`, Type.A))).not.toThrow();
    const long = Array.from({ length: 4 }, () => 'b'.repeat(63)).join('.') + '.'; // 4×64+1 = 257
    expect(() => encode(reply(long, Type.A))).toThrow(/255/);
    const max = Array.from({ length: 3 }, () => 'b'.repeat(63)).join('.') + '.' + 'c'.repeat(61) + '.'; // 255
    expect(() => encode(reply(max, Type.A))).not.toThrow();
    expect(() => encode(reply(`${'\\065'.repeat(64)}.example.`, Type.A))).toThrow(/63/);
    expect(() => encode(reply('a..example.', Type.A))).toThrow(/empty label/);
    expect(() => encode(reply('\\25x.example.', Type.A))).toThrow(/escape/);
    expect(() => encode(reply('\\300.example.', Type.A))).toThrow(/escape/);
    // In RDATA too.
    expect(() => encode(reply('a.', Type.CNAME, [rr(`a. 1 IN CNAME ${'z'.repeat(64)}.example.`)]))).toThrow(/63/);
  });
});

describe('encode: RDATA', () => {
  const addr = (type: 1 | 28, data: string): Msg => reply('a.example.', type, [{ name: 'a.example.', type, class: 1, ttl: 1, data }]);

  it('parses every IPv6 form', () => {
    const cases: Array<[string, string]> = [
      ['::', '00000000000000000000000000000000'],
      ['::1', '00000000000000000000000000000001'],
      ['1::', '00010000000000000000000000000000'],
      ['2001:DB8::8:800:200C:417A', '20010db80000000000080800200c417a'],
      ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
      ['1:2:3:4:5:6::8', '00010002000300040005000600000008'],
      ['::ffff:10.1.2.3', '00000000000000000000ffff0a010203'],
      ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221'],
      ['1:2:3:4:5:6:1.2.3.4', '00010002000300040005000601020304'],
      ['::1.2.3.4', '00000000000000000000000001020304'],
      ['fe80::1%eth0', 'fe800000000000000000000000000001'],
    ];
    for (const [text, hex] of cases) {
      const b = encode(addr(28, text));
      expect(Buffer.from(b.subarray(b.length - 16)).toString('hex'), text).toBe(hex);
      expect(u16(b, b.length - 18)).toBe(16);
    }
  });

  it('rejects bad addresses', () => {
    for (const bad of [':::', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', ':1::', '1:', '::1.2.3', '::g',
      '1:2:3:4:5:6:7:1.2.3.4', '1.2.3.4', '', '::1.2.3.256']) {
      expect(() => encode(addr(28, bad)), bad).toThrow(/IPv6/);
    }
    for (const bad of ['256.0.0.1', '1.2.3', '1.2.3.4.5', 'a.b.c.d', '', '1..2.3', '1.2.3.4 ', '::1', '1234.1.1.1']) {
      expect(() => encode(addr(1, bad)), bad).toThrow(/IPv4/);
    }
    const b = encode(addr(1, '192.0.2.255'));
    expect(Array.from(b.subarray(b.length - 4))).toEqual([192, 0, 2, 255]);
  });

  it('writes TXT strings; an empty list is one empty string', () => {
    let b = encode(reply('t.example.', Type.TXT, [rr('t.example. 1 IN TXT "hello" "" "world"')]));
    expect(Array.from(b.subarray(b.length - 13))).toEqual([5, ...Buffer.from('hello'), 0, 5, ...Buffer.from('world')]);
    b = encode(reply('t.example.', Type.TXT, [{ name: 't.example.', type: 16, class: 1, ttl: 1, data: [] }]));
    expect(u16(b, b.length - 3)).toBe(1);
    expect(b[b.length - 1]).toBe(0);
    expect(decode(b).answer[0]!.data).toEqual(['']);
    const s255 = 'y'.repeat(255);
    expect(decode(encode(reply('t.', Type.TXT, [{ name: 't.', type: 16, class: 1, ttl: 1, data: [s255] }]))).answer[0]!.data).toEqual([s255]);
    expect(() => encode(reply('t.', Type.TXT, [{ name: 't.', type: 16, class: 1, ttl: 1, data: [s255 + 'y'] }]))).toThrow(/255/);
    // Bytes 0x80-0xff (what decode yields for binary TXT) go back as single bytes; wider text as UTF-8.
    b = encode(reply('t.', Type.TXT, [{ name: 't.', type: 16, class: 1, ttl: 1, data: ['\xff\x00', 'é€'] }]));
    expect(Array.from(b.subarray(b.length - 9))).toEqual([2, 0xff, 0, 5, 0xc3, 0xa9, 0xe2, 0x82, 0xac]);
    expect(decode(b).answer[0]!.data).toEqual(['\xff\x00', 'Ã©â\x82¬']);
  });

  it('writes raw RDATA verbatim for any type', () => {
    const data = Uint8Array.from([0, 1, 0, 0, 1, 0, 3, 2, 104, 50]); // HTTPS 1 . alpn=h2
    const m = reply('svc.example.', Type.HTTPS, [{ name: 'svc.example.', type: Type.HTTPS, class: 1, ttl: 30, data }]);
    const b = encode(m);
    expect(Array.from(b.subarray(b.length - data.length))).toEqual(Array.from(data));
    expect(u16(b, b.length - data.length - 2)).toBe(data.length);
    const weird = reply('a.', Type.A, [{ name: 'a.', type: 1, class: 1, ttl: 1, data: Uint8Array.from([9, 9, 9, 9]) }]);
    expect(decode(encode(weird)).answer[0]!.data).toBe('9.9.9.9');
    expect(() => encode(reply('a.', 99, [{ name: 'a.', type: 99, class: 1, ttl: 1, data: 'text' } as unknown as RR]))).toThrow(/Uint8Array/);
  });

  it('clamps TTLs to 0..2^32-1', () => {
    const d = decode(encode(reply('a.', Type.A, [
      { name: 'a.', type: 1, class: 1, ttl: -5, data: '1.1.1.1' },
      { name: 'a.', type: 1, class: 1, ttl: 2 ** 40, data: '1.1.1.1' },
    ])));
    expect(d.answer.map((r) => r.ttl)).toEqual([0, 0xffffffff]);
  });
});

describe('encode: EDNS', () => {
  it('appends OPT last with size, version, DO, extended rcode and options', () => {
    const m = reply('a.example.', Type.A, [rr('a.example. 1 IN A 192.0.2.1')], [], [rr('b.example. 1 IN A 192.0.2.2')]);
    m.rcode = 16; // BADVERS
    m.edns = { udpSize: 1232, version: 0, do: true, options: [{ code: 10, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }] };
    const b = encode(m);
    expect(b[3]! & 0xf).toBe(0);
    expect(u16(b, 10)).toBe(2);
    const opt = b.length - 11 - 12;
    expect(Array.from(b.subarray(opt, opt + 11))).toEqual([0, 0, 41, 0x04, 0xd0, 1, 0, 0x80, 0, 0, 12]);
    const p = dnsPacket.decode(Buffer.from(b));
    const o = p.additionals![1] as unknown as { type: string; udpPayloadSize: number; extendedRcode: number; flag_do: boolean; options: Array<{ code: number }> };
    expect(o.type).toBe('OPT');
    expect(o.udpPayloadSize).toBe(1232);
    expect(o.extendedRcode).toBe(1);
    expect(o.flag_do).toBe(true);
    expect(o.options[0]!.code).toBe(10);
    const d = decode(b);
    expect(d.rcode).toBe(16);
    expect(d.edns).toEqual({ udpSize: 1232, version: 0, do: true, extRcode: 1, options: m.edns.options });
    expect(d.additional).toEqual(m.additional);
  });

  it('ignores an OPT record left in msg.additional', () => {
    const m = reply('a.', Type.A);
    m.additional.push({ name: '.', type: 41, class: 512, ttl: 0, data: new Uint8Array(0) });
    m.edns = { udpSize: 4096, version: 0, do: false, options: [] };
    const b = encode(m);
    expect(u16(b, 10)).toBe(1);
    expect(decode(b).edns!.udpSize).toBe(4096);
  });
});

describe('encode: truncation', () => {
  it('keeps what fits, sets TC, keeps OPT, counts match', () => {
    const m = headless(100); // 12 + 32 + 1600 = 1644 bytes
    m.edns = { udpSize: 1232, version: 0, do: false, options: [] };
    m.authority = [rr('cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 2 3 4 5')];
    const b = encode(m, 512);
    expect(b.length).toBeLessThanOrEqual(512);
    const d = decode(b);
    expect(d.flags.tc).toBe(true);
    expect(d.answer.length).toBe(Math.floor((512 - 11 - 44) / 16)); // 28
    expect(d.authority.length).toBe(0);
    expect(d.edns?.udpSize).toBe(1232);
    expect([u16(b, 6), u16(b, 8), u16(b, 10)]).toEqual([28, 0, 1]);
    expect(d.answer).toEqual(m.answer.slice(0, 28));
  });

  it('is a no-op when the message fits exactly', () => {
    const m = headless(29); // 44 + 464 = 508
    expect(encode(m, 508).length).toBe(508);
    expect(decode(encode(m, 508)).flags.tc).toBe(false);
    const d = decode(encode(m, 507));
    expect(d.flags.tc).toBe(true);
    expect(d.answer.length).toBe(28);
  });

  it('sets TC when authority records are dropped', () => {
    const m = headless(10); // 204 bytes
    for (let i = 0; i < 30; i++) m.authority.push(rr(`cluster.local. 5 IN NS ns${i}.cluster.local.`));
    const b = encode(m, 512);
    const d = decode(b);
    expect(b.length).toBeLessThanOrEqual(512);
    expect(d.flags.tc).toBe(true);
    expect(d.answer.length).toBe(10);
    expect(d.authority.length).toBeGreaterThan(0);
    expect(d.authority.length).toBeLessThan(30);
    expect(u16(b, 8)).toBe(d.authority.length);
  });

  it('drops additional records silently', () => {
    const m = headless(10);
    for (let i = 0; i < 40; i++) m.additional.push(rr(`extra-${i}.cluster.local. 5 IN A 10.0.0.${i}`));
    m.edns = { udpSize: 512, version: 0, do: true, options: [] };
    const b = encode(m, 512);
    const d = decode(b);
    expect(b.length).toBeLessThanOrEqual(512);
    expect(d.flags.tc).toBe(false);
    expect(d.answer.length).toBe(10);
    expect(d.additional.length).toBeGreaterThan(0);
    expect(d.additional.length).toBeLessThan(40);
    expect(u16(b, 10)).toBe(d.additional.length + 1);
    expect(d.edns?.do).toBe(true);
  });

  it('adds nothing after the first answer that does not fit, even smaller ones', () => {
    const big = { name: 'a.example.', type: 16, class: 1, ttl: 1, data: ['z'.repeat(255), 'z'.repeat(255)] } as RR;
    const m = reply('a.example.', Type.TXT, [rr('a.example. 1 IN TXT "small"'), big, rr('a.example. 1 IN TXT "small2"')],
      [rr('example. 1 IN NS ns.example.')], [rr('ns.example. 1 IN A 192.0.2.1')]);
    const d = decode(encode(m, 512));
    expect(d.flags.tc).toBe(true);
    expect(d.answer.length).toBe(1);
    expect(d.authority.length + d.additional.length).toBe(0);
  });

  it('always returns header, question and OPT, even over the limit', () => {
    const m = headless(3);
    m.edns = { udpSize: 512, version: 0, do: false, options: [{ code: 65001, data: new Uint8Array(600) }] };
    const b = encode(m, 512);
    const d = decode(b);
    expect(d.flags.tc).toBe(true);
    expect(d.answer.length).toBe(0);
    expect(d.edns!.options[0]!.data.length).toBe(600);
  });

  it('caps maxSize at 65535', () => {
    const m = headless(5000); // ~80 KB uncompressed budget
    const b = encode(m, 100000);
    expect(b.length).toBeLessThanOrEqual(65535);
    const d = decode(b);
    expect(d.flags.tc).toBe(true);
    expect(d.answer.length).toBe(Math.floor((65535 - 44) / 16));
  });
});

describe('encode: scratch reuse', () => {
  it('returns independent copies', () => {
    const a = encode(headless(1));
    const a2 = Uint8Array.from(a);
    encode(reply('zzzzzzzz.example.', Type.A, [rr('zzzzzzzz.example. 1 IN A 1.2.3.4')]));
    expect(a).toEqual(a2);
  });
});
