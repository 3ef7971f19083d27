// Shuffle the address (and MX) records of a reply, CoreDNS round_robin style, without touching the
// reply we were given: a new Msg with new section arrays, and — when the reply carries prebuilt wire
// bytes — a new wire with the same records moved, so the server can still copy instead of encode.
import { allocReply } from '../../src/dns/encode.ts';
import { expandIPv6 } from '../../src/dns/name.ts';
import { type Msg, type PrebuiltWire, type RR, Type } from '../../src/dns/types.ts';

/** A parsed CIDR for `prefer`: network bytes (4 or 16) and prefix length. */
export interface Cidr {
  text: string;
  bytes: Uint8Array;
  bits: number;
}

/** IPv4 or IPv6 text → 4 or 16 bytes; IPv4-mapped IPv6 comes back as 4 bytes unless `keep6` (Go's To4 rule). */
export function ipBytes(ip: string, keep6 = false): Uint8Array | undefined {
  if (!ip.includes(':')) {
    const parts = ip.split('.');
    if (parts.length !== 4) return undefined;
    const out = new Uint8Array(4);
    for (let i = 0; i < 4; i++) {
      const p = parts[i]!;
      if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
      out[i] = Number(p);
    }
    return out;
  }
  const w = expandIPv6(ip);
  if (!w) return undefined;
  if (!keep6 && w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff) {
    return Uint8Array.of(w[6]! >> 8, w[6]! & 0xff, w[7]! >> 8, w[7]! & 0xff);
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) { out[2 * i] = w[i]! >> 8; out[2 * i + 1] = w[i]! & 0xff; }
  return out;
}

/** "10.0.0.0/8", "fd00::/8" → Cidr, or the reason it is not one. Host bits are ignored (as Go's ParseCIDR). */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  if (slash < 0) return 'missing prefix length';
  const bytes = ipBytes(text.slice(0, slash), true);
  if (!bytes) return 'invalid address';
  const prefix = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bytes.length * 8) return 'invalid prefix length';
  return { text, bytes, bits: Number(prefix) };
}

export function cidrContains(c: Cidr, ip: Uint8Array): boolean {
  if (ip.length !== c.bytes.length) return false;
  let bits = c.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i]! & mask) !== (c.bytes[i]! & mask)) return false;
  }
  return true;
}

const isAddr = (t: number): boolean => t === Type.A || t === Type.AAAA;

/** Group rank in the output order: CNAME, other records, addresses, MX. */
function rank(t: number): number {
  if (t === Type.CNAME) return 0;
  if (t === Type.A || t === Type.AAAA) return 2;
  if (t === Type.MX) return 3;
  return 1;
}

/** Fisher–Yates over a[from, to) in place (uniform, as CoreDNS's round_robin). */
function shuffle(a: number[], from: number, to: number): void {
  for (let i = to - 1; i > from; i--) {
    const j = from + Math.floor(Math.random() * (i - from + 1));
    const t = a[i]!; a[i] = a[j]!; a[j] = t;
  }
}

/** Stable: addresses in a preferred subnet first (in the order the subnets are listed), then the rest. */
function preferOrder(order: number[], from: number, to: number, rrs: readonly RR[], prefer: readonly Cidr[]): void {
  const idx = order.slice(from, to);
  const ips = idx.map((i) => ipBytes(rrs[i]!.data as string));
  const taken = new Array<boolean>(idx.length).fill(false);
  let k = from;
  for (const c of prefer) {
    for (let j = 0; j < idx.length; j++) {
      const ip = ips[j];
      if (!taken[j] && ip && cidrContains(c, ip)) { taken[j] = true; order[k++] = idx[j]!; }
    }
  }
  for (let j = 0; j < idx.length; j++) if (!taken[j]) order[k++] = idx[j]!;
}

/**
 * The new order of one section as old indexes (out[k] = index of the record that goes to slot k), or
 * null when nothing needs to move (at most one address record and at most one MX). Order: CNAMEs,
 * other records, addresses (shuffled, then preferred subnets first), MX (shuffled).
 */
