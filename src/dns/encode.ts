// The compressing encoder (dns-packet never compresses). One pass into a module-level scratch buffer:
// because compression pointers only point backwards, every prefix of the written records is a valid
// message, so truncation is a roll-back to the last record that fitted, not a second encode.
import type { Msg, RR, SoaRR, SrvRR, MxRR, Edns } from './types.ts';

// A record is at most 255 (name) + 10 + 65535 bytes, and we only start one while the message is below
// 64 KiB, so two 64 KiB halves plus slack can never be overrun by a single record.
const SCRATCH_SIZE = 2 * 65536 + 1024;
const scratch = new Uint8Array(SCRATCH_SIZE);
const view = new DataView(scratch.buffer);
// The compression table: hash of a name suffix's lowercased wire bytes → offset of its first label.
// Open addressing in typed arrays with a generation stamp, because a Map costs ~50 ns per operation plus
// a reallocation on clear(), which was most of a small encode. Only offsets < 0x4000 are entered and
// labels are >= 2 bytes apart, so at most 8192 entries: the table is never more than half full.
const TABLE_SIZE = 1 << 14;
const TABLE_MASK = TABLE_SIZE - 1;
const tableHash = new Int32Array(TABLE_SIZE);
const tableOff = new Int32Array(TABLE_SIZE);
const tableGen = new Uint32Array(TABLE_SIZE);
let gen = 0;

// The last name written whole (or as one pointer) and where it starts: owners repeat record after
// record (20 A records of one headless service), and a string compare beats hashing and verifying.
let lastName = '';
let lastTarget = -1;

function resetTable(): void {
  gen = (gen + 1) >>> 0;
  if (gen === 0) { tableGen.fill(0); gen = 1; }
  lastName = '';
  lastTarget = -1;
}
const textEncoder = new TextEncoder();

/** Everything encodeLayout reports besides the bytes (wire.ts needs it to prebuild replies). */
export interface Layout {
  /** Length of the message in `scratch`. */
  length: number;
  /** Offset just past the first question's name, or -1 without a question. */
  qnameEnd: number;
  /** Byte offset of each written RR's TTL, in order (only when asked for). */
  ttlOffsets: number[] | null;
}

/**
 * Encode `msg`, never longer than `maxSize` bytes (header, question and OPT are always kept; see
 * encodeLayout for the truncation rules). The result is a pooled array (see allocReply). Throws a plain
 * Error for a message that cannot be encoded (bad address text, label > 63 bytes, name > 255 bytes, TXT
 * string > 255 bytes, RDATA > 65535 bytes, a non-binary RDATA for a type without a typed encoder).
 */
export function encode(msg: Msg, maxSize = 65535): Uint8Array {
  const l = encodeLayout(msg, maxSize, false);
  const out = allocReply(l.length);
  out.set(scratch.subarray(0, l.length));
  return out;
}

// Reply bytes come from a pool. Every `new Uint8Array(n)` with n > 64 gets its own off-heap backing
// store, and on Node 24 that costs ~1 µs per reply under load (measured: slice(0, 100) 930 ns vs 35 ns
// for 60 bytes), more than the whole encode. Like Buffer.allocUnsafe, small replies are carved out of a
// shared chunk instead: the result is an exact-size Uint8Array, but its `.buffer` is the chunk (mind
// byteOffset), and keeping it alive keeps the chunk alive, so long-lived copies should be `.slice()`d.
const POOL_CHUNK = 16 * 1024;
const POOL_MAX = 2048;
let pool = new ArrayBuffer(POOL_CHUNK);
let poolOff = 0;

/** An exact-size, zero-filled array for a reply of `len` bytes (chunks are fresh and never reused). */
export function allocReply(len: number): Uint8Array {
  if (len > POOL_MAX) return new Uint8Array(len);
  if (poolOff + len > POOL_CHUNK) { pool = new ArrayBuffer(POOL_CHUNK); poolOff = 0; }
  const out = new Uint8Array(pool, poolOff, len);
  poolOff = (poolOff + len + 7) & ~7; // keep views 8-byte aligned
  return out;
}

/**
 * Encode into the shared scratch buffer and return the layout; the caller copies `scratch` out via
 * encodeLayoutInto before anything else encodes. `forPrebuild`: ID 0, RD 0, CD 0, lowercase question
 * name, no OPT, TTL offsets recorded.
 *
 * Truncation (only when the whole message exceeds maxSize): answers are added while they fit; the first
 * one that does not sets TC and nothing more is added. Then the same for authority. Additional records
 * stop silently at the first that does not fit. The OPT record is always written last.
 */
