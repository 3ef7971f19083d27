import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import { prebuild, writePrebuilt } from './wire.ts';
import { decode, encode } from './codec.ts';
import { parseQuery, type ParsedQuery } from './query.ts';
import { type Msg, type RR, Type, newMsg } from './types.ts';
import { queryBytes, rr, type QueryOpts } from '../../test/helpers.ts';

const NAME = 'web.default.svc.cluster.local.';

function answerMsg(n = 2, extra: RR[] = []): Msg {
  const m = newMsg(0x7777);
  m.flags = { qr: true, aa: true, tc: false, rd: true, ra: false, ad: false, cd: true };
  m.question.push({ name: 'Web.Default.svc.cluster.local.', type: Type.A, class: 1 });
  for (let i = 0; i < n; i++) m.answer.push(rr(`${NAME} ${30 + i} IN A 10.96.0.${i + 1}`));
  m.additional = extra;
  m.edns = { udpSize: 4096, version: 0, do: true, options: [] }; // ignored by prebuild
  return m;
}

function query(name: string, o: QueryOpts = {}): { q: ParsedQuery; raw: Uint8Array } {
  const raw = queryBytes(name, Type.A, o);
  const q = parseQuery(raw);
  if ('kind' in q) throw new Error(q.reason);
  return { q, raw };
}

describe('prebuild', () => {
  it('encodes with ID 0, RD and CD clear, a lowercase question and no OPT', () => {
    const w = prebuild(answerMsg());
    const d = decode(w.bytes);
    expect(d.id).toBe(0);
    expect(d.flags).toEqual({ qr: true, aa: true, tc: false, rd: false, ra: false, ad: false, cd: false });
    expect(d.question[0]!.name).toBe(NAME);
    expect(d.edns).toBeNull();
    expect(d.answer.map((r) => r.data)).toEqual(['10.96.0.1', '10.96.0.2']);
    expect(w.qnameEnd).toBe(12 + NAME.length + 1);
    // Compressed: each answer owner is a pointer.
    expect(w.bytes.length).toBe(12 + 31 + 4 + 2 * 16);
  });

  it('records every TTL offset, in order, across sections', () => {
    const m = answerMsg(3, [rr('ns.cluster.local. 77 IN A 10.0.0.53')]);
    m.authority = [rr('cluster.local. 66 IN NS ns.cluster.local.')];
    const w = prebuild(m);
    const ttls = Array.from(w.ttlOffsets, (o) => new DataView(w.bytes.buffer).getUint32(o));
    expect(ttls).toEqual([30, 31, 32, 66, 77]);
  });

  it('handles a message without a question', () => {
    const m = newMsg();
    const w = prebuild(m);
    expect(w.qnameEnd).toBe(-1);
    const { q, raw } = query('a.example.');
    const out = writePrebuilt(w, q, raw, null, 512)!;
    expect(decode(out).question).toEqual([]);
  });
});

