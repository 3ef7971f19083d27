// The reply memo: finished replies kept by the exact bytes of their question, so a query asked again
// is answered by copying bytes and patching the ID: no parsing into objects, no routing, no chain.
// (PowerDNS calls this a packet cache; CoreDNS has none.)
//
// A reply is kept only when every plugin it went through said it may be reused, and on what terms
// (Request.memo*): until when (cache: the next change of the aged TTLs), while what it was built from
// is unchanged (kubernetes: the zone cells it read), what a reuse must repeat (cache: its hit
// counters), and which address records to shuffle on each reuse (loadbalance). A plugin that does
// not declare itself memo-aware (Handler.memo) turns the memo off for its whole server block, and so
// does a response observer (log): nothing is ever skipped that something wanted to see.
//
// The key is everything the reply depends on besides those terms: the header flags word, the
// question bytes as sent (letter case included), EDNS presence, the DO bit, the reply size limit
// and the transport. The ID is patched in; EDNS options are not part of the key (no memo-aware
// plugin reads them: one that does must turn the memo off for such queries).
import { ednsOptionsError } from '../dns/query.ts';

/** Something a reply was built from; the reply may be reused while it says valid. */
export interface MemoValidity { valid(): boolean }

/** A side effect a reuse must repeat (a plugin's own counters). `now` is performance.now(). */
export type MemoHit = (now: number) => void;

/** The route a memoized reply was written through: what the server metrics need on a reuse. */
export interface MemoStats {
  record(proto: 'udp' | 'tcp', family: 4 | 6, qtype: number, doBit: boolean, reqSize: number,
    rcode: number, plugin: string, respSize: number, seconds: number): void;
}

/** The terms the chain left on a request (see Request). */
export interface MemoTerms {
  memoOff: boolean;
  memoUntil: number;
  memoDep: MemoValidity | undefined;
  memoHit: MemoHit | undefined;
  memoShuffle: Int32Array | undefined;
  memoAgeFrom: number;
  memoAgeDelta: number;
}

interface Entry {
  hash: number;
  /** Header flags word and the size/EDNS/transport word of the query. */
  flags: number;
  variant: number;
  /** The question's bytes (offset 12 to the end of QCLASS), as sent. */
  key: Uint8Array;
  /** The whole reply as written for such a query (ID, shuffle and TTLs patched in place on reuse). */
  reply: Uint8Array;
  until: number;
  dep: MemoValidity | undefined;
  hit: MemoHit | undefined;
  /** Runs of equal-sized address records to shuffle: [start, size, count]*. */
  shuffle: Int32Array | undefined;
  /** TTL aging: where the TTLs are, since when they age (NaN: they do not), by how much `reply` is aged. */
  ttlOffsets: Uint32Array | undefined;
  ageFrom: number;
  ageDelta: number;
  stats: MemoStats | null;
  qtype: number;
  doBit: boolean;
  rcode: number;
  plugin: string;
}

export interface MemoOptions {
  /** Slots (rounded up to a power of two). 0 turns the memo off. */
  entries: number;
  /** Bytes of replies held at most; past it the memo starts over. */
  maxBytes: number;
}

export const defaultMemoOptions: MemoOptions = { entries: 8192, maxBytes: 2 << 20 };

/** Counts kept across reloads (one set per listen address): clusterdns_reply_memo_* metrics. */
export interface MemoCounts {
  hits: number;
  /** Looked up, nothing kept for the question. */
  misses: number;
  /** Found but no longer valid (the zone moved, the cached TTL aged, the entry expired). */
  stale: number;
  inserts: number;
}

export function newMemoCounts(): MemoCounts { return { hits: 0, misses: 0, stale: 0, inserts: 0 }; }

/** Slab size for kept keys and replies. */
const SLAB_BYTES = 64 << 10;

/** Replies larger than this are not kept (big TCP answers: rare, and each would take a lot). */
const MAX_REPLY = 4096;

/**
 * One memo per listen address and configuration (a reload starts a new one). Two-way set-associative:
 * each hash has two slots. A question takes a free one; when both are taken it displaces the older
 * only on its second offer, so once the memo is full a flood of one-off names costs a hash and a
 * store each, not an allocation, and cannot push out the names clients keep asking.
 */
