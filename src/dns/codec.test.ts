import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import { DecodeError, decode, encode } from './codec.ts';
import { type Msg, type RR, Type, newMsg } from './types.ts';
import { rr, queryBytes } from '../../test/helpers.ts';

function msgWith(answer: RR[], authority: RR[] = [], additional: RR[] = []): Msg {
  const m = newMsg(7);
  m.flags.qr = true;
  m.flags.rd = true;
  m.question.push({ name: 'svc.ns.svc.cluster.local.', type: Type.ANY, class: 1 });
  m.answer = answer;
  m.authority = authority;
  m.additional = additional;
  return m;
}

const expectDecodeError = (b: Uint8Array | number[], re?: RegExp): void => {
  const buf = b instanceof Uint8Array ? b : Uint8Array.from(b);
  let err: unknown;
  try { decode(buf); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(DecodeError);
  if (re) expect((err as Error).message).toMatch(re);
};

describe('decode(encode(m)) round-trips every modelled type', () => {
  const all: RR[] = [
    rr('svc.ns.svc.cluster.local. 5 IN A 10.96.0.10'),
    rr('svc.ns.svc.cluster.local. 5 IN AAAA fd00:10:96::a'),
    rr('svc.ns.svc.cluster.local. 5 IN AAAA ::'),
    rr('svc.ns.svc.cluster.local. 5 IN AAAA 2001:db8:1:2:3:4:5:6'),
    rr('cluster.local. 5 IN NS ns.dns.cluster.local.'),
    rr('alias.ns.svc.cluster.local. 5 IN CNAME svc.ns.svc.cluster.local.'),
    rr('10.0.96.10.in-addr.arpa. 5 IN PTR svc.ns.svc.cluster.local.'),
    rr('_dns._udp.kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local.'),
    rr('cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 5'),
    rr('example.org. 300 IN MX 10 mail.example.org.'),
    rr('dns-version.cluster.local. 5 IN TXT "1.1.0" "" "with space"'),
    { name: 'svc.example.', type: Type.HTTPS, class: 1, ttl: 30, data: Uint8Array.from([0, 1, 0, 0, 1, 0, 3, 2, 104, 50]) },
    { name: 'example.', type: Type.DS, class: 1, ttl: 30, data: Uint8Array.from([0x30, 0x39, 8, 2, ...new Array<number>(32).fill(0xab)]) },
    { name: 'example.', type: 65280, class: 1, ttl: 0, data: new Uint8Array(0) },
    { name: 'ch.', type: Type.TXT, class: 3, ttl: 0, data: ['chaos'] },
  ];

  it('in every section', () => {
    const m = msgWith(all, all.slice(0, 5), all.slice(5));
    const d = decode(encode(m));
    expect(d).toEqual(m);
  });

  it('one record at a time, against dns-packet too', () => {
    for (const r of all) {
      const m = msgWith([r]);
      const b = encode(m);
      expect(decode(b).answer, `${r.name} ${r.type}`).toEqual([r]);
      const p = dnsPacket.decode(Buffer.from(b));
      expect(p.answers!.length).toBe(1);
      expect(p.answers![0]!.name).toBe(r.name.replace(/\.$/, ''));
    }
  });

  it('IPv6 text comes back in RFC 5952 form', () => {
    const m = msgWith([{ name: 'a.', type: 28, class: 1, ttl: 1, data: '2001:0DB8:0000:0000:0000:0000:0000:0001' },
      { name: 'a.', type: 28, class: 1, ttl: 1, data: '::ffff:10.0.0.1' }]);
    expect(decode(encode(m)).answer.map((r) => r.data)).toEqual(['2001:db8::1', '::ffff:a00:1']);
  });

  it('keeps the case of names as sent', () => {
    const m = newMsg(1);
    m.question.push({ name: 'MiXeD.Example.', type: 1, class: 1 });
    m.answer.push({ name: 'OTHER.example.', type: 5, class: 1, ttl: 1, data: 'Target.EXAMPLE.' });
    const d = decode(encode(m));
    expect(d.question[0]!.name).toBe('MiXeD.Example.');
    // "example." was first written as "Example." (pointer target), so later owners share that case.
    expect(d.answer[0]!.name).toBe('OTHER.Example.');
    expect(d.answer[0]!.data).toBe('Target.Example.');
  });

  it('carries BADVERS (16) through OPT', () => {
    const m = msgWith([]);
    m.rcode = 16;
    m.edns = { udpSize: 1232, version: 0, do: false, options: [] };
    const d = decode(encode(m));
    expect(d.rcode).toBe(16);
    expect(d.edns!.extRcode).toBe(1);
    expect(d.additional).toEqual([]);
    m.rcode = 0xfff;
    expect(decode(encode(m)).rcode).toBe(0xfff);
  });

  it('parses EDNS options and does not leave OPT in additional', () => {
    const m = msgWith([], [], [rr('a.example. 1 IN A 192.0.2.1')]);
    m.edns = { udpSize: 4096, version: 1, do: true, options: [
      { code: 10, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }, { code: 12, data: new Uint8Array(0) }] };
    const d = decode(encode(m));
    expect(d.edns).toEqual({ ...m.edns, extRcode: 0 });
    expect(d.additional.length).toBe(1);
  });
});

describe('decode: messages from elsewhere', () => {
  it('decodes a query built by hand', () => {
    const d = decode(queryBytes('Kubernetes.Default.svc.cluster.local.', Type.AAAA, { id: 99, cd: true, edns: { udpSize: 1400, do: true } }));
    expect(d.id).toBe(99);
    expect(d.flags).toEqual({ qr: false, aa: false, tc: false, rd: true, ra: false, ad: false, cd: true });
    expect(d.question).toEqual([{ name: 'Kubernetes.Default.svc.cluster.local.', type: 28, class: 1 }]);
    expect(d.edns).toEqual({ udpSize: 1400, version: 0, do: true, extRcode: 0, options: [] });
  });

  it('decodes what dns-packet encodes, keeping unknown RDATA exact', () => {
    const buf = dnsPacket.encode({
      type: 'response', id: 5, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: [{ type: 'A', name: 'example.com' }],
      answers: [
        { type: 'A', name: 'example.com', ttl: 60, data: '93.184.216.34' },
        { type: 'CAA', name: 'example.com', ttl: 60, data: { flags: 0, tag: 'issue', value: 'letsencrypt.org' } },
        { type: 'NAPTR', name: 'example.com', ttl: 60, data: { order: 1, preference: 2, flags: 'S', services: 'SIP+D2U', regexp: '', replacement: '_sip._udp.example.com' } },
        { type: 'RRSIG', name: 'example.com', ttl: 60, data: { typeCovered: 'A', algorithm: 8, labels: 2, originalTTL: 60, expiration: 1, inception: 0, keyTag: 1, signersName: 'example.com', signature: Buffer.from([1, 2, 3]) } },
      ],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: dnsPacket.DNSSEC_OK } as dnsPacket.Answer],
    });
    const d = decode(Uint8Array.from(buf));
    expect(d.answer[0]).toEqual({ name: 'example.com.', type: 1, class: 1, ttl: 60, data: '93.184.216.34' });
    expect(d.answer.slice(1).every((r) => r.data instanceof Uint8Array)).toBe(true);
    expect(d.edns!.do).toBe(true);
    expect(d.additional).toEqual([]);
    // Re-encoding passes the unknown types through byte for byte: dns-packet reads the same data back.
    const again = dnsPacket.decode(Buffer.from(encode(d)));
    const data = (p: dnsPacket.DecodedPacket): unknown[] => p.answers!.slice(1).map((a) => (a as { data?: unknown }).data);
    expect(data(again)).toEqual(data(dnsPacket.decode(buf)));
  });

  it('follows a compressed SRV target (RFC 2782 forbids it, some servers do it)', () => {
    const b = [0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
      1, 120, 7, ...Buffer.from('example'), 0, 0, 33, 0, 1,
      0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 10, 0, 1, 0, 2, 0, 80, 1, 121, 0xc0, 14];
    expect(decode(Uint8Array.from(b)).answer[0]!.data).toEqual({ priority: 1, weight: 2, port: 80, target: 'y.example.' });
  });

  it('returns RDATA copies, not views into the receive buffer', () => {
    const m = msgWith([{ name: 'a.', type: 99, class: 1, ttl: 1, data: Uint8Array.from([1, 2, 3]) }]);
    const b = encode(m);
    const d = decode(b);
    b.fill(0);
    expect(Array.from(d.answer[0]!.data as Uint8Array)).toEqual([1, 2, 3]);
  });

  it('ignores trailing bytes after the last record', () => {
    const b = encode(msgWith([rr('a. 1 IN A 1.2.3.4')]));
    expect(decode(Uint8Array.from([...b, 0, 0, 0])).answer.length).toBe(1);
  });
});

