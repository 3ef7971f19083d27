// The codec boundary: full decode of any message, and the encoder re-exported.
//
// Why a hand-written decoder instead of dns-packet 5.6 (checked by running it): it throws plain Errors
// on malformed input, so every call would need a catch-all that also hides our own bugs; it accepts
// malformed RDATA silently (an A record with RDLENGTH 3 decodes as "1.2.3.undefined", RDLENGTH 5 drops
// a byte); it drops the trailing dot; and it is slow: 1.8 µs for a 1-record reply and 38 µs for a
// 20-record one, against 0.26 and 1.1 µs here (test/bench/codec.ts). readName from query.ts already
// bounds pointer loops and the 63/255 limits, so this decoder is mostly bookkeeping around it.
// Nothing here imports dns-packet; tests use it as an independent cross-check.
import { readName } from './query.ts';
import { compressIPv6 } from './name.ts';
import type { Edns, EdnsOption, Flags, Msg, Question, RR } from './types.ts';

export { encode } from './encode.ts';

/** The only error decode throws: the bytes are not a well-formed DNS message. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

// Names already read in this message, by start offset. Most names in a reply are a bare pointer to one
// read before (every owner of a 20-record answer points at the question), so they cost a lookup instead
// of rebuilding the same string label by label. Reset per decode; a few slots cover typical replies.
const CACHE = 16;
const cacheOff = new Int32Array(CACHE);
const cacheName: string[] = new Array<string>(CACHE).fill('');
let cached = 0;
let nextPos = 0;

/** Read a name at `off`; returns it and sets `nextPos` to the offset after it. */
function name(buf: Uint8Array, off: number, what: string): string {
  const b0 = buf[off]!;
  if (b0 >= 0xc0 && off + 1 < buf.length) {
    const ptr = ((b0 & 0x3f) << 8) | buf[off + 1]!;
    if (ptr < off) {
      for (let i = 0; i < cached; i++) {
        if (cacheOff[i] === ptr) { nextPos = off + 2; return cacheName[i]!; }
      }
    }
  }
  const r = readName(buf, off);
  if (typeof r === 'string') throw new DecodeError(`${what}: ${r}`);
  if (cached < CACHE) { cacheOff[cached] = off; cacheName[cached++] = r[0]; }
  nextPos = r[1];
  return r[0];
}

function u16(buf: Uint8Array, p: number): number {
  return (buf[p]! << 8) | buf[p + 1]!;
}

function u32(buf: Uint8Array, p: number): number {
  return ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
}

/** latin1: one char per byte, so encode writes exactly these bytes back (see encode.ts writeCharString). */
function byteString(buf: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += String.fromCharCode(buf[i]!);
  return s;
}

const ipv6Words: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
const DEC: string[] = Array.from({ length: 256 }, (_, i) => String(i));

/**
 * Decode any DNS message. Names keep their letter case and get a trailing dot (escapes as in readName).
 * A, AAAA, NS, CNAME, PTR, SOA, MX, SRV, TXT get typed data; every other type keeps its exact RDATA.
 * The OPT record becomes msg.edns (and the upper rcode bits go into msg.rcode), never an additional RR.
 */
