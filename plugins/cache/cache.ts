// The cache handler. An entry is a frozen reply with every TTL set to the entry's TTL, plus the same
// reply prebuilt as wire bytes; a hit is a key lookup and a shallow Msg whose `ttlDelta` ages the TTLs
// as the server copies the bytes out. Nothing is copied per hit.
//
// The key is a 30-bit hash of the question as it arrived (QNAME bytes lowercased, QTYPE, QCLASS, DO, CD)
// and an entry is checked against the query before use, as CoreDNS does with its 64-bit hash. Hashing
// the bytes avoids building a string per query: a fresh `name + suffix` key costs several times more
// than the whole rest of a hit, because V8 must flatten and hash the new string.
import { LRUCache } from 'lru-cache';
import { isSubdomain } from '../../src/dns/name.ts';
import { type Msg, type RR, type SoaRR, Rcode, Type } from '../../src/dns/types.ts';
import { prebuild } from '../../src/dns/wire.ts';
import type { Handler, Next, Reply } from '../../src/plugin.ts';
import { Request } from '../../src/request.ts';
import { CacheStats, type ServerCounts } from './metrics.ts';

export interface TtlLimits {
  /** Entries at most this many entries (LRU). */
  capacity: number;
  /** Seconds. */
  maxTtl: number;
  /** Seconds. */
  minTtl: number;
}

export interface CacheConfig {
  /** Canonical zones cached; other names pass through untouched. */
  zones: string[];
  success: TtlLimits;
  denial: TtlLimits;
  /** How long SERVFAIL (and NOTIMP) replies are kept, ms; 0 = never. */
  servfailMs: number;
  /** Refresh an item hit `amount` times (no gap of `windowMs`) once its TTL is below `percentage`%. 0 = off. */
  prefetch: { amount: number; windowMs: number; percentage: number };
  /** Serve expired entries up to `ms` after expiry (0 = off); `verify`: ask upstream first. */
  serveStale: { ms: number; verify: boolean };
  /** Zones whose names are never cached in the success / denial cache. */
  disable: { success: string[]; denial: string[] };
  /** Serve the TTLs as stored instead of counting them down. */
  keepTtl: boolean;
}

/** CoreDNS's defaults (plugin/cache, plugin/pkg/dnsutil). */
export const defaults = {
  successMaxTtl: 3600,
  denialMaxTtl: 1800,
  minTtl: 5,
  /** 256 shards of 39 in CoreDNS. */
  capacity: 9984,
  servfailMs: 5_000,
  prefetchWindowMs: 60_000,
  prefetchPercentage: 10,
  serveStaleMs: 3_600_000,
  /** The TTL CoreDNS gives a reply without any record to take one from. */
  emptyTtl: 5,
} as const;

export function defaultConfig(zones: string[] = ['.']): CacheConfig {
  return {
    zones,
    success: { capacity: defaults.capacity, maxTtl: defaults.successMaxTtl, minTtl: defaults.minTtl },
    denial: { capacity: defaults.capacity, maxTtl: defaults.denialMaxTtl, minTtl: defaults.minTtl },
    servfailMs: defaults.servfailMs,
    prefetch: { amount: 0, windowMs: defaults.prefetchWindowMs, percentage: defaults.prefetchPercentage },
    serveStale: { ms: 0, verify: false },
    disable: { success: [], denial: [] },
    keepTtl: false,
  };
}

type Kind = 'success' | 'denial';

interface Entry {
  /** Frozen; `wire` set (its question bytes identify the entry); TTLs all equal to `ttl`. */
  readonly msg: Msg;
  readonly qtype: number;
  readonly qclass: number;
  /** The query's DO and CD bits (see flagBits). */
  readonly bits: number;
  /** The same without the AD bit, made when a client that asked for neither DO nor AD hits an AD reply. */
  noAd: Msg | undefined;
  readonly kind: Kind;
  /** Clock value (ms) when stored. */
  readonly storedAt: number;
  readonly expires: number;
  /** Seconds, as stored in the records. */
  readonly ttl: number;
  /** Prefetch popularity: hits with no gap longer than the window, and the last one. */
  hits: number;
  lastHit: number;
  /** With prefetch: what a reuse of a reply from this entry repeats (see memoTerms), for whose counters. */
  memoHit?: (now: number) => void;
  memoCounts?: ServerCounts;
}