export class ReplyMemo {
  private readonly table: Array<Entry | undefined>;
  /** Entries in `table` (kept as they come and go: the metrics' scrape reads it). */
  private entries = 0;
  /** Hashes of questions offered when both their ways were taken (admitted on the next offer). */
  private readonly seen: Int32Array;
  private readonly seenShift: number;
  private readonly mask: number;
  private readonly maxBytes: number;
  private readonly maxUdp: number;
  /** Bytes of the kept entries (questions and replies). */
  private bytes = 0;
  /**
   * Keys and replies live in slabs, bump-allocated: one small typed array of its own per entry
   * would cost about as much again in allocator and ArrayBuffer overhead as the bytes themselves.
   * Space a dropped entry leaves is not reused; `used` counts it until the next clear().
   */
  private slab = new Uint8Array(0);
  private slabOff = 0;
  private used = 0;
  readonly counts: MemoCounts;
  // The last scan's results (one query at a time: JavaScript is single-threaded).
  private sHash = 0;
  private sFlags = 0;
  private sVariant = 0;
  private sEnd = 0;
  private sDo = false;
  /** The entry of the last hit (for its metrics). */
  last: Entry | undefined;

  constructor(maxUdp: number, opts: Partial<MemoOptions> = {}, counts: MemoCounts = newMemoCounts()) {
    this.counts = counts;
    const o = { ...defaultMemoOptions, ...opts };
    let n = 1;
    while (n < o.entries) n <<= 1;
    if (n < 2) n = 2;
    this.table = new Array<Entry | undefined>(n).fill(undefined);
    this.seen = new Int32Array(2 * n);
    this.seenShift = 32 - Math.log2(2 * n);
    this.mask = n - 2; // even slots: each hash owns two ways (slot, slot + 1)
    this.maxBytes = o.maxBytes;
    this.maxUdp = maxUdp;
  }

  /** Entries held now. */
  get size(): number { return this.entries; }

  /** Bytes of replies held now. */
  get heldBytes(): number { return this.bytes; }

  /**
   * Read the header, question and OPT of `raw` the way the key needs them. False for anything the
   * full parser should see: not a plain query with one question and at most an OPT record, a name with
   * a compression pointer, EDNS version > 0, malformed options.
   */
  private scan(raw: Uint8Array, tcp: boolean): boolean {
    const n = raw.length;
    if (n < 17) return false;
    const flags = (raw[2]! << 8) | raw[3]!;
    if ((flags & 0x8000) !== 0) return false;
    if (raw[4] !== 0 || raw[5] !== 1 || raw[6] !== 0 || raw[7] !== 0 || raw[8] !== 0 || raw[9] !== 0 || raw[10] !== 0) return false;
    const arcount = raw[11]!;
    if (arcount > 1) return false;
    let p = 12;
    for (;;) {
      if (p >= n) return false;
      const len = raw[p]!;
      if (len === 0) break;
      if (len > 63) return false;
      p += len + 1;
    }
    const end = p + 5;
    if (end > n || end - 12 > 259) return false;
    let h = 0x811c9dc5 ^ flags;
    for (let i = 12; i < end; i++) h = Math.imul(h ^ raw[i]!, 16777619);
    let variant: number;
    let doBit = false;
    if (arcount === 0) {
      variant = tcp ? 0x20000 : 512;
    } else {
      // OPT: root owner, TYPE 41, CLASS = UDP size, TTL = ext-rcode, version, DO + Z, RDLEN, options.
      if (end + 11 > n || raw[end] !== 0 || raw[end + 1] !== 0 || raw[end + 2] !== 41) return false;
      if (raw[end + 6] !== 0) return false; // version
      const rdlen = (raw[end + 9]! << 8) | raw[end + 10]!;
      const oEnd = end + 11 + rdlen;
      if (oEnd > n) return false;
      if (ednsOptionsError(raw, end + 11, oEnd) !== null) return false;
      doBit = (raw[end + 7]! & 0x80) !== 0;
      let size = 0x20000;
      if (!tcp) {
        size = (raw[end + 3]! << 8) | raw[end + 4]!;
        if (size < 512) size = 512;
        if (size > this.maxUdp) size = this.maxUdp;
      }
      variant = size | 0x40000 | (doBit ? 0x80000 : 0);
    }
    h = Math.imul(h ^ variant, 16777619);
    this.sHash = h | 0;
    this.sFlags = flags;
    this.sVariant = variant;
    this.sEnd = end;
    this.sDo = doBit;
    return true;
  }