export function encodeLayout(msg: Msg, maxSize: number, forPrebuild: boolean): Layout {
  resetTable();
  if (!(maxSize <= 65535)) maxSize = 65535;
  const edns = forPrebuild ? null : msg.edns;
  const optLen = edns ? 11 + optionsLength(edns) : 0;
  const budget = maxSize - optLen;
  const ttlOffsets: number[] | null = forPrebuild ? [] : null;

  let p = 12;
  let qnameEnd = -1;
  const qs = msg.question;
  for (let i = 0; i < qs.length; i++) {
    const q = qs[i]!;
    p = writeName(forPrebuild ? q.name.toLowerCase() : q.name, p, true);
    if (i === 0) qnameEnd = p;
    p = u16(p, q.type);
    p = u16(p, q.class);
    if (p > 65535) throw new Error('encode: question section larger than 64 KiB');
  }

  let tc = msg.flags.tc;
  let an = 0, ns = 0, ar = 0;
  let full = false;
  const answer = msg.answer;
  for (let i = 0; i < answer.length; i++) {
    const mark = ttlOffsets ? ttlOffsets.length : 0;
    const np = writeRR(answer[i]!, p, ttlOffsets);
    if (np > budget) { full = true; tc = true; if (ttlOffsets) ttlOffsets.length = mark; break; }
    p = np; an++;
  }
  if (!full) {
    const auth = msg.authority;
    for (let i = 0; i < auth.length; i++) {
      const mark = ttlOffsets ? ttlOffsets.length : 0;
      const np = writeRR(auth[i]!, p, ttlOffsets);
      if (np > budget) { full = true; tc = true; if (ttlOffsets) ttlOffsets.length = mark; break; }
      p = np; ns++;
    }
  }
  if (!full) {
    const add = msg.additional;
    for (let i = 0; i < add.length; i++) {
      const rr = add[i]!;
      // An OPT record in `additional` would duplicate the one built from msg.edns: skip it.
      if (rr.type === 41) continue;
      const mark = ttlOffsets ? ttlOffsets.length : 0;
      const np = writeRR(rr, p, ttlOffsets);
      if (np > budget) { if (ttlOffsets) ttlOffsets.length = mark; break; }
      p = np; ar++;
    }
  }
  if (edns) { p = writeOpt(edns, msg.rcode, p); ar++; }

  // Header last: TC and the counts are only known now.
  const f = msg.flags;
  let flags = ((msg.opcode & 0xf) << 11) | (msg.rcode & 0xf);
  if (f.qr) flags |= 0x8000;
  if (f.aa) flags |= 0x0400;
  if (tc) flags |= 0x0200;
  if (f.ra) flags |= 0x0080;
  if (f.ad) flags |= 0x0020;
  if (!forPrebuild) {
    if (f.rd) flags |= 0x0100;
    if (f.cd) flags |= 0x0010;
  }
  const id = forPrebuild ? 0 : msg.id;
  scratch[0] = id >> 8; scratch[1] = id;
  scratch[2] = flags >> 8; scratch[3] = flags;
  scratch[4] = qs.length >> 8; scratch[5] = qs.length;
  scratch[6] = an >> 8; scratch[7] = an;
  scratch[8] = ns >> 8; scratch[9] = ns;
  scratch[10] = ar >> 8; scratch[11] = ar;
  return { length: p, qnameEnd, ttlOffsets };
}

/** Copy what the last encodeLayout call produced into `out` (exactly l.length bytes). */
export function encodeLayoutInto(l: Layout, out: Uint8Array): void {
  out.set(scratch.subarray(0, l.length));
}

function u16(p: number, v: number): number {
  scratch[p] = v >> 8;
  scratch[p + 1] = v;
  return p + 2;
}

function optionsLength(e: Edns): number {
  let n = 0;
  for (const o of e.options) n += 4 + o.data.length;
  if (n > 65535) throw new Error('encode: EDNS options longer than 65535 bytes');
  return n;
}

