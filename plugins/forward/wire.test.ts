import { describe, expect, it } from 'vitest';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { Class, Type } from '../../src/dns/types.ts';
import { queryBytes } from '../../test/helpers.ts';
import { isReplyTo, isResponseTo, outgoing, randomId } from './wire.ts';

const parsed = (raw: Uint8Array) => parseQuery(raw) as ParsedQuery;
/** A reply to `raw`: QR set, same ID unless given. */
function replyOf(raw: Uint8Array, id?: number): Uint8Array {
  const r = raw.slice();
  r[2]! |= 0x80;
  if (id !== undefined) { r[0] = id >> 8; r[1] = id & 0xff; }
  return r;
}

describe('forward: wire helpers', () => {
  it('outgoing: new ID, everything else as sent; the EDNS size only ever lowered', () => {
    const raw = queryBytes('A.Example.', Type.AAAA, { id: 1, cd: true, edns: { udpSize: 4096, do: true, options: Uint8Array.from([0, 10, 0, 2, 0xab, 0xcd]) } });
    const out = outgoing(raw, parsed(raw), 0xabcd, 1232);
    expect([out[0], out[1]]).toEqual([0xab, 0xcd]);
    const q = parsed(out);
    expect(q.edns).toMatchObject({ udpSize: 1232, do: true });
    expect([...q.edns!.options]).toEqual([0, 10, 0, 2, 0xab, 0xcd]);
    expect(q.qname).toBe('A.Example.');
    expect(q.flags).toBe(parsed(raw).flags);
    expect(raw[0]).toBe(0); // the client's bytes are not touched
    const small = queryBytes('a.example.', Type.A, { edns: { udpSize: 900 } });
    expect(parsed(outgoing(small, parsed(small), 2, 1232)).edns!.udpSize).toBe(900);
    const none = queryBytes('a.example.', Type.A);
    expect(outgoing(none, parsed(none), 3, 1232).length).toBe(none.length);
  });

  it('isReplyTo: ID, QR and the question (name case-insensitive, type, class)', () => {
    const raw = queryBytes('Www.Example.Org.', Type.A, { id: 0x1234 });
    const want = { name: 'www.example.org.', type: Type.A, class: Class.IN };
    expect(isReplyTo(replyOf(raw), 0x1234, want)).toBe(true);
    expect(isReplyTo(replyOf(queryBytes('WWW.EXAMPLE.ORG.', Type.A, { id: 0x1234 })), 0x1234, want)).toBe(true);
    expect(isReplyTo(raw, 0x1234, want)).toBe(false); // not a response
    expect(isReplyTo(replyOf(raw, 0x1235), 0x1234, want)).toBe(false);
    expect(isReplyTo(replyOf(queryBytes('www.example.net.', Type.A, { id: 0x1234 })), 0x1234, want)).toBe(false);
    expect(isReplyTo(replyOf(queryBytes('www.example.org.', Type.AAAA, { id: 0x1234 })), 0x1234, want)).toBe(false);
    expect(isReplyTo(replyOf(queryBytes('www.example.org.', Type.A, { id: 0x1234, qclass: Class.CH })), 0x1234, want)).toBe(false);
    const noQuestion = replyOf(raw).slice(0, 12);
    noQuestion[5] = 0;
    expect(isReplyTo(noQuestion, 0x1234, want)).toBe(false);
    expect(isReplyTo(replyOf(raw).slice(0, 20), 0x1234, want)).toBe(false);
    expect(isResponseTo(noQuestion, 0x1234)).toBe(true);
    expect(isResponseTo(noQuestion.slice(0, 11), 0x1234)).toBe(false);
  });

  it('randomId covers the 16-bit space', () => {
    const ids = new Set(Array.from({ length: 5000 }, randomId));
    expect(ids.size).toBeGreaterThan(4500);
    expect([...ids].every((i) => i >= 0 && i <= 0xffff)).toBe(true);
  });
});