describe('writePrebuilt', () => {
  const w = prebuild(answerMsg());

  it('patches the ID, RD, CD and the client\'s letter case', () => {
    const { q, raw } = query('wEb.DEFAULT.svc.Cluster.local.', { id: 0xabcd, rd: true, cd: true });
    const out = writePrebuilt(w, q, raw, null, 512)!;
    expect(out.length).toBe(w.bytes.length);
    const d = decode(out);
    expect(d.id).toBe(0xabcd);
    expect(d.flags.rd).toBe(true);
    expect(d.flags.cd).toBe(true);
    expect(d.flags.aa).toBe(true);
    expect(d.question[0]!.name).toBe('wEb.DEFAULT.svc.Cluster.local.');
    // Owners point at the question, so they echo the client's case too (as CoreDNS does).
    expect(d.answer[0]!.name).toBe('wEb.DEFAULT.svc.Cluster.local.');
    // The prebuilt bytes are untouched.
    expect(decode(w.bytes).id).toBe(0);
    expect(decode(w.bytes).question[0]!.name).toBe(NAME);
  });

  it('clears RD and CD when the query has them clear', () => {
    const { q, raw } = query(NAME, { rd: false, cd: false });
    const d = decode(writePrebuilt(w, q, raw, null, 512)!);
    expect(d.flags.rd).toBe(false);
    expect(d.flags.cd).toBe(false);
  });

  it('keeps the lowercase name when the client name has another length or is another name', () => {
    const other = query('web.default.svc.cluster.localx.');
    expect(decode(writePrebuilt(w, other.q, other.raw, null, 512)!).question[0]!.name).toBe(NAME);
    const same = query('WEB.DEFAULT.SVC.CLUSTER.LOCAX.'); // same length, different name
    expect(decode(writePrebuilt(w, same.q, same.raw, null, 512)!).question[0]!.name).toBe(NAME);
    const pointer = query('WEB.DEFAULT.SVC.CLUSTER.LOCAL.');
    expect(decode(writePrebuilt(w, { ...pointer.q, qnameEnd: -1 }, pointer.raw, null, 512)!).question[0]!.name).toBe(NAME);
  });

  it('subtracts ttlDelta from every TTL, floored at 0', () => {
    const { q, raw } = query(NAME);
    expect(decode(writePrebuilt(w, q, raw, null, 512, 10)!).answer.map((r) => r.ttl)).toEqual([20, 21]);
    expect(decode(writePrebuilt(w, q, raw, null, 512, 31)!).answer.map((r) => r.ttl)).toEqual([0, 0]);
    expect(decode(writePrebuilt(w, q, raw, null, 512, 1e9)!).answer.map((r) => r.ttl)).toEqual([0, 0]);
    expect(decode(writePrebuilt(w, q, raw, null, 512)!).answer.map((r) => r.ttl)).toEqual([30, 31]);
  });

  it('appends an OPT record and bumps ARCOUNT', () => {
    const { q, raw } = query(NAME, { edns: { udpSize: 4096, do: true } });
    const out = writePrebuilt(w, q, raw, { udpSize: 1232, do: true }, 1232)!;
    expect(out.length).toBe(w.bytes.length + 11);
    expect(Array.from(out.subarray(out.length - 11))).toEqual([0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
    const d = decode(out);
    expect(d.edns).toEqual({ udpSize: 1232, version: 0, do: true, extRcode: 0, options: [] });
    expect(d.additional).toEqual([]);
    expect(out[11]).toBe(1);
    const p = dnsPacket.decode(Buffer.from(out));
    expect(p.additionals![0]!.type).toBe('OPT');
    // Extended rcode and DO off.
    const bad = decode(writePrebuilt(w, q, raw, { udpSize: 512, do: false, rcodeHigh: 1 }, 1232)!);
    expect(bad.rcode).toBe(16);
    expect(bad.edns!.do).toBe(false);
  });

  it('adds OPT after existing additional records', () => {
    const wx = prebuild(answerMsg(1, [rr('ns.cluster.local. 5 IN A 10.0.0.53')]));
    const { q, raw } = query(NAME);
    const d = decode(writePrebuilt(wx, q, raw, { udpSize: 1232, do: false }, 1232)!);
    expect(d.additional.length).toBe(1);
    expect(d.edns).not.toBeNull();
  });

  it('returns null when the reply would exceed maxSize', () => {
    const big = prebuild(answerMsg(40)); // 12 + 35 + 640 = 687
    const { q, raw } = query(NAME);
    expect(writePrebuilt(big, q, raw, null, 512)).toBeNull();
    expect(writePrebuilt(big, q, raw, null, 687)).not.toBeNull();
    expect(writePrebuilt(big, q, raw, { udpSize: 1232, do: false }, 697)).toBeNull();
    expect(writePrebuilt(big, q, raw, { udpSize: 1232, do: false }, 698)!.length).toBe(698);
  });

  it('returns arrays that do not share bytes (they come from a pool)', () => {
    const { q, raw } = query(NAME, { id: 1 });
    const a = writePrebuilt(w, q, raw, null, 512)!;
    const b = writePrebuilt(w, { ...q, id: 2 }, raw, null, 512)!;
    const e = encode(answerMsg());
    a.fill(0xee);
    expect(decode(b).id).toBe(2);
    expect(decode(e).id).toBe(0x7777);
    expect(b.byteLength).toBe(w.bytes.length);
  });

  it('produces the same bytes as encode() of the equivalent reply', () => {
    const { q, raw } = query('Web.Default.Svc.Cluster.Local.', { id: 4321, edns: { udpSize: 1232, do: true } });
    const viaWire = writePrebuilt(w, q, raw, { udpSize: 1232, do: true }, 1232)!;
    const m = answerMsg();
    m.id = 4321;
    m.question[0]!.name = 'Web.Default.Svc.Cluster.Local.';
    m.flags.cd = false;
    m.edns = { udpSize: 1232, version: 0, do: true, options: [] };
    expect(Buffer.from(viaWire).toString('hex')).toBe(Buffer.from(encode(m)).toString('hex'));
  });
});