function writeOpt(e: Edns, rcode: number, p: number): number {
  scratch[p++] = 0; // root owner
  p = u16(p, 41);
  p = u16(p, e.udpSize);
  scratch[p++] = rcode >> 4; // extended rcode: the upper 8 bits of the 12-bit rcode
  scratch[p++] = e.version;
  scratch[p++] = e.do ? 0x80 : 0;
  scratch[p++] = 0;
  const rdlenAt = p;
  p += 2;
  for (const o of e.options) {
    p = u16(p, o.code);
    p = u16(p, o.data.length);
    scratch.set(o.data, p);
    p += o.data.length;
  }
  u16(rdlenAt, p - rdlenAt - 2);
  return p;
}

function writeRR(rr: RR, p: number, ttlOffsets: number[] | null): number {
  p = writeName(rr.name, p, true);
  const type = rr.type;
  p = u16(p, type);
  p = u16(p, rr.class);
  if (ttlOffsets) ttlOffsets.push(p);
  const ttl = rr.ttl;
  view.setUint32(p, ttl > 0 ? (ttl < 0xffffffff ? ttl : 0xffffffff) : 0);
  const rdStart = p + 6;
  let q = rdStart;
  const data = rr.data;
  if (data instanceof Uint8Array) {
    if (data.length > 65535) throw new Error(`encode: RDATA of ${rr.name} longer than 65535 bytes`);
    scratch.set(data, q);
    q += data.length;
  } else {
    switch (type) {
      case 1: q = writeA(data as string, q); break;
      case 28: q = writeAAAA(data as string, q); break;
      case 2: case 5: case 12: q = writeName(data as string, q, true); break;
      case 6: {
        const s = (rr as SoaRR).data;
        q = writeName(s.mname, q, true);
        q = writeName(s.rname, q, true);
        view.setUint32(q, s.serial >>> 0);
        view.setUint32(q + 4, s.refresh >>> 0);
        view.setUint32(q + 8, s.retry >>> 0);
        view.setUint32(q + 12, s.expire >>> 0);
        view.setUint32(q + 16, s.minimum >>> 0);
        q += 20;
        break;
      }
      case 15: {
        const m = (rr as MxRR).data;
        q = u16(q, m.preference);
        q = writeName(m.exchange, q, true);
        break;
      }
      case 33: {
        const s = (rr as SrvRR).data;
        q = u16(q, s.priority);
        q = u16(q, s.weight);
        q = u16(q, s.port);
        q = writeName(s.target, q, false); // RFC 2782: the target is never compressed
        break;
      }
      case 16: {
        const strs = data as string[];
        if (strs.length === 0) scratch[q++] = 0; // RFC 1035 wants at least one string
        for (let i = 0; i < strs.length; i++) {
          q = writeCharString(strs[i]!, q);
          if (q - rdStart > 65535) throw new Error(`encode: TXT of ${rr.name} longer than 65535 bytes`);
        }
        break;
      }
      default:
        throw new Error(`encode: type ${type} of ${rr.name} needs its RDATA as a Uint8Array`);
    }
  }
  u16(rdStart - 2, q - rdStart);
  return q;
}

/**
 * A TXT character-string. Strings of code points <= 0xff are written one byte per char (latin1), which
 * is what decode produces, so forwarded TXT bytes round-trip exactly; anything wider is written as UTF-8.
 */
function writeCharString(s: string, p: number): number {
  const n = s.length;
  let narrow = true;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0xff) { narrow = false; break; }
  if (narrow) {
    if (n > 255) throw new Error(`encode: TXT string longer than 255 bytes`);
    scratch[p++] = n;
    for (let i = 0; i < n; i++) scratch[p++] = s.charCodeAt(i);
    return p;
  }
  const b = textEncoder.encode(s);
  if (b.length > 255) throw new Error(`encode: TXT string longer than 255 bytes`);
  scratch[p++] = b.length;
  scratch.set(b, p);
  return p + b.length;
}

/** Dotted-quad text in s[from, to) → 32-bit value, or -1. */
function parseIPv4(s: string, from: number, to: number): number {
  let v = 0, part = 0, digits = 0, dots = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      v = v * 256 + part; part = 0; digits = 0; dots++;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + c - 48;
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return v * 256 + part;
}

function writeA(s: string, p: number): number {
  const v = typeof s === 'string' ? parseIPv4(s, 0, s.length) : -1;
  if (v < 0) throw new Error(`encode: bad IPv4 address '${String(s)}'`);
  view.setUint32(p, v);
  return p + 4;
}

