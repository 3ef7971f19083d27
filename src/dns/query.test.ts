import { describe, expect, it } from 'vitest';
import { parseQuery, readName, type ParsedQuery, type Reject } from './query.ts';
import { Type } from './types.ts';
import { queryBytes } from '../../test/helpers.ts';

function ok(buf: Uint8Array | number[]): ParsedQuery {
  const r = parseQuery(buf instanceof Uint8Array ? buf : Uint8Array.from(buf));
  if ('kind' in r) throw new Error(`expected a query, got ${r.kind}: ${r.reason}`);
  return r;
}
function rejected(buf: Uint8Array | number[]): Reject {
  const r = parseQuery(buf instanceof Uint8Array ? buf : Uint8Array.from(buf));
  if (!('kind' in r)) throw new Error(`expected a reject, got a query for ${r.qname}`);
  return r;
}

/** A query header with the given counts, then `body`. */
const withCounts = (qd: number, an: number, ns: number, ar: number, body: number[], flags = 0x0100): number[] =>
  [0x12, 0x34, flags >> 8, flags & 0xff, 0, qd, 0, an, 0, ns, 0, ar, ...body];
const label = (s: string): number[] => [s.length, ...Buffer.from(s, 'latin1')];

describe('parseQuery: accepted queries', () => {
  it('reads header, question and positions', () => {
    const raw = queryBytes('Kube-DNS.kube-system.svc.cluster.local.', Type.SRV, { id: 0xbeef, rd: true, cd: true });
    const q = ok(raw);
    expect(q.id).toBe(0xbeef);
    expect(q.flags).toBe(0x0110);
    expect(q.opcode).toBe(0);
    expect(q.qname).toBe('Kube-DNS.kube-system.svc.cluster.local.');
    expect(q.qtype).toBe(Type.SRV);
    expect(q.qclass).toBe(1);
    expect(q.qnameEnd).toBe(12 + 40);
    expect(q.questionEnd).toBe(q.qnameEnd + 4);
    expect(q.edns).toBeNull();
    expect([q.ancount, q.nscount, q.arcount]).toEqual([0, 0, 0]);
  });

  it('keeps the opcode for the server to judge', () => {
    expect(ok(queryBytes('a.', Type.A, { opcode: 5 })).opcode).toBe(5);
  });

  it('reads the root name', () => {
    const q = ok(queryBytes('.', Type.NS));
    expect(q.qname).toBe('.');
    expect(q.qnameEnd).toBe(13);
  });

  it('escapes odd bytes like miekg/dns', () => {
    const q = ok(withCounts(1, 0, 0, 0, [...label('a.b'), 3, 0x5c, 0x20, 0xff, 0, 0, 1, 0, 1]));
    expect(q.qname).toBe('a\\.b.\\\\\\032\\255.');
  });

  it('marks a compressed question name with qnameEnd -1', () => {
    // A name may point backwards only; a pointer into the header is legal but odd.
    const q = ok(withCounts(1, 0, 0, 0, [0xc0, 4, 0, 1, 0, 1]));
    expect(q.qnameEnd).toBe(-1);
  });

  it('parses OPT: size, version, DO and options', () => {
    const options = Uint8Array.from([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 12, 0, 0]);
    const q = ok(queryBytes('a.example.', Type.A, { edns: { udpSize: 4096, do: true, version: 0, options } }));
    expect(q.edns).toEqual({ udpSize: 4096, version: 0, do: true, options });
    expect(q.arcount).toBe(1);
    expect(ok(queryBytes('a.', Type.A, { edns: { version: 1 } })).edns!.version).toBe(1);
    expect(ok(queryBytes('a.', Type.A, { edns: {} })).edns!.do).toBe(false);
  });

  it('skips answer, authority and other additional records', () => {
    const rec = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4];
    const opt = [0, 0, 41, 2, 0, 0, 0, 0x80, 0, 0, 0];
    const q = ok(withCounts(1, 1, 1, 2, [...label('x'), 0, 0, 1, 0, 1, ...rec, ...rec, ...rec, ...opt]));
    expect(q.edns).toEqual({ udpSize: 512, version: 0, do: true, options: new Uint8Array(0) });
  });
});