/** What an upstream call produced: the reply as received, and the entry made from it, if any. */
interface Outcome { msg: Msg; entry: Entry | undefined }

/** An upstream call in progress, and the query it is for (keys are hashes: check before sharing). */
interface Flight { p: Promise<Outcome>; req: Request }

export interface CacheOptions {
  /** Clock in ms (performance.now() timebase). Default: the request's arrival time for lookups. */
  now?: () => number;
  /** Where the counters go (setup passes the registry's; default: a private one). */
  stats?: CacheStats;
}

const FLAG_CD = 0x0010;
const FLAG_AD = 0x0020;
const noop = () => undefined;

/**
 * The cache plugin's handler: one per server block, so entries never cross blocks. Positive and
 * negative answers live in two LRUs; one upstream query per key is in flight at a time.
 */
export class Cache implements Handler {
  readonly name = 'cache';
  readonly memo = true;
  readonly stats: CacheStats;
  private readonly cfg: CacheConfig;
  private readonly clock: (() => number) | undefined;
  private readonly allZones: boolean;
  /**
   * Zones where both success and denial caching are disabled (kubeadm: cluster.local): nothing there
   * can ever be stored, so queries go straight to the next plugin without a key or a lookup.
   */
  private readonly bypass: string[];
  private readonly pcache: LRUCache<number, Entry>;
  private readonly ncache: LRUCache<number, Entry>;
  private readonly inflight = new Map<number, Flight>();
  /** The reply memo's hit counters per server's counts: [success, denial] (see memoTerms). */
  private readonly memoCounters = new Map<ServerCounts, [() => void, () => void]>();
  /** Whose query caused the insert that is evicting (for the evictions counter's server label). */
  private inserting: ServerCounts | undefined;

  constructor(cfg: CacheConfig, opts: CacheOptions = {}) {
    this.cfg = cfg;
    this.clock = opts.now;
    this.stats = opts.stats ?? new CacheStats(cfg.zones);
    this.allZones = cfg.zones.includes('.');
    // A name is bypassed when a success-disabled zone and a denial-disabled zone both contain it;
    // the deeper of the two is where both apply.
    this.bypass = [];
    for (const s of cfg.disable.success) {
      for (const d of cfg.disable.denial) {
        if (isSubdomain(s, d)) this.bypass.push(s);
        else if (isSubdomain(d, s)) this.bypass.push(d);
      }
    }
    this.pcache = new LRUCache<number, Entry>({
      max: cfg.success.capacity,
      dispose: (_v, _k, reason) => { if (reason === 'evict' && this.inserting) this.inserting.evictionsSuccess++; },
    });
    this.ncache = new LRUCache<number, Entry>({
      max: cfg.denial.capacity,
      dispose: (_v, _k, reason) => { if (reason === 'evict' && this.inserting) this.inserting.evictionsDenial++; },
    });
    this.stats.sizes = () => [this.pcache.size, this.ncache.size];
  }

  /** Entries in the [success, denial] caches. */
  get size(): [number, number] { return [this.pcache.size, this.ncache.size]; }