describe('decode: malformed input throws DecodeError', () => {
  const good = encode(msgWith([rr('a.example. 1 IN A 1.2.3.4')]));

  it('short and truncated messages', () => {
    expectDecodeError([], /header/);
    expectDecodeError([0, 1, 2], /header/);
    for (let n = 12; n < good.length; n++) expectDecodeError(good.subarray(0, n));
    // Counts promising more than there is.
    const more = Uint8Array.from(good);
    more[7] = 2;
    expectDecodeError(more);
  });

  it('bad names: pointer loops, forward pointers, label types, long names', () => {
    const hdr = [0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
    expectDecodeError([...hdr, 0xc0, 12, 0, 1, 0, 1], /pointer/);
    expectDecodeError([...hdr, 1, 97, 0xc0, 12, 0, 1, 0, 1], /pointer/);
    expectDecodeError([...hdr, 0xc0, 20, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0], /pointer/);
    expectDecodeError([...hdr, 0x40, 97, 0, 0, 1, 0, 1], /label type/);
    expectDecodeError([...hdr, 0x80, 97, 0, 0, 1, 0, 1], /label type/);
    const long: number[] = [];
    for (let i = 0; i < 5; i++) long.push(63, ...new Array<number>(63).fill(97));
    expectDecodeError([...hdr, ...long, 0, 0, 1, 0, 1], /255/);
  });

  it('bad RDATA for typed records', () => {
    const rec = (type: number, rdata: number[]): number[] => [0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0,
      1, 97, 0, type >> 8, type & 0xff, 0, 1, 0, 0, 0, 1, rdata.length >> 8, rdata.length & 0xff, ...rdata];
    expectDecodeError(rec(1, [1, 2, 3]), /A rdata/);
    expectDecodeError(rec(28, [1, 2, 3, 4]), /AAAA rdata/);
    expectDecodeError(rec(5, [1, 98, 0, 0]), /does not end/);
    expectDecodeError(rec(5, [1, 98]), /name/);
    expectDecodeError(rec(6, [0, 0, 1, 2, 3]), /SOA/);
    expectDecodeError(rec(15, [0, 1]), /MX/);
    expectDecodeError(rec(33, [0, 1, 0, 2, 0, 3]), /SRV/);
    expectDecodeError(rec(16, [5, 97]), /TXT/);
    // Names in RDATA may not run on into the next record.
    // CNAME rdata [1 'b'] whose name would end in the next record's root owner byte.
    const spill = rec(5, [1, 98]);
    spill[7] = 2;
    expectDecodeError(spill.concat([0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]), /does not end/);
    expect(decode(Uint8Array.from(rec(5, [1, 98, 0]))).answer[0]!.data).toBe('b.');
    expect(decode(Uint8Array.from(rec(16, []))).answer[0]!.data).toEqual([]);
    expect(decode(Uint8Array.from(rec(99, [1, 2]))).answer[0]!.data).toEqual(Uint8Array.from([1, 2]));
  });

  it('bad OPT records', () => {
    const opt = (owner: number[], rdata: number[], section: 'an' | 'ar' = 'ar', n = 1): number[] => {
      const rec = [...owner, 0, 41, 4, 0xd0, 0, 0, 0, 0, rdata.length >> 8, rdata.length & 0xff, ...rdata];
      const counts = section === 'an' ? [0, n, 0, 0, 0, 0] : [0, 0, 0, 0, 0, n];
      return [0, 1, 0x81, 0x80, 0, 0, ...counts, ...Array.from({ length: n }, () => rec).flat()];
    };
    expect(decode(Uint8Array.from(opt([0], [0, 10, 0, 2, 1, 2]))).edns!.options).toEqual([{ code: 10, data: Uint8Array.from([1, 2]) }]);
    expectDecodeError(opt([0], [], 'an'), /outside/);
    expectDecodeError(opt([0], [], 'ar', 2), /more than one/);
    expectDecodeError(opt([1, 97, 0], []), /root/);
    expectDecodeError(opt([0], [0, 10, 0]), /truncated EDNS option/);
    expectDecodeError(opt([0], [0, 10, 0, 3, 1, 2]), /runs past/);
  });
});