describe('parseQuery: dropped without a reply', () => {
  it('drops anything shorter than a header', () => {
    for (let n = 0; n < 12; n++) expect(rejected(new Uint8Array(n)).kind).toBe('drop');
  });
  it('drops responses (QR set)', () => {
    const raw = queryBytes('a.', Type.A);
    raw[2]! |= 0x80;
    expect(rejected(raw)).toMatchObject({ kind: 'drop', reason: expect.stringMatching(/QR/) });
  });
});

describe('parseQuery: FORMERR', () => {
  const formerr = (buf: Uint8Array | number[], re: RegExp): void => {
    const r = rejected(buf);
    expect(r.kind).toBe('formerr');
    expect(r.reason).toMatch(re);
    if (r.kind === 'formerr') expect(r.id).toBe(buf instanceof Uint8Array ? (buf[0]! << 8) | buf[1]! : 0x1234);
  };

  it('QDCOUNT 0 and 2', () => {
    formerr(withCounts(0, 0, 0, 0, []), /QDCOUNT 0/);
    formerr(withCounts(2, 0, 0, 0, [...label('a'), 0, 0, 1, 0, 1, ...label('b'), 0, 0, 1, 0, 1]), /QDCOUNT 2/);
  });

  it('carries id, opcode and flags for the FORMERR reply', () => {
    const r = rejected(withCounts(0, 0, 0, 0, [], (2 << 11) | 0x0100));
    expect(r).toEqual({ kind: 'formerr', reason: 'QDCOUNT 0', id: 0x1234, opcode: 2, flags: (2 << 11) | 0x0100 });
  });

  it('pointer loops and forward pointers', () => {
    formerr(withCounts(1, 0, 0, 0, [0xc0, 12, 0, 1, 0, 1]), /pointer/); // points at itself
    formerr(withCounts(1, 0, 0, 0, [...label('a'), 0xc0, 12, 0, 1, 0, 1]), /pointer/); // back to its own start
    formerr(withCounts(1, 0, 0, 0, [0xc0, 14, 0, 0, 1, 0, 1]), /pointer/); // forward
    formerr(withCounts(1, 0, 0, 0, [0xc0]), /pointer runs past/);
    // A loop spread over two records.
    formerr(withCounts(1, 1, 0, 0, [...label('a'), 0, 0, 1, 0, 1, 0xc0, 21, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]), /pointer/);
  });

  it('label types 0x40 and 0x80 (labels longer than 63)', () => {
    formerr(withCounts(1, 0, 0, 0, [64, ...new Array<number>(64).fill(97), 0, 0, 1, 0, 1]), /bad label type/);
    formerr(withCounts(1, 0, 0, 0, [0x80, 97, 0, 0, 1, 0, 1]), /bad label type/);
    expect(ok(withCounts(1, 0, 0, 0, [63, ...new Array<number>(63).fill(97), 0, 0, 1, 0, 1])).qname.length).toBe(64);
  });

  it('names longer than 255 bytes', () => {
    const four = [...Array.from({ length: 4 }, () => [63, ...new Array<number>(63).fill(97)]).flat()];
    formerr(withCounts(1, 0, 0, 0, [...four, 0, 0, 1, 0, 1]), /255/);
    // 255 exactly is fine: 3 × 64 + 62 + root.
    const max = [...Array.from({ length: 3 }, () => [63, ...new Array<number>(63).fill(97)]).flat(), 61, ...new Array<number>(61).fill(98)];
    expect(ok(withCounts(1, 0, 0, 0, [...max, 0, 0, 1, 0, 1])).qnameEnd).toBe(12 + 255);
    // Also when the length is reached through a pointer: "x." + the 255-byte question name.
    formerr(withCounts(1, 1, 0, 0, [...max, 0, 0, 1, 0, 1, ...label('x'), 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]), /255/);
  });

  it('names and questions running past the end', () => {
    formerr(withCounts(1, 0, 0, 0, [3, 97]), /past the end/);
    formerr(withCounts(1, 0, 0, 0, [1, 97]), /past the end/);
    formerr(withCounts(1, 0, 0, 0, [1, 97, 0, 0, 1, 0]), /question runs past/);
  });

  it('records running past the end', () => {
    const q = [...label('a'), 0, 0, 1, 0, 1];
    formerr(withCounts(1, 0, 0, 1, q), /past the end/);
    formerr(withCounts(1, 0, 0, 1, [...q, 0, 0, 41, 2, 0]), /record runs past/);
    formerr(withCounts(1, 0, 0, 1, [...q, 0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 5, 1]), /rdata runs past/);
  });

  it('bogus OPT records', () => {
    const q = [...label('a'), 0, 0, 1, 0, 1];
    const opt = (rdata: number[], owner = [0]): number[] => [...owner, 0, 41, 4, 0, 0, 0, 0, 0, rdata.length >> 8, rdata.length & 0xff, ...rdata];
    formerr(withCounts(1, 0, 0, 2, [...q, ...opt([]), ...opt([])]), /more than one OPT/);
    formerr(withCounts(1, 1, 0, 0, [...q, ...opt([])]), /outside the additional/);
    formerr(withCounts(1, 0, 1, 0, [...q, ...opt([])]), /outside the additional/);
    formerr(withCounts(1, 0, 0, 1, [...q, ...opt([], label('x').concat([0]))]), /not the root/);
    formerr(withCounts(1, 0, 0, 1, [...q, ...opt([0, 10, 0])]), /truncated EDNS option/);
    formerr(withCounts(1, 0, 0, 1, [...q, ...opt([0, 10, 0, 9, 1, 2, 3])]), /option runs past/);
    formerr(withCounts(1, 0, 0, 1, [...q, ...opt([0, 10, 0, 0, 0])]), /truncated EDNS option/);
  });
});

