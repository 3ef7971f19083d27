// The cheap front door: read a query's header, question and OPT record straight from the bytes,
// without a general decoder. Anything odd is classified, never thrown.


/** Why a datagram was not accepted as a query. `drop`: send nothing; `formerr`: answer FORMERR with the ID. */
export type Reject = { kind: 'drop'; reason: string } | { kind: 'formerr'; reason: string; id: number; opcode: number; flags: number };

export interface ParsedQuery {
  id: number;
  /** The raw 16-bit flags word of the query. */
  flags: number;
  opcode: number;
  /** The question name as sent (letter case kept), dotted with a trailing dot; escapes as \DDD. */
  qname: string;
  /** qname in lowercase (the same string when it has no capital letters). */
  lname?: string;
  qtype: number;
  qclass: number;
  /** Offset just past QNAME; -1 if the name used a compression pointer (then case patching is off). */
  qnameEnd: number;
  /** Offset just past the question (QTYPE and QCLASS). */
  questionEnd: number;
  /** EDNS from the OPT record, or null. */
  edns: { udpSize: number; version: number; do: boolean; options: Uint8Array } | null;
  /** Counts from the header. */
  ancount: number;
  nscount: number;
  arcount: number;
}

const MAX_NAME = 255;

// A name is decoded into these character codes and turned into one flat string at the end: adding
// a character at a time builds a rope that the first hash or toLowerCase() must flatten again.
const chars = new Uint16Array(1024); // 255 wire bytes, each at most 4 characters (\DDD)
let charCount = 0;
let scanEnd = 0;
let scanJumps = 0;
let scanUpper = false;

/** Decode the name at `off` into `chars`; null when it is well formed, else the reason. */
function scanName(buf: Uint8Array, off: number): string | null {
  let n = 0;
  let upper = false;
  let wireLen = 1; // the root label
  let pos = off;
  let end = -1;
  let jumps = 0;
  for (;;) {
    if (pos >= buf.length) return 'name runs past the end';
    const len = buf[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) return 'pointer runs past the end';
      const ptr = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (end < 0) end = pos + 2;
      // A pointer must go backwards; a cap on jumps stops loops through cleverly ordered pointers.
      if (ptr >= pos || ++jumps > 64) return 'compression pointer loop';
      pos = ptr;
      continue;
    }
    if (kind !== 0) return 'bad label type';
    wireLen += len + 1;
    if (wireLen > MAX_NAME) return 'name longer than 255 bytes';
    if (pos + 1 + len > buf.length) return 'label runs past the end';
    for (let i = pos + 1; i <= pos + len; i++) {
      const c = buf[i]!;
      // Printable ASCII except '.' and '\\' kept as is; everything else escaped as \DDD (miekg style).
      if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) {
        chars[n++] = c;
        if (c >= 0x41 && c <= 0x5a) upper = true;
      } else if (c === 0x2e || c === 0x5c) {
        chars[n++] = 0x5c;
        chars[n++] = c;
      } else {
        chars[n++] = 0x5c;
        chars[n++] = 0x30 + Math.floor(c / 100);
        chars[n++] = 0x30 + (Math.floor(c / 10) % 10);
        chars[n++] = 0x30 + (c % 10);
      }
    }
    chars[n++] = 0x2e;
    pos += len + 1;
  }
  charCount = n;
  scanEnd = end;
  scanJumps = jumps;
  scanUpper = upper;
  return null;
}

function scannedName(): string {
  return charCount === 0 ? '.' : String.fromCharCode.apply(null, chars.subarray(0, charCount) as unknown as number[]);
}

/**
 * Question names seen recently, by their wire bytes: a repeated name (the usual case: clients ask the
 * same names over and over) gets the same string objects back, built once, whose hash V8 has already
 * computed for every Map lookup downstream. Direct-mapped and bounded: a flood of distinct names only
 * overwrites slots.
 */
interface InternedName { wire: Uint8Array; name: string; lower: string }
const INTERN_SLOTS = 8192; // two ways per hash: names whose hashes share a slot do not evict each other
const interned: Array<InternedName | undefined> = new Array(INTERN_SLOTS).fill(undefined);

/**
 * The question name at offset 12 when its bytes were seen (and validated) before; otherwise undefined
 * and the caller scans it. Names with compression pointers are never interned.
 */
function knownQuestionName(buf: Uint8Array): InternedName | undefined {
  lastSlot = -1;
  let pos = 12;
  let h = 0x811c9dc5;
  for (;;) {
    if (pos >= buf.length || pos > 12 + MAX_NAME) return undefined;
    const len = buf[pos]!;
    if (len === 0) break;
    if (len & 0xc0) return undefined;
    pos += len + 1;
  }
  const end = pos + 1;
  for (let i = 12; i < end; i++) h = Math.imul(h ^ buf[i]!, 16777619);
  const slot = (h >>> 0) & (INTERN_SLOTS - 2);
  lastSlot = slot;
  if (sameWire(interned[slot], buf, end)) return interned[slot];
  if (sameWire(interned[slot + 1], buf, end)) return interned[slot + 1];
  return undefined;
}