export function sectionOrder(rrs: readonly RR[], prefer: readonly Cidr[] | null): number[] | null {
  const n = rrs.length;
  let nAddr = 0, nMx = 0, grouped = true, last = 0;
  for (let i = 0; i < n; i++) {
    const r = rank(rrs[i]!.type);
    if (r === 2) nAddr++;
    else if (r === 3) nMx++;
    if (r < last) grouped = false;
    last = r;
  }
  if (nAddr < 2 && nMx < 2) return null;
  const order = new Array<number>(n);
  if (grouped) {
    // The usual case: already CNAMEs, others, addresses, MX. Only the two runs get shuffled.
    for (let i = 0; i < n; i++) order[i] = i;
  } else {
    let k = 0;
    for (let r = 0; r < 4; r++) for (let i = 0; i < n; i++) if (rank(rrs[i]!.type) === r) order[k++] = i;
  }
  let a0 = 0;
  while (a0 < n && rank(rrs[order[a0]!]!.type) < 2) a0++;
  const a1 = a0 + nAddr;
  shuffle(order, a0, a1);
  shuffle(order, a1, n);
  if (prefer && nAddr > 1) preferOrder(order, a0, a1, rrs, prefer);
  return order;
}

function apply(rrs: RR[], order: number[] | null): RR[] {
  if (!order) return rrs;
  const out = new Array<RR>(order.length);
  for (let k = 0; k < order.length; k++) out[k] = rrs[order[k]!]!;
  return out;
}

/**
 * Shuffle a NOERROR reply. Returns `msg` itself when nothing needs to move (so a prebuilt wire is
 * kept as is); otherwise a shallow copy with new arrays for the sections that changed. A prebuilt
 * wire is carried over by moving record bytes when that is safe (see permuteWire); otherwise it is
 * dropped and the server encodes the copy (a full encode: several µs instead of a byte copy).
 */
export function balance(msg: Msg, prefer: readonly Cidr[] | null): Msg {
  // Most replies (a ClusterIP, a cached single address, a denial) have no section with two records.
  if (msg.answer.length < 2 && msg.authority.length < 2 && msg.additional.length < 2) return msg;
  const an = sectionOrder(msg.answer, prefer);
  const ns = sectionOrder(msg.authority, null);
  const ar = sectionOrder(msg.additional, prefer);
  if (!an && !ns && !ar) return msg;
  const out: Msg = {
    ...msg,
    answer: apply(msg.answer, an),
    authority: apply(msg.authority, ns),
    additional: apply(msg.additional, ar),
    wire: undefined,
  };
  if (msg.wire) out.wire = permuteWire(msg.wire, [msg.answer.length, msg.authority.length, msg.additional.length], [an, ns, ar]);
  return out;
}

/**
 * Move records inside prebuilt wire bytes. Safe only for records whose position does not matter to
 * the encoding: A/AAAA records whose owner is a single compression pointer (nothing can point into
 * them, and their RDATA holds no names), moved between slots of the same byte length (so every other
 * offset, and each slot's TTL offset, stays where it was). Anything else → undefined (re-encode).
 */
export function permuteWire(w: PrebuiltWire, counts: readonly number[], orders: ReadonlyArray<number[] | null>): PrebuiltWire | undefined {
  const b = w.bytes;
  if (b.length < 12) return undefined;
  const qd = (b[4]! << 8) | b[5]!;
  const wireCounts = [(b[6]! << 8) | b[7]!, (b[8]! << 8) | b[9]!, (b[10]! << 8) | b[11]!];
  for (let s = 0; s < 3; s++) if (wireCounts[s] !== counts[s]) return undefined;
  let p = 12;
  for (let i = 0; i < qd; i++) {
    const e = skipName(b, p);
    if (e < 0) return undefined;
    p = e + 4;
  }
  const total = counts[0]! + counts[1]! + counts[2]!;
  // Record boundaries in scratch arrays reused by every call (a reply has at most 65535 records).
  if (total > scratchStart.length) growScratch(total);
  const start = scratchStart, end = scratchEnd, movable = scratchMovable;
  for (let i = 0; i < total; i++) {
    const e = skipName(b, p);
    if (e < 0 || e + 10 > b.length) return undefined;
    const type = (b[e]! << 8) | b[e + 1]!;
    const rdlen = (b[e + 8]! << 8) | b[e + 9]!;
    start[i] = p;
    movable[i] = e - p === 2 && (b[p]! & 0xc0) === 0xc0 && isAddr(type) ? 1 : 0;
    p = e + 10 + rdlen;
    end[i] = p;
  }
  if (p > b.length) return undefined;
  // Pooled like the server's reply bytes (a fresh ArrayBuffer costs about a microsecond): this copy
  // lives for one reply, loadbalance sits in front of cache, so nothing keeps it.
  const bytes = allocReply(b.length);
  bytes.set(b);
  let base = 0;
  for (let s = 0; s < 3; s++) {
    const o = orders[s];
    if (o) {
      for (let k = 0; k < o.length; k++) {
        const from = base + o[k]!, to = base + k;
        if (from === to) continue;
        if (!movable[from] || !movable[to] || end[from]! - start[from]! !== end[to]! - start[to]!) return undefined;
        // A few bytes each: a loop beats creating a subarray view per record.
        for (let i = start[from]!, j = start[to]!, e = end[from]!; i < e; i++, j++) bytes[j] = b[i]!;
      }
    }
    base += counts[s]!;
  }
  return { bytes, qnameEnd: w.qnameEnd, ttlOffsets: w.ttlOffsets };
}