describe('readName', () => {
  it('returns name, offset after, and whether a pointer was followed', () => {
    const buf = Uint8Array.from([...label('foo'), ...label('bar'), 0, ...label('x'), 0xc0, 4]);
    expect(readName(buf, 0)).toEqual(['foo.bar.', 9, false]);
    expect(readName(buf, 9)).toEqual(['x.bar.', 13, true]);
    expect(readName(buf, 4)).toEqual(['bar.', 9, false]);
    expect(readName(buf, 100)).toMatch(/past the end/);
  });
});

describe('parseQuery: question names', () => {
  const ok = (b: Uint8Array) => parseQuery(b) as ParsedQuery;
  it('gives the lowercase form beside the name as sent', () => {
    const q = ok(queryBytes('Web.Default.svc.cluster.local.', Type.A));
    expect(q.qname).toBe('Web.Default.svc.cluster.local.');
    expect(q.lname).toBe('web.default.svc.cluster.local.');
    const l = ok(queryBytes('web.default.svc.cluster.local.', Type.A));
    expect(l.lname).toBe(l.qname);
  });
  it('escapes odd bytes the same way whether the name is new or seen before', () => {
    const raw = queryBytes('a.example.', Type.A);
    raw[13] = 0x07; // 'a' → \007
    expect(ok(raw).qname).toBe('\\007.example.');
    expect(ok(raw).qname).toBe('\\007.example.');
  });
  it('never mixes up names that share an intern slot: a flood of distinct names reads back exactly', () => {
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 20_000; i++) {
        const name = `h${i}.N${i % 7}.example.`;
        const q = ok(queryBytes(name, Type.A));
        expect(q.qname).toBe(name);
        expect(q.lname).toBe(name.toLowerCase());
      }
    }
  });
});