  serveDNS(req: Request, next: Next): Reply {
    if (!this.allZones && !this.inZones(req.name)) return next(req);
    if (this.bypass.length > 0 && this.bypassed(req.name)) return next(req);
    const key = keyOf(req);
    if (key < 0) return next(req); // a question name we cannot key (never from a sane client)
    const counts = this.stats.for(req.server);
    counts.requests++;
    let e = this.pcache.get(key);
    if (e !== undefined && !matches(e, req)) e = undefined;
    if (e === undefined) {
      e = this.ncache.get(key);
      if (e !== undefined && !matches(e, req)) e = undefined;
    }
    if (e !== undefined) {
      const now = this.clock !== undefined ? this.clock() : req.received;
      if (now < e.expires) {
        if (e.kind === 'success') counts.hitsSuccess++; else counts.hitsDenial++;
        if (this.cfg.prefetch.amount > 0) this.maybePrefetch(req, key, e, now, next, counts);
        const delta = this.cfg.keepTtl ? 0 : age(e, now);
        this.memoTerms(req, e, now, delta, counts);
        return this.answer(req, e, delta);
      }
      req.noMemo();
      if (now - e.expires < this.cfg.serveStale.ms) {
        if (e.kind === 'success') counts.hitsSuccess++; else counts.hitsDenial++;
        return this.stale(req, key, e, next, counts);
      }
      this.forget(key, e);
    }
    // A miss is counted once per miss: its reply is not reused (the next query is a hit, and that one may be).
    req.noMemo();
    counts.misses++;
    const o = this.fetch(req, key, next, counts, false);
    return o instanceof Promise ? o.then((x) => this.deliver(req, x)) : this.deliver(req, o);
  }

  /**
   * Reply memo terms of a hit (src/server/memo.ts): reusable until the entry expires or prefetch would
   * look at it, its TTLs aged on each reuse as here; each reuse counts as a hit here.
   */
  private memoTerms(req: Request, e: Entry, now: number, delta: number, counts: ServerCounts): void {
    let until = e.expires;
    const p = this.cfg.prefetch;
    if (p.amount > 0) until = Math.min(until, e.storedAt + (e.ttl - Math.ceil((p.percentage / 100) * e.ttl)) * 1000);
    // Our clock may be a test's; the memo's is performance.now().
    const shift = this.clock === undefined ? 0 : performance.now() - now;
    req.memoValidUntil(until + shift);
    if (!this.cfg.keepTtl) req.memoAging(e.storedAt + shift, delta);
    const success = e.kind === 'success';
    if (p.amount === 0) {
      // One counter closure per server and kind, shared by every entry: a kept reply must not keep
      // the cache entry (its message) alive after the cache let it go.
      let fns = this.memoCounters.get(counts);
      if (fns === undefined) {
        fns = [
          () => { counts.requests++; counts.hitsSuccess++; },
          () => { counts.requests++; counts.hitsDenial++; },
        ];
        this.memoCounters.set(counts, fns);
      }
      req.memoOnHit(fns[success ? 0 : 1]);
      return;
    }
    // With prefetch a reuse also counts towards the entry's popularity, as a hit does.
    if (e.memoCounts !== counts || e.memoHit === undefined) {
      const clock = this.clock;
      e.memoCounts = counts;
      e.memoHit = (t: number) => {
        counts.requests++;
        if (success) counts.hitsSuccess++; else counts.hitsDenial++;
        const at = clock !== undefined ? clock() : t;
        if (at - e.lastHit > p.windowMs) e.hits = 1; else e.hits++;
        e.lastHit = at;
      };
    }
    req.memoOnHit(e.memoHit);
  }

  private bypassed(name: string): boolean {
    for (const z of this.bypass) if (isSubdomain(name, z)) return true;
    return false;
  }

  private inZones(name: string): boolean {
    for (const z of this.cfg.zones) if (isSubdomain(name, z)) return true;
    return false;
  }

  /** A reply from an entry, aged by `delta` seconds. A shallow object: records and bytes are shared. */
  private answer(req: Request, e: Entry, delta: number): Msg {
    let m = e.msg;
    // Like CoreDNS: a client that asked for neither DNSSEC (DO) nor AD does not get the AD bit.
    if (m.flags.ad && !req.do && (req.query.flags & FLAG_AD) === 0) m = e.noAd ??= withoutAd(m);
    return {
      id: req.id, opcode: m.opcode, rcode: m.rcode, flags: m.flags, question: m.question,
      answer: m.answer, authority: m.authority, additional: m.additional, edns: null,
      wire: m.wire, ttlDelta: delta,
    };
  }

  private deliver(req: Request, o: Outcome): Msg {
    return o.entry !== undefined ? this.answer(req, o.entry, 0) : o.msg;
  }