const runsOf = new WeakMap<PrebuiltWire, Int32Array | null>();

/**
 * Where a reuse of `msg`'s reply must shuffle (src/server/memo.ts): per section, the run of address
 * records as [start, size, count] byte offsets in its wire (the same in the reply written from it),
 * or undefined when the order balance() makes is not a plain shuffle of equal-sized movable records
 * (records to regroup, two MX records, mixed sizes). Computed once per prebuilt wire.
 */
export function shuffleRuns(msg: Msg): Int32Array | undefined {
  const w = msg.wire;
  if (!w) return undefined;
  let runs = runsOf.get(w);
  if (runs === undefined) {
    runs = computeRuns(w, [msg.answer, msg.authority, msg.additional]);
    runsOf.set(w, runs);
  }
  return runs ?? undefined;
}

function computeRuns(w: PrebuiltWire, sections: ReadonlyArray<readonly RR[]>): Int32Array | null {
  const b = w.bytes;
  if (b.length < 12) return null;
  const qd = (b[4]! << 8) | b[5]!;
  let p = 12;
  for (let i = 0; i < qd; i++) {
    const e = skipName(b, p);
    if (e < 0) return null;
    p = e + 4;
  }
  const out: number[] = [];
  for (let s = 0; s < 3; s++) {
    const rrs = sections[s]!;
    if (((b[6 + 2 * s]! << 8) | b[7 + 2 * s]!) !== rrs.length) return null;
    let last = 0, nMx = 0, runStart = -1, runSize = -1, runCount = 0;
    for (let i = 0; i < rrs.length; i++) {
      const r = rank(rrs[i]!.type);
      if (r < last) return null; // balance() would regroup: not a shuffle
      last = r;
      const e = skipName(b, p);
      if (e < 0 || e + 10 > b.length) return null;
      const type = (b[e]! << 8) | b[e + 1]!;
      if (type !== rrs[i]!.type) return null;
      const end = e + 10 + ((b[e + 8]! << 8) | b[e + 9]!);
      if (r === 2) {
        const movable = e - p === 2 && (b[p]! & 0xc0) === 0xc0;
        if (!movable || (runSize >= 0 && end - p !== runSize)) return null;
        if (runStart < 0) { runStart = p; runSize = end - p; }
        runCount++;
      } else if (r === 3) nMx++;
      p = end;
    }
    if (nMx > 1) return null;
    if (runCount > 1) out.push(runStart, runSize, runCount);
  }
  if (p > b.length) return null;
  return out.length > 0 ? Int32Array.from(out) : null;
}

let scratchStart = new Int32Array(64);
let scratchEnd = new Int32Array(64);
let scratchMovable = new Uint8Array(64);
function growScratch(n: number): void {
  scratchStart = new Int32Array(n);
  scratchEnd = new Int32Array(n);
  scratchMovable = new Uint8Array(n);
}

/** Offset just past the name at `p`, or -1 if malformed. */
function skipName(b: Uint8Array, p: number): number {
  for (let guard = 0; guard < 128; guard++) {
    if (p >= b.length) return -1;
    const len = b[p]!;
    if (len === 0) return p + 1;
    if ((len & 0xc0) === 0xc0) return p + 2;
    if (len > 63) return -1;
    p += len + 1;
  }
  return -1;
}