export function decode(buf: Uint8Array): Msg {
  const len = buf.length;
  if (len < 12) throw new DecodeError('shorter than a header');
  cached = 0;
  const id = u16(buf, 0);
  const f = u16(buf, 2);
  const flags: Flags = {
    qr: (f & 0x8000) !== 0, aa: (f & 0x0400) !== 0, tc: (f & 0x0200) !== 0, rd: (f & 0x0100) !== 0,
    ra: (f & 0x0080) !== 0, ad: (f & 0x0020) !== 0, cd: (f & 0x0010) !== 0,
  };
  const qd = u16(buf, 4), an = u16(buf, 6), ns = u16(buf, 8), ar = u16(buf, 10);
  let p = 12;
  const question: Question[] = [];
  for (let i = 0; i < qd; i++) {
    const qname = name(buf, p, 'question');
    const after = nextPos;
    if (after + 4 > len) throw new DecodeError('question runs past the end');
    question.push({ name: qname, type: u16(buf, after), class: u16(buf, after + 2) });
    p = after + 4;
  }
  const msg: Msg = {
    id, opcode: (f >> 11) & 0xf, rcode: f & 0xf, flags, question,
    answer: [], authority: [], additional: [], edns: null,
  };
  const total = an + ns + ar;
  for (let i = 0; i < total; i++) {
    const owner = name(buf, p, 'record owner');
    const after = nextPos;
    if (after + 10 > len) throw new DecodeError('record header runs past the end');
    const type = u16(buf, after);
    const cls = u16(buf, after + 2);
    const ttl = u32(buf, after + 4);
    const rdlen = u16(buf, after + 8);
    const rd = after + 10;
    const end = rd + rdlen;
    if (end > len) throw new DecodeError('rdata runs past the end');
    p = end;
    if (type === 41) {
      if (i < an + ns) throw new DecodeError('OPT outside the additional section');
      if (msg.edns) throw new DecodeError('more than one OPT record');
      if (owner !== '.') throw new DecodeError('OPT owner is not the root');
      const options: EdnsOption[] = [];
      for (let o = rd; o < end; ) {
        if (o + 4 > end) throw new DecodeError('truncated EDNS option');
        const olen = u16(buf, o + 2);
        if (o + 4 + olen > end) throw new DecodeError('EDNS option runs past the end');
        options.push({ code: u16(buf, o), data: buf.slice(o + 4, o + 4 + olen) });
        o += 4 + olen;
      }
      const extRcode = ttl >>> 24;
      const edns: Edns = { udpSize: cls, version: (ttl >>> 16) & 0xff, do: (ttl & 0x8000) !== 0, extRcode, options };
      msg.edns = edns;
      msg.rcode |= extRcode << 4;
      continue;
    }
    const rr = { name: owner, type, class: cls, ttl, data: rdata(buf, type, rd, end) } as RR;
    (i < an ? msg.answer : i < an + ns ? msg.authority : msg.additional).push(rr);
  }
  return msg;
}

function rdata(buf: Uint8Array, type: number, rd: number, end: number): RR['data'] {
  const rdlen = end - rd;
  switch (type) {
    case 1:
      if (rdlen !== 4) throw new DecodeError(`A rdata of ${rdlen} bytes`);
      return DEC[buf[rd]!]! + '.' + DEC[buf[rd + 1]!]! + '.' + DEC[buf[rd + 2]!]! + '.' + DEC[buf[rd + 3]!]!;
    case 28:
      if (rdlen !== 16) throw new DecodeError(`AAAA rdata of ${rdlen} bytes`);
      for (let k = 0; k < 8; k++) ipv6Words[k] = u16(buf, rd + 2 * k);
      return compressIPv6(ipv6Words);
    case 2: case 5: case 12: {
      const target = name(buf, rd, 'rdata name');
      if (nextPos !== end) throw new DecodeError('name does not end with the rdata');
      return target;
    }
    case 6: {
      const mname = name(buf, rd, 'SOA mname');
      const rname = name(buf, nextPos, 'SOA rname');
      const a2 = nextPos;
      if (a2 + 20 !== end) throw new DecodeError('SOA rdata of the wrong length');
      return {
        mname, rname, serial: u32(buf, a2), refresh: u32(buf, a2 + 4), retry: u32(buf, a2 + 8),
        expire: u32(buf, a2 + 12), minimum: u32(buf, a2 + 16),
      };
    }
    case 15: {
      if (rdlen < 3) throw new DecodeError('MX rdata too short');
      const exchange = name(buf, rd + 2, 'MX exchange');
      if (nextPos !== end) throw new DecodeError('MX exchange does not end with the rdata');
      return { preference: u16(buf, rd), exchange };
    }
    case 33: {
      if (rdlen < 7) throw new DecodeError('SRV rdata too short');
      // RFC 2782 forbids compressing the target, but some servers do; readName follows pointers anyway.
      const target = name(buf, rd + 6, 'SRV target');
      if (nextPos !== end) throw new DecodeError('SRV target does not end with the rdata');
      return { priority: u16(buf, rd), weight: u16(buf, rd + 2), port: u16(buf, rd + 4), target };
    }
    case 16: {
      const strs: string[] = [];
      for (let o = rd; o < end; ) {
        const l = buf[o]!;
        if (o + 1 + l > end) throw new DecodeError('TXT string runs past the rdata');
        strs.push(byteString(buf, o + 1, o + 1 + l));
        o += 1 + l;
      }
      return strs;
    }
    default:
      return buf.slice(rd, end);
  }
}