const words = new Uint16Array(8);

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  c |= 0x20;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Any valid IPv6 text: "::", "fe80::1%eth0" (zone ignored), "::ffff:10.0.0.1", full form. */
function writeAAAA(s: string, p: number): number {
  const bad = (): never => { throw new Error(`encode: bad IPv6 address '${String(s)}'`); };
  if (typeof s !== 'string') bad();
  let len = s.indexOf('%');
  if (len < 0) len = s.length;
  let n = 0;
  let gap = -1;
  let i = 0;
  if (len >= 2 && s.charCodeAt(0) === 58 && s.charCodeAt(1) === 58) { gap = 0; i = 2; }
  while (i < len) {
    let j = i;
    let v = 0;
    for (; j < len; j++) {
      const h = hexVal(s.charCodeAt(j));
      if (h < 0) break;
      v = v * 16 + h;
    }
    if (j < len && s.charCodeAt(j) === 46) {
      // Embedded IPv4 takes the last two words.
      const v4 = parseIPv4(s, i, len);
      if (v4 < 0 || n > 6) bad();
      words[n++] = v4 >>> 16;
      words[n++] = v4 & 0xffff;
      break;
    }
    if (j === i || j - i > 4 || n === 8) bad();
    words[n++] = v;
    if (j === len) break;
    if (s.charCodeAt(j) !== 58) bad();
    j++;
    if (j < len && s.charCodeAt(j) === 58) {
      if (gap >= 0) bad();
      gap = n;
      j++;
    } else if (j === len) bad(); // a single trailing colon
    i = j;
  }
  if (gap >= 0) {
    if (n > 7) bad();
    const zeros = 8 - n;
    let o = p;
    for (let k = 0; k < gap; k++) { scratch[o++] = words[k]! >> 8; scratch[o++] = words[k]!; }
    for (let k = 0; k < zeros; k++) { scratch[o++] = 0; scratch[o++] = 0; }
    for (let k = gap; k < n; k++) { scratch[o++] = words[k]! >> 8; scratch[o++] = words[k]!; }
  } else {
    if (n !== 8) bad();
    for (let k = 0; k < 8; k++) { scratch[p + 2 * k] = words[k]! >> 8; scratch[p + 2 * k + 1] = words[k]!; }
  }
  return p + 16;
}

// Per-name work arrays: at most 127 labels fit in 255 bytes.
const labelOffs = new Int32Array(128);
const suffixHash = new Int32Array(128);

/**
 * Write a presentation-form name at `p` ("a.b.", "." or "a.b"; `\DDD` and `\X` escapes as readName
 * writes them; non-ASCII as UTF-8), then compress it: the longest suffix already in the message becomes a
 * pointer (unless `compress` is off: SRV targets). Suffixes are found by a hash of their lowercased wire
 * bytes and confirmed by comparing bytes, so no strings are built or lowercased per name.
 */