  private matches(e: Entry, raw: Uint8Array): boolean {
    if (e.hash !== this.sHash || e.flags !== this.sFlags || e.variant !== this.sVariant) return false;
    const k = e.key;
    if (k.length !== this.sEnd - 12) return false;
    for (let i = 0; i < k.length; i++) if (k[i] !== raw[12 + i]) return false;
    return true;
  }

  /**
   * The reply for `raw` if one is kept and still valid, with the query's ID, TTLs aged and address
   * records reshuffled where asked for. These are the kept bytes themselves: send or copy them before
   * the next lookup, and call detach() if they must outlive it. The entry's side effects have run;
   * `last` is the entry (its route's metrics are the caller's to record). Null: ask the chain.
   */
  lookup(raw: Uint8Array, tcp: boolean, now: number): Uint8Array | null {
    if (!this.scan(raw, tcp)) return null;
    const slot = this.sHash & this.mask;
    let e = this.table[slot];
    let at = slot;
    if (e === undefined || !this.matches(e, raw)) {
      at = slot + 1;
      e = this.table[at];
      if (e === undefined || !this.matches(e, raw)) { this.counts.misses++; return null; }
    }
    if (now >= e.until || (e.dep !== undefined && !e.dep.valid())) {
      this.drop(at, e);
      this.counts.stale++;
      return null;
    }
    const src = e.reply;
    if (e.ttlOffsets !== undefined) {
      // The kept bytes age in place, once per second of age: later reuses copy them as they are.
      const d = Math.floor((now - e.ageFrom) / 1000) - e.ageDelta;
      if (d > 0) { ageTtls(src, e.ttlOffsets, d); e.ageDelta += d; }
    }
    // The kept bytes themselves, patched in place: no allocation, no copy (see detach()).
    src[0] = raw[0]!;
    src[1] = raw[1]!;
    if (e.shuffle !== undefined) shuffleRuns(src, e.shuffle);
    if (e.hit !== undefined) e.hit(now);
    this.counts.hits++;
    this.last = e;
    return src;
  }

  /**
   * The bytes the last lookup returned are still needed after it (a send the kernel did not take at
   * once keeps them queued): the entry gets a copy of its own to patch from now on.
   */
  detach(): void {
    const e = this.last;
    if (e !== undefined) e.reply = this.take(e.reply);
  }

