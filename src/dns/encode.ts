// The compressing encoder (dns-packet never compresses). One pass into a module-level scratch buffer:
// because compression pointers only point backwards, every prefix of the written records is a valid
// message, so truncation is a roll-back to the last record that fitted, not a second encode.
import type { Msg, RR, SoaRR, SrvRR, MxRR, Edns } from './types.ts';

// A record is at most 255 (name) + 10 + 65535 bytes, and we only start one while the message is below
// 64 KiB, so two 64 KiB halves plus slack can never be overrun by a single record.
const SCRATCH_SIZE = 2 * 65536 + 1024;
const scratch = new Uint8Array(SCRATCH_SIZE);
const view = new DataView(scratch.buffer);
/** Lowercased presentation-form suffix ("svc.cluster.local.") → offset of its first label. Reset per call. */
const table = new Map<string, number>();
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
 * encodeLayout for the truncation rules). Throws a plain Error for a message that cannot be encoded
 * (bad address text, label > 63 bytes, name > 255 bytes, TXT string > 255 bytes, RDATA > 65535 bytes).
 */
export function encode(msg: Msg, maxSize = 65535): Uint8Array {
  const l = encodeLayout(msg, maxSize, false);
  return scratch.slice(0, l.length);
}

/**
 * Encode into the shared scratch buffer and return the layout; the caller copies `scratch` out via
 * encodeLayoutBytes before anything else encodes. `forPrebuild`: ID 0, RD 0, CD 0, lowercase question
 * name, no OPT, TTL offsets recorded.
 *
 * Truncation (only when the whole message exceeds maxSize): answers are added while they fit; the first
 * one that does not sets TC and nothing more is added. Then the same for authority. Additional records
 * stop silently at the first that does not fit. The OPT record is always written last.
 */
export function encodeLayout(msg: Msg, maxSize: number, forPrebuild: boolean): Layout {
  table.clear();
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

/** A copy of the bytes the last encodeLayout call produced. */
export function encodeLayoutBytes(l: Layout): Uint8Array {
  return scratch.slice(0, l.length);
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

/**
 * Write a presentation-form name at `p`, compressed against earlier names when `compress` is set (it
 * becomes a pointer target either way). Fast path: plain printable ASCII without escapes, where the
 * lowercased text is the table key as is. Anything else (escapes, spaces, non-ASCII) takes the slow path.
 */
function writeName(name: string, p: number, compress: boolean): number {
  if (typeof name !== 'string') throw new Error(`encode: name is not a string`);
  let n = name.length;
  if (n === 0 || (n === 1 && name.charCodeAt(0) === 46)) { scratch[p] = 0; return p + 1; }
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x5c) return writeNameSlow(name, p, compress);
  }
  if (name.charCodeAt(n - 1) !== 46) { name += '.'; n++; }
  // In this form every '.' is one length byte and the trailing one the root: wire length = n + 1.
  if (n + 1 > 255) throw new Error(`encode: name longer than 255 bytes: ${name}`);
  const lower = name.toLowerCase();
  let start = 0;
  while (start < n) {
    const dot = name.indexOf('.', start);
    const len = dot - start;
    if (len === 0) throw new Error(`encode: empty label in '${name}'`);
    if (len > 63) throw new Error(`encode: label longer than 63 bytes in '${name}'`);
    const key = start === 0 ? lower : lower.slice(start);
    const ptr = table.get(key);
    if (ptr !== undefined) {
      if (compress) {
        scratch[p] = 0xc0 | (ptr >> 8);
        scratch[p + 1] = ptr;
        return p + 2;
      }
    } else if (p < 0x4000) table.set(key, p);
    scratch[p++] = len;
    for (let i = start; i < dot; i++) scratch[p++] = name.charCodeAt(i);
    start = dot + 1;
  }
  scratch[p] = 0;
  return p + 1;
}

/** The table key of one label: lowercase ASCII letters, escaped exactly as query.ts readName does. */
function labelKey(bytes: number[]): string {
  let s = '';
  for (let c of bytes) {
    if (c >= 65 && c <= 90) c += 32;
    if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) s += String.fromCharCode(c);
    else if (c === 0x2e || c === 0x5c) s += '\\' + String.fromCharCode(c);
    else s += '\\' + String(c).padStart(3, '0');
  }
  return s;
}

/** Split presentation text into label bytes, interpreting `\DDD` and `\X`; non-ASCII becomes UTF-8. */
export function nameToLabels(name: string): number[][] {
  const labels: number[][] = [];
  let cur: number[] = [];
  const n = name.length;
  let wire = 1;
  const end = (): void => {
    if (cur.length === 0) throw new Error(`encode: empty label in '${name}'`);
    if (cur.length > 63) throw new Error(`encode: label longer than 63 bytes in '${name}'`);
    wire += cur.length + 1;
    labels.push(cur);
    cur = [];
  };
  if (name === '.' || name === '') return labels;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) { end(); continue; }
    if (c === 0x5c) {
      if (i + 1 >= n) throw new Error(`encode: dangling escape in '${name}'`);
      const d1 = name.charCodeAt(i + 1);
      if (d1 >= 48 && d1 <= 57) {
        const d2 = name.charCodeAt(i + 2), d3 = name.charCodeAt(i + 3);
        if (!(d2 >= 48 && d2 <= 57 && d3 >= 48 && d3 <= 57)) throw new Error(`encode: bad \\DDD escape in '${name}'`);
        const v = (d1 - 48) * 100 + (d2 - 48) * 10 + (d3 - 48);
        if (v > 255) throw new Error(`encode: bad \\DDD escape in '${name}'`);
        cur.push(v);
        i += 3;
      } else {
        const cp = name.codePointAt(i + 1)!;
        if (cp < 0x80) cur.push(cp);
        else for (const b of textEncoder.encode(String.fromCodePoint(cp))) cur.push(b);
        i += cp > 0xffff ? 2 : 1;
      }
      continue;
    }
    if (c < 0x80) { cur.push(c); continue; }
    const cp = name.codePointAt(i)!;
    for (const b of textEncoder.encode(String.fromCodePoint(cp))) cur.push(b);
    if (cp > 0xffff) i++;
  }
  if (cur.length > 0) end(); // no trailing dot: still an FQDN
  if (wire > 255) throw new Error(`encode: name longer than 255 bytes: ${name}`);
  return labels;
}

function writeNameSlow(name: string, p: number, compress: boolean): number {
  const labels = nameToLabels(name);
  const keys = labels.map(labelKey);
  for (let i = 0; i < labels.length; i++) {
    const key = keys.slice(i).join('.') + '.';
    const ptr = table.get(key);
    if (ptr !== undefined) {
      if (compress) {
        scratch[p] = 0xc0 | (ptr >> 8);
        scratch[p + 1] = ptr;
        return p + 2;
      }
    } else if (p < 0x4000) table.set(key, p);
    const l = labels[i]!;
    scratch[p++] = l.length;
    for (const b of l) scratch[p++] = b;
  }
  scratch[p] = 0;
  return p + 1;
}