function writeName(name: string, p: number, compress: boolean): number {
  if (typeof name !== 'string') throw new Error(`encode: name is not a string`);
  const n = name.length;
  if (n === 0 || (n === 1 && name.charCodeAt(0) === 46)) { scratch[p] = 0; return p + 1; }
  if (compress && lastTarget >= 0 && name === lastName) {
    scratch[p] = 0xc0 | (lastTarget >> 8);
    scratch[p + 1] = lastTarget;
    return p + 2;
  }
  let nLabels = 0;
  let lab = p; // where the current label's length byte goes
  let q = p + 1;
  for (let i = 0; i < n; i++) {
    let c = name.charCodeAt(i);
    if (c === 46) {
      const len = q - lab - 1;
      if (len === 0) throw new Error(`encode: empty label in '${name}'`);
      scratch[lab] = len;
      labelOffs[nLabels++] = lab;
      lab = q++;
      if (lab - p > 254) throw new Error(`encode: name longer than 255 bytes: ${name}`);
      continue;
    }
    if (c === 92) { // backslash: \DDD or \X
      if (i + 1 >= n) throw new Error(`encode: dangling escape in '${name}'`);
      const d1 = name.charCodeAt(i + 1) - 48;
      if (d1 >= 0 && d1 <= 9) {
        const d2 = name.charCodeAt(i + 2) - 48, d3 = name.charCodeAt(i + 3) - 48;
        if (!(d2 >= 0 && d2 <= 9 && d3 >= 0 && d3 <= 9)) throw new Error(`encode: bad \\DDD escape in '${name}'`);
        c = d1 * 100 + d2 * 10 + d3;
        if (c > 255) throw new Error(`encode: bad \\DDD escape in '${name}'`);
        i += 3;
        scratch[q++] = c;
      } else {
        c = name.charCodeAt(++i);
        if (c < 0x80) scratch[q++] = c;
        else {
          q = writeUtf8(name, i, c, q);
          const lo = name.charCodeAt(i + 1);
          if (c >= 0xd800 && c <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) i++;
        }
      }
    } else if (c < 0x80) {
      scratch[q++] = c;
    } else {
      q = writeUtf8(name, i, c, q);
      const lo = name.charCodeAt(i + 1);
      if (c >= 0xd800 && c <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) i++;
    }
    if (q - lab > 64) throw new Error(`encode: label longer than 63 bytes in '${name}'`);
  }
  if (q - lab > 1) { // no trailing dot: an FQDN all the same
    scratch[lab] = q - lab - 1;
    labelOffs[nLabels++] = lab;
    lab = q++;
  }
  scratch[lab] = 0;
  const end = lab + 1;
  if (end - p > 255) throw new Error(`encode: name longer than 255 bytes: ${name}`);

  // FNV-1a over the lowercased wire bytes, from the last label to the first: suffixHash[i] covers
  // labels i..end.
  let h = 0x811c9dc5 | 0;
  for (let i = nLabels - 1; i >= 0; i--) {
    const o = labelOffs[i]!;
    const len = scratch[o]!;
    h = Math.imul(h ^ len, 0x01000193);
    for (let k = o + 1; k <= o + len; k++) {
      let b = scratch[k]!;
      if (b >= 65 && b <= 90) b += 32;
      h = Math.imul(h ^ b, 0x01000193);
    }
    suffixHash[i] = h;
  }
  for (let i = 0; i < nLabels; i++) {
    const o = labelOffs[i]!;
    const key = suffixHash[i]!;
    let slot = (key ^ (key >>> 14)) & TABLE_MASK;
    for (; tableGen[slot] === gen; slot = (slot + 1) & TABLE_MASK) {
      if (tableHash[slot] !== key) continue;
      const t = tableOff[slot]!;
      if (!sameName(o, t)) continue; // a hash collision
      if (!compress) return end; // shorter suffixes are known already
      scratch[o] = 0xc0 | (t >> 8);
      scratch[o + 1] = t;
      remember(name, i === 0 ? t : p);
      return o + 2;
    }
    if (o < 0x4000) { tableGen[slot] = gen; tableHash[slot] = key; tableOff[slot] = o; }
  }
  remember(name, p);
  return end;
}

function remember(name: string, target: number): void {
  if (target < 0x4000) { lastName = name; lastTarget = target; }
}

/** The code point at name[i] (first unit c) as UTF-8 at q; a lone surrogate becomes U+FFFD. */
function writeUtf8(name: string, i: number, c: number, q: number): number {
  if (c < 0x800) {
    scratch[q] = 0xc0 | (c >> 6); scratch[q + 1] = 0x80 | (c & 0x3f);
    return q + 2;
  }
  if (c >= 0xd800 && c <= 0xdfff) {
    const lo = name.charCodeAt(i + 1);
    if (c <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) {
      const cp = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
      scratch[q] = 0xf0 | (cp >> 18); scratch[q + 1] = 0x80 | ((cp >> 12) & 0x3f);
      scratch[q + 2] = 0x80 | ((cp >> 6) & 0x3f); scratch[q + 3] = 0x80 | (cp & 0x3f);
      return q + 4;
    }
    c = 0xfffd;
  }
  scratch[q] = 0xe0 | (c >> 12); scratch[q + 1] = 0x80 | ((c >> 6) & 0x3f); scratch[q + 2] = 0x80 | (c & 0x3f);
  return q + 3;
}

/**
 * Does the uncompressed name at `a` equal, ignoring ASCII case, the name at `b` (which may end in
 * pointers)? Everything in scratch before `a` was written by us, so the pointers are sound.
 */
function sameName(a: number, b: number): boolean {
  for (;;) {
    let lb = scratch[b]!;
    while (lb >= 0xc0) { b = ((lb & 0x3f) << 8) | scratch[b + 1]!; lb = scratch[b]!; }
    const la = scratch[a]!;
    if (la !== lb) return false;
    if (la === 0) return true;
    for (let k = 1; k <= la; k++) {
      let x = scratch[a + k]!, y = scratch[b + k]!;
      if (x === y) continue;
      if (x >= 65 && x <= 90) x += 32;
      if (y >= 65 && y <= 90) y += 32;
      if (x !== y) return false;
    }
    a += la + 1;
    b += lb + 1;
  }
}