  /**
   * Offer the reply the chain produced for `raw` under the request's terms. `ttlOffsets`: where the
   * reply's TTLs are, given exactly when the reply was copied from prebuilt wire (for replies that
   * age, and the only replies whose records sit where shuffle runs say).
   */
  offer(raw: Uint8Array, tcp: boolean, terms: MemoTerms, now: number, reply: Uint8Array, stats: MemoStats | null,
    qtype: number, rcode: number, plugin: string, ttlOffsets: Uint32Array | undefined): void {
    let until = terms.memoUntil;
    const ages = !Number.isNaN(terms.memoAgeFrom);
    // TTLs that age but cannot be found in the bytes: reusable only until they next change.
    if (ages && ttlOffsets === undefined) until = Math.min(until, terms.memoAgeFrom + (terms.memoAgeDelta + 1) * 1000);
    if (terms.memoOff || until <= now || reply.length > MAX_REPLY || reply.length < 12) return;
    // Shuffle runs are offsets in the prebuilt wire: a reply encoded instead (truncated for a small
    // UDP size) has fewer records, elsewhere, and shuffling it would scramble its bytes.
    if (terms.memoShuffle !== undefined && ttlOffsets === undefined) return;
    if (!this.scan(raw, tcp)) return;
    const h = this.sHash;
    const slot = h & this.mask;
    // Two ways per hash: the entry for this question if there is one, else a free way; when both are
    // taken by others, the newcomer goes first and the first moves to the second way (its occupant goes).
    const t = this.table;
    let at = -1;
    for (let i = slot; i <= slot + 1; i++) {
      const o = t[i];
      if (o !== undefined && this.matches(o, raw)) { at = i; break; }
    }
    if (at < 0) {
      // The newest always goes to the first way, so a displacement evicts the older of the two.
      if (t[slot] === undefined) at = slot;
      else if (t[slot + 1] === undefined) { t[slot + 1] = t[slot]; t[slot] = undefined; at = slot; }
      else {
        // Both ways taken: displace only for a question seen before (a flood of one-off names fills
        // free ways once, then costs nothing). `seen` is indexed by other bits of the hash than the
        // ways, so two questions asked in strict alternation rarely keep erasing each other there.
        const si = Math.imul(h, 0x9e3779b1) >>> this.seenShift;
        if (this.seen[si] !== h) { this.seen[si] = h; return; }
        this.seen[si] = 0;
        this.drop(slot + 1, t[slot + 1]!);
        t[slot + 1] = t[slot];
        t[slot] = undefined;
        at = slot;
      }
    }
    const keyLen = this.sEnd - 12;
    const old = t[at];
    if (old !== undefined) this.drop(at, old);
    if (this.used + keyLen + reply.length > this.maxBytes) {
      this.clear();
      at = slot;
    }
    const key = this.take(raw.subarray(12, this.sEnd));
    const kept = this.take(reply);
    t[at] = {
      hash: h, flags: this.sFlags, variant: this.sVariant,
      key, reply: kept,
      until, dep: terms.memoDep, hit: terms.memoHit, shuffle: terms.memoShuffle,
      ttlOffsets: ages ? ttlOffsets : undefined, ageFrom: terms.memoAgeFrom, ageDelta: terms.memoAgeDelta,
      stats, qtype, doBit: this.sDo, rcode, plugin,
    };
    this.bytes += keyLen + kept.length;
    this.entries++;
    this.counts.inserts++;
  }

  private drop(slot: number, e: Entry): void {
    this.table[slot] = undefined;
    this.entries--;
    this.bytes -= e.key.length + e.reply.length;
  }

  /** Forget everything (configuration changes start a new memo instead). */
  clear(): void {
    this.table.fill(undefined);
    this.entries = 0;
    this.seen.fill(0);
    this.bytes = 0;
    this.used = 0;
    this.slab = new Uint8Array(0);
    this.slabOff = 0;
  }

  /** A copy of `b` in the current slab (a new slab when it is full; large ones get their own). */
  private take(b: Uint8Array): Uint8Array {
    const n = b.length;
    this.used += n;
    if (n > SLAB_BYTES / 4) return b.slice();
    if (this.slabOff + n > this.slab.length) {
      this.slab = new Uint8Array(SLAB_BYTES);
      this.slabOff = 0;
    }
    const out = this.slab.subarray(this.slabOff, this.slabOff + n);
    out.set(b);
    this.slabOff += n;
    return out;
  }
}

/** Lower the TTL at each offset by `d` seconds (floor 0). */
function ageTtls(b: Uint8Array, offs: Uint32Array, d: number): void {
  for (let k = 0; k < offs.length; k++) {
    const o = offs[k]!;
    let ttl = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
    ttl = ttl > d ? ttl - d : 0;
    b[o] = ttl >>> 24;
    b[o + 1] = ttl >>> 16;
    b[o + 2] = ttl >>> 8;
    b[o + 3] = ttl;
  }
}

/** Fisher–Yates over each run of equal-sized records, in place: [start, size, count]*. */
export function shuffleRuns(b: Uint8Array, runs: Int32Array): void {
  for (let r = 0; r + 2 < runs.length; r += 3) {
    const start = runs[r]!, size = runs[r + 1]!, count = runs[r + 2]!;
    for (let i = count - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      if (j === i) continue;
      const a = start + i * size, c = start + j * size;
      for (let k = 0; k < size; k++) {
        const t = b[a + k]!;
        b[a + k] = b[c + k]!;
        b[c + k] = t;
      }
    }
  }
}