function sameWire(e: InternedName | undefined, buf: Uint8Array, end: number): boolean {
  if (e === undefined || e.wire.length !== end - 12) return false;
  const w = e.wire;
  for (let i = 0; i < w.length; i++) if (w[i] !== buf[12 + i]) return false;
  return true;
}
let lastSlot = -1;

/** Remember the question name just scanned (from offset 12 to `end`) in the slot knownQuestionName chose. */
function internQuestionName(buf: Uint8Array, end: number): InternedName {
  const name = scannedName();
  const e: InternedName = { wire: buf.slice(12, end), name, lower: scanUpper ? name.toLowerCase() : name };
  // The newest goes first; the one it displaces keeps the second way (the older second one goes).
  interned[lastSlot + 1] = interned[lastSlot];
  interned[lastSlot] = e;
  return e;
}

/** Read a name at `off`. Returns [name, offsetAfter, usedPointer] or a string reason. */
export function readName(buf: Uint8Array, off: number): [string, number, boolean] | string {
  const err = scanName(buf, off);
  if (err !== null) return err;
  return [scannedName(), scanEnd, scanJumps > 0];
}

/** Are the EDNS options in buf[from, to) well-formed TLVs? null if so, else the reason. */
export function ednsOptionsError(buf: Uint8Array, from: number, to: number): string | null {
  for (let o = from; o < to; ) {
    if (o + 4 > to) return 'truncated EDNS option';
    o += 4 + ((buf[o + 2]! << 8) | buf[o + 3]!);
    if (o > to) return 'EDNS option runs past the end';
  }
  return null;
}

/**
 * Parse a datagram as a query. Garbage too short for a header, or with QR set, is dropped (a reply to
 * garbage is an amplification vector); anything with a readable header but a bad body gets FORMERR.
 */
export function parseQuery(buf: Uint8Array): ParsedQuery | Reject {
  if (buf.length < 12) return { kind: 'drop', reason: 'shorter than a header' };
  const id = (buf[0]! << 8) | buf[1]!;
  const flags = (buf[2]! << 8) | buf[3]!;
  if (flags & 0x8000) return { kind: 'drop', reason: 'not a query (QR set)' };
  const opcode = (flags >> 11) & 0xf;
  const qdcount = (buf[4]! << 8) | buf[5]!;
  const ancount = (buf[6]! << 8) | buf[7]!;
  const nscount = (buf[8]! << 8) | buf[9]!;
  const arcount = (buf[10]! << 8) | buf[11]!;
  const formerr = (reason: string): Reject => ({ kind: 'formerr', reason, id, opcode, flags });
  if (qdcount !== 1) return formerr(`QDCOUNT ${qdcount}`);
  let qname: string, lname: string, after: number, usedPointer = false;
  const known = knownQuestionName(buf);
  if (known !== undefined) {
    qname = known.name;
    lname = known.lower;
    after = 12 + known.wire.length;
  } else {
    const bad = scanName(buf, 12);
    if (bad !== null) return formerr(bad);
    after = scanEnd;
    usedPointer = scanJumps > 0;
    if (usedPointer || lastSlot < 0) {
      qname = scannedName();
      lname = scanUpper ? qname.toLowerCase() : qname;
    } else {
      const n = internQuestionName(buf, after);
      qname = n.name;
      lname = n.lower;
    }
  }
  if (after + 4 > buf.length) return formerr('question runs past the end');
  const qtype = (buf[after]! << 8) | buf[after + 1]!;
  const qclass = (buf[after + 2]! << 8) | buf[after + 3]!;
  const questionEnd = after + 4;
  let edns: ParsedQuery['edns'] = null;
  let pos = questionEnd;
  // Skip answer and authority records (rare in queries), then look for OPT among the additional ones.
  const total = ancount + nscount + arcount;
  for (let i = 0; i < total; i++) {
    const rn = readName(buf, pos);
    if (typeof rn === 'string') return formerr(rn);
    pos = rn[1];
    if (pos + 10 > buf.length) return formerr('record runs past the end');
    const type = (buf[pos]! << 8) | buf[pos + 1]!;
    const rdlen = (buf[pos + 8]! << 8) | buf[pos + 9]!;
    if (pos + 10 + rdlen > buf.length) return formerr('rdata runs past the end');
    if (type === 41) {
      if (i < ancount + nscount) return formerr('OPT outside the additional section');
      if (edns) return formerr('more than one OPT record');
      if (rn[0] !== '.') return formerr('OPT owner is not the root');
      const udpSize = (buf[pos + 2]! << 8) | buf[pos + 3]!;
      const version = buf[pos + 5]!;
      const doBit = (buf[pos + 6]! & 0x80) !== 0;
      const options = buf.subarray(pos + 10, pos + 10 + rdlen);
      const bad = ednsOptionsError(buf, pos + 10, pos + 10 + rdlen);
      if (bad !== null) return formerr(bad);
      edns = { udpSize, version, do: doBit, options };
    }
    pos += 10 + rdlen;
  }
  return {
    id, flags, opcode, qname, lname, qtype, qclass,
    qnameEnd: usedPointer ? -1 : after,
    questionEnd, edns, ancount, nscount, arcount,
  };
}