  /** An expired entry within the serve_stale window: TTL 0, refreshed after (immediate) or before (verify). */
  private stale(req: Request, key: number, e: Entry, next: Next, counts: ServerCounts): Reply {
    const staleDelta = this.cfg.keepTtl ? 0 : e.ttl;
    if (!this.cfg.serveStale.verify) {
      counts.servedStale++;
      this.refresh(req, key, next, counts, false, undefined, 0);
      return this.answer(req, e, staleDelta);
    }
    const fallback = () => {
      counts.servedStale++;
      return this.answer(req, e, staleDelta);
    };
    let o: Outcome | Promise<Outcome>;
    try {
      o = this.fetch(req, key, next, counts, true);
    } catch {
      return fallback();
    }
    const pick = (x: Outcome): Msg => (refreshes(x.msg, req) ? this.deliver(req, x) : fallback());
    return o instanceof Promise ? o.then(pick, fallback) : pick(o);
  }

  private maybePrefetch(req: Request, key: number, e: Entry, now: number, next: Next, counts: ServerCounts): void {
    const p = this.cfg.prefetch;
    if (now - e.lastHit > p.windowMs) e.hits = 1; else e.hits++;
    e.lastHit = now;
    const remaining = e.ttl - age(e, now);
    if (e.hits >= p.amount && remaining <= Math.ceil((p.percentage / 100) * e.ttl)) {
      this.refresh(req, key, next, counts, true, e, now);
    }
  }

  /**
   * Query upstream in the background (after this reply is written) and store what comes back. At most
   * one per key; a prefetched entry inherits the old one's popularity.
   */
  private refresh(req: Request, key: number, next: Next, counts: ServerCounts, prefetch: boolean,
    old: Entry | undefined, now: number): void {
    if (this.inflight.has(key)) return;
    if (prefetch) counts.prefetch++;
    // A copy over TCP, as CoreDNS does: the client is already answered, and the refresh must not come
    // back truncated because this client's UDP size was small.
    const bg = new Request(req.query, req.raw, 'tcp', req.remoteAddress, req.remotePort, req.server,
      req.localAddress, req.localPort);
    bg.zone = req.zone;
    const p = Promise.resolve().then(() => next(bg)).then((m) => this.store(bg, key, m, counts, true));
    this.track(key, p, bg);
    if (old !== undefined) {
      p.then((o) => { if (o.entry !== undefined) { o.entry.hits = old.hits; o.entry.lastHit = now; } }, noop);
    }
  }

  /**
   * Ask `next` and store the reply, sharing one call among concurrent queries for the same key. A
   * waiter whose shared reply came back truncated asks for itself (it may be on TCP).
   */
  private fetch(req: Request, key: number, next: Next, counts: ServerCounts, refreshOnly: boolean): Outcome | Promise<Outcome> {
    const pending = this.inflight.get(key);
    if (pending !== undefined && sameQuestion(pending.req, req)) {
      return pending.p.then((o) => {
        if (!o.msg.flags.tc) return o;
        const r = next(req);
        return r instanceof Promise ? r.then((msg) => ({ msg, entry: undefined })) : { msg: r, entry: undefined };
      });
    }
    const r = next(req);
    if (!(r instanceof Promise)) return this.store(req, key, r, counts, refreshOnly);
    const p = r.then((m) => this.store(req, key, m, counts, refreshOnly));
    if (pending === undefined) this.track(key, p, req); // else: a hash collision in flight; don't share
    return p;
  }

  private track(key: number, p: Promise<Outcome>, req: Request): void {
    const flight: Flight = { p, req };
    this.inflight.set(key, flight);
    const done = () => { if (this.inflight.get(key) === flight) this.inflight.delete(key); };
    p.then(done, done);
  }

  private forget(key: number, e: Entry): void {
    if (e.kind === 'success') this.pcache.delete(key); else this.ncache.delete(key);
  }

