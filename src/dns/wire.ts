// The hot path: answers encoded once (prebuild) and copied per query with ID, RD/CD, the question's
// letter case, TTLs and an OPT record patched in (writePrebuilt). No objects, no compression work.
import { allocReply, encodeLayout, encodeLayoutInto } from './encode.ts';
import type { ParsedQuery } from './query.ts';
import type { Msg, PrebuiltWire } from './types.ts';

/**
 * Encode `msg` for reuse: ID 0, RD 0, CD 0, the question name lowercased, compressed, no OPT (msg.edns
 * is ignored; writePrebuilt appends the client's). Answer owners that equal the question become pointers
 * to it, so patching the question's case later also fixes their case, as CoreDNS replies do.
 */
export function prebuild(msg: Msg): PrebuiltWire {
  const l = encodeLayout(msg, 65535, true);
  // Bytes and TTL offsets share one ArrayBuffer of their own: each off-heap allocation costs ~1 µs,
  // and prebuilt replies live long, so they must not pin a pool chunk (see allocReply).
  const offs = l.ttlOffsets!;
  const aligned = (l.length + 3) & ~3;
  const store = new ArrayBuffer(aligned + 4 * offs.length);
  const bytes = new Uint8Array(store, 0, l.length);
  encodeLayoutInto(l, bytes);
  const ttlOffsets = new Uint32Array(store, aligned, offs.length);
  for (let i = 0; i < offs.length; i++) ttlOffsets[i] = offs[i]!;
  return { bytes, qnameEnd: l.qnameEnd, ttlOffsets };
}

/**
 * A reply for query `q` (bytes `raw`) from prebuilt `w`: a new array of exactly the reply's size (pooled,
 * see allocReply: mind byteOffset, `.slice()` it to keep it long). Returns null when it would exceed
 * `maxSize` (the caller then encodes with truncation). `opt`: append an OPT record (our UDP size, the DO
 * bit, `rcodeHigh` as the extended rcode). `ttlDelta`: seconds to subtract from every TTL (floor 0).
 */
export function writePrebuilt(
  w: PrebuiltWire, q: ParsedQuery, raw: Uint8Array,
  opt: { udpSize: number; do: boolean; rcodeHigh?: number } | null, maxSize: number, ttlDelta = 0,
): Uint8Array | null {
  const src = w.bytes;
  const len = src.length;
  const total = opt ? len + 11 : len;
  if (total > maxSize) return null;
  const out = allocReply(total); // pooled: see allocReply
  out.set(src);
  const id = q.id;
  out[0] = id >> 8;
  out[1] = id;
  const f = q.flags;
  out[2] = (src[2]! & 0xfe) | ((f >> 8) & 0x01); // RD
  out[3] = (src[3]! & 0xef) | (f & 0x10); // CD
  // The client's letter case, but only over a name that really is ours (case-insensitively): copying
  // the bytes of some other name of the same length would answer a question nobody asked.
  const qe = w.qnameEnd;
  if (qe > 12 && q.qnameEnd === qe && raw.length >= qe) {
    let same = true;
    for (let i = 12; i < qe; i++) {
      let c = raw[i]!;
      if (c >= 65 && c <= 90) c += 32; // length bytes are <= 63, below 'A'
      if (c !== src[i]) { same = false; break; }
    }
    if (same) for (let i = 12; i < qe; i++) out[i] = raw[i]!;
  }
  if (ttlDelta > 0) {
    const offs = w.ttlOffsets;
    for (let k = 0; k < offs.length; k++) {
      const o = offs[k]!;
      let ttl = ((out[o]! << 24) | (out[o + 1]! << 16) | (out[o + 2]! << 8) | out[o + 3]!) >>> 0;
      ttl = ttl > ttlDelta ? (ttl - ttlDelta) >>> 0 : 0;
      out[o] = ttl >>> 24;
      out[o + 1] = ttl >>> 16;
      out[o + 2] = ttl >>> 8;
      out[o + 3] = ttl;
    }
  }
  if (opt) {
    // Root owner, TYPE 41, CLASS = our UDP size, TTL = ext-rcode | version 0 | DO, RDLEN 0.
    out[len] = 0;
    out[len + 1] = 0;
    out[len + 2] = 41;
    out[len + 3] = opt.udpSize >> 8;
    out[len + 4] = opt.udpSize;
    out[len + 5] = opt.rcodeHigh ?? 0;
    out[len + 6] = 0;
    out[len + 7] = opt.do ? 0x80 : 0;
    out[len + 8] = 0;
    out[len + 9] = 0;
    out[len + 10] = 0;
    const ar = ((out[10]! << 8) | out[11]!) + 1;
    out[10] = ar >> 8;
    out[11] = ar;
  }
  return out;
}