  /**
   * Cache `m` if it may be cached. `refreshOnly` (a refresh of an entry that exists or just expired):
   * keep only answers (NOERROR, NXDOMAIN), so a failing upstream does not replace good data.
   */
  private store(req: Request, key: number, m: Msg, counts: ServerCounts, refreshOnly: boolean): Outcome {
    const none: Outcome = { msg: m, entry: undefined };
    if (m.flags.tc) return none;
    const cls = classify(m, req.qtype);
    if (cls === undefined || (refreshOnly && cls === 'servfail')) return none;
    let ttlMs: number;
    if (cls === 'servfail') {
      ttlMs = this.cfg.servfailMs;
    } else {
      const lowest = minimalTtl(m, cls === 'denial');
      // A record with TTL 0 says "do not cache me"; CoreDNS would raise it to MINTTL instead.
      if (lowest === 0) return none;
      const lim = cls === 'success' ? this.cfg.success : this.cfg.denial;
      ttlMs = Math.min(Math.max(lowest, lim.minTtl), lim.maxTtl) * 1000;
    }
    if (!(ttlMs > 0)) return none;
    const kind: Kind = cls === 'success' ? 'success' : 'denial';
    const except = kind === 'success' ? this.cfg.disable.success : this.cfg.disable.denial;
    if (except.length > 0 && except.some((z) => isSubdomain(req.name, z))) return none;
    if (!questionMatches(m, req)) {
      counts.drops++;
      return none;
    }
    const ttl = Math.floor(ttlMs / 1000);
    let msg: Msg;
    try {
      msg = frozenCopy(m, req, ttl);
    } catch {
      return none; // a record the encoder rejects: answer it uncached, the server reports the encode error
    }
    const now = this.clock !== undefined ? this.clock() : performance.now();
    const entry: Entry = {
      msg, qtype: req.qtype, qclass: req.qclass, bits: flagBits(req), noAd: undefined, kind,
      storedAt: now, expires: now + ttlMs, ttl, hits: 0, lastHit: -Infinity,
    };
    this.inserting = counts;
    if (kind === 'success') {
      this.pcache.set(key, entry);
      this.ncache.delete(key);
    } else {
      this.ncache.set(key, entry);
      this.pcache.delete(key);
    }
    this.inserting = undefined;
    return { msg: m, entry };
  }
}

/** DO and CD: queries that differ in them are cached apart. */
function flagBits(req: Request): number {
  return (req.do ? 2 : 0) | ((req.query.flags & FLAG_CD) !== 0 ? 1 : 0);
}

/** FNV-1a over the lowercased QNAME bytes, QTYPE, QCLASS and the flag bits; 30 bits (a V8 small integer). */
export function keyOf(req: Request): number {
  const q = req.query;
  const end = q.qnameEnd;
  const raw = req.raw;
  if (end < 13 || raw.length < end) return -1;
  let h = 0x811c9dc5 | 0;
  for (let i = 12; i < end; i++) {
    let c = raw[i]!;
    if (c >= 65 && c <= 90) c += 32; // label length bytes are <= 63
    h = Math.imul(h ^ c, 0x01000193);
  }
  h = Math.imul(h ^ q.qtype, 0x01000193);
  h = Math.imul(h ^ q.qclass, 0x01000193);
  h = Math.imul(h ^ flagBits(req), 0x01000193);
  return (h ^ (h >>> 15)) & 0x3fffffff;
}

/** Is `e` the entry for this query? The key is a hash, so check type, class, bits and name bytes. */
function matches(e: Entry, req: Request): boolean {
  if (e.qtype !== req.qtype || e.qclass !== req.qclass || e.bits !== flagBits(req)) return false;
  const w = e.msg.wire!;
  const end = w.qnameEnd;
  if (req.query.qnameEnd !== end) return false;
  const raw = req.raw;
  const b = w.bytes;
  for (let i = 12; i < end; i++) {
    let c = raw[i]!;
    if (c >= 65 && c <= 90) c += 32;
    if (c !== b[i]) return false;
  }
  return true;
}

function sameQuestion(a: Request, b: Request): boolean {
  return a.qtype === b.qtype && a.qclass === b.qclass && flagBits(a) === flagBits(b) && a.name === b.name;
}

/** Whole seconds since `e` was stored (0 for a query that arrived before the entry was made). */
function age(e: Entry, now: number): number {
  return now > e.storedAt ? Math.floor((now - e.storedAt) / 1000) : 0;
}

/** CoreDNS's response classes that matter here (plugin/pkg/response Typify, plus NODATA with a CNAME). */
function classify(m: Msg, qtype: number): Kind | 'servfail' | undefined {
  if (qtype === Type.AXFR || qtype === Type.IXFR) return undefined;
  switch (m.rcode) {
    case Rcode.NOERROR:
      if (m.answer.length === 0) return hasSoa(m.authority) ? 'denial' : 'success';
      // A CNAME chain that does not reach the asked type, with an SOA: NODATA (RFC 2308 section 2.2).
      if (qtype !== Type.CNAME && qtype !== Type.ANY && hasSoa(m.authority) && !m.answer.some((r) => r.type === qtype)) {
        return 'denial';
      }
      return 'success';
    case Rcode.NXDOMAIN:
      // RFC 2308 section 5: a negative answer without an SOA has no TTL to cache it by.
      return hasSoa(m.authority) ? 'denial' : undefined;
    case Rcode.SERVFAIL:
    case Rcode.NOTIMP:
      return 'servfail';
    default:
      return undefined;
  }
}

function isSoa(r: RR): r is SoaRR {
  return r.type === Type.SOA && !(r.data instanceof Uint8Array);
}

function hasSoa(rrs: RR[]): boolean {
  for (const r of rrs) if (r.type === Type.SOA) return true;
  return false;
}

/**
 * The lowest TTL in the reply (OPT excluded). For a negative answer the SOA counts with
 * min(TTL, MINIMUM) (RFC 2308 section 5). No records at all: CoreDNS's 5 s.
 */
function minimalTtl(m: Msg, negative: boolean): number {
  let min = Infinity;
  for (const rrs of [m.answer, m.authority, m.additional]) {
    for (const r of rrs) {
      if (r.type === Type.OPT) continue;
      if (r.ttl < min) min = r.ttl;
      if (negative && isSoa(r) && r.data.minimum < min) min = r.data.minimum;
    }
  }
  return min === Infinity ? defaults.emptyTtl : min;
}

function questionMatches(m: Msg, req: Request): boolean {
  const q = m.question[0];
  return q !== undefined && q.type === req.qtype && q.class === req.qclass && q.name.toLowerCase() === req.name;
}

/** Would this reply replace a stale entry? (RFC 8767 section 4: an answer, not an error.) */
function refreshes(m: Msg, req: Request): boolean {
  return !m.flags.tc && (m.rcode === Rcode.NOERROR || m.rcode === Rcode.NXDOMAIN) && questionMatches(m, req);
}

function withTtl(rrs: RR[], ttl: number): readonly RR[] {
  const out: RR[] = [];
  for (const r of rrs) if (r.type !== Type.OPT) out.push(Object.freeze({ ...r, ttl }));
  return Object.freeze(out);
}

/**
 * The entry's reply: our own objects, frozen (shared by every hit), every TTL set to `ttl` as CoreDNS
 * does, no OPT (hop by hop), the question in lowercase, prebuilt. RD and CD come from each query.
 */
function frozenCopy(m: Msg, req: Request, ttl: number): Msg {
  const msg: Msg = {
    id: 0, opcode: m.opcode, rcode: m.rcode,
    flags: Object.freeze({ ...m.flags, qr: true, tc: false, rd: false, cd: false }),
    question: Object.freeze([Object.freeze({ name: req.name, type: req.qtype, class: req.qclass })]) as Msg['question'],
    answer: withTtl(m.answer, ttl) as RR[],
    authority: withTtl(m.authority, ttl) as RR[],
    additional: withTtl(m.additional, ttl) as RR[],
    edns: null,
  };
  msg.wire = prebuild(msg);
  return Object.freeze(msg);
}

function withoutAd(m: Msg): Msg {
  const msg: Msg = { ...m, flags: Object.freeze({ ...m.flags, ad: false }) };
  msg.wire = prebuild(msg);
  return Object.freeze(msg);
}
