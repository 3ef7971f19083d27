// The kubernetes Handler: route names of our zones to the resolver, keep built replies ready.
//
// Hot path: a reply is built once per (lowercase name, qtype) and cached together with the zone
// cells it read; it stays valid until an event moves one of them (a change to that Service, its
// namespace, an address it maps...). Cached replies are shared between queries and never mutated:
// they are frozen outside production, and carry `wire` (prebuilt bytes) when a prebuild function is
// given, so the server copies bytes and patches ID and letter case instead of encoding.
import { isSubdomain, matchZone } from '../../src/dns/name.ts';
import { type Msg, type PrebuiltWire, type RR, Class, Rcode, Type } from '../../src/dns/types.ts';
import type { Handler, Next, Reply } from '../../src/plugin.ts';
import type { MemoValidity } from '../../src/server/memo.ts';
import type { Request } from '../../src/request.ts';
import type { KubernetesConfig } from './config.ts';
import { resolve, type ResolveConfig } from './resolve.ts';
import type { Cell, KubeZone } from './zone.ts';

export interface KubernetesHandlerOptions {
  /** Has the source delivered its first full list? Until then NXDOMAIN becomes SERVFAIL. Default: yes. */
  synced?: () => boolean;
  /** Addresses this server answers on (NS and ns.dns.<zone> fall back to them). */
  localIPs?: readonly string[];
  /** Encode a reply once for reuse (src/dns/wire.ts prebuild). Without it replies go out as objects. */
  prebuild?: (m: Msg) => PrebuiltWire;
  /** Most replies kept; past it the cache starts over (a flood of random names cannot grow it). */
  cacheSize?: number;
  /** Freeze shared replies (default: outside production), so a plugin mutating one fails loudly. */
  freeze?: boolean;
}

/**
 * A reply and what says whether it is still current. `validity` is small and holds no reply: the
 * reply memo (src/server/memo.ts) keeps it, and must not keep the message alive with it.
 */
export interface ZoneAnswer {
  readonly msg: Msg;
  readonly validity: MemoValidity;
  valid(): boolean;
}

/** The zone cells a reply read and their generations then: current while none moved. */
class CellStamp implements MemoValidity {
  readonly cells: Cell[];
  readonly gens: number[];
  constructor(cells: Cell[]) {
    this.cells = cells;
    this.gens = cells.map((c) => c.gen);
  }
  valid(): boolean {
    const { cells, gens } = this;
    for (let i = 0; i < cells.length; i++) if (cells[i]!.gen !== gens[i]) return false;
    return true;
  }
}

/** A cached reply with the zone cells it read. */
class Entry implements ZoneAnswer {
  readonly msg: Msg;
  readonly validity: CellStamp;
  constructor(msg: Msg, cells: Cell[]) {
    this.msg = msg;
    this.validity = new CellStamp(cells);
  }
  get cells(): readonly Cell[] { return this.validity.cells; }
  valid(): boolean { return this.validity.valid(); }
}

/**
 * What the local and the worker (remote) handler share: which names are ours, zone transfers,
 * fallthrough, SERVFAIL before the first sync, the client's letter case. Subclasses say where a
 * reply for a lowercase name and type comes from.
 */
export abstract class ZoneHandler implements Handler {
  readonly name = 'kubernetes';
  readonly memo = true;
  /** Canonical zones this plugin answers (autopath reads them). */
  readonly zones: string[];
  protected readonly cfg: KubernetesConfig;
  private readonly synced: () => boolean;

  constructor(cfg: KubernetesConfig, synced: (() => boolean) | undefined) {
    this.cfg = cfg;
    this.zones = [...cfg.zones];
    this.synced = synced ?? (() => true);
  }

  /** The reply for a lowercase name and type, with its validity. Shared: do not mutate. */
  abstract answer(name: string, qtype: number): ZoneAnswer | Promise<ZoneAnswer>;

  /** The reply for a lowercase name and type. Shared: do not mutate. */
  reply(name: string, qtype: number): Msg | Promise<Msg> {
    const a = this.answer(name, qtype);
    return a instanceof Promise ? a.then((x) => x.msg) : a.msg;
  }
  /** The namespace of the pod with this address (pods verified), for autopath; undefined when unsure. */
  abstract namespaceOfIP(ip: string): string | undefined;

  serveDNS(req: Request, next: Next): Reply {
    const name = req.name;
    if (req.qclass !== Class.IN || matchZone(name, this.zones) === undefined) return next(req);
    const qtype = req.qtype;
    // Zone transfers belong to the transfer plugin (which runs before us when configured).
    if (qtype === Type.AXFR || qtype === Type.IXFR) return req.reply(Rcode.REFUSED);
    const r = this.answer(name, qtype);
    if (r instanceof Promise) return r.then((a) => this.finish(req, next, name, a));
    return this.finish(req, next, name, r);
  }

  private finish(req: Request, next: Next, name: string, a: ZoneAnswer): Reply {
    const msg = a.msg;
    if (msg.rcode === Rcode.NXDOMAIN && msg.answer.length === 0) {
      // Passing it on was decided by the zone: whatever answers next is current only while it is.
      if (this.fallsThrough(name)) { req.memoDependsOn(a.validity); return next(req); }
      if (!this.synced()) { req.noMemo(); return this.notSynced(req, msg); }
    }
    req.memoDependsOn(a.validity);
    if (msg.wire || req.qname === name) return msg;
    return withOwnerCase(msg, name, req.qname);
  }

  private fallsThrough(name: string): boolean {
    const f = this.cfg.fallthrough;
    return f !== null && f.some((z) => isSubdomain(name, z));
  }

  /** Before the first sync an NXDOMAIN may be wrong: SERVFAIL so clients retry (CoreDNS does the same). */
  private notSynced(req: Request, negative: Msg): Msg {
    const m = req.reply(Rcode.SERVFAIL);
    m.flags.aa = true;
    m.authority = negative.authority;
    return m;
  }
}

/** The handler over a zone held in this thread: single-threaded mode, and main with workers. */
export class KubernetesHandler extends ZoneHandler {
  readonly zone: KubeZone;
  private readonly rcfg: ResolveConfig;
  private readonly prebuild: ((m: Msg) => PrebuiltWire) | undefined;
  private readonly cacheSize: number;
  private readonly freeze: boolean;
  /** qtype → lowercase name → entry (nested, so a lookup builds no key string). */
  private readonly cache = new Map<number, Map<string, Entry>>();
  private cachedCount = 0;

  constructor(cfg: KubernetesConfig, zone: KubeZone, opts: KubernetesHandlerOptions = {}) {
    super(cfg, opts.synced);
    this.zone = zone;
    this.rcfg = {
      zones: cfg.zones, primaryZone: cfg.primaryZone, ttl: cfg.ttl, pods: cfg.pods, noEndpoints: cfg.noEndpoints,
      ignoreEmptyService: cfg.ignoreEmptyService, localIPs: opts.localIPs ?? [],
    };
    this.prebuild = opts.prebuild;
    this.cacheSize = opts.cacheSize ?? 10_000;
    this.freeze = opts.freeze ?? process.env.NODE_ENV !== 'production';
  }

  /** The reply for a lowercase name and type, from the cache when still valid. Shared: do not mutate. */
  override reply(name: string, qtype: number): Msg {
    return this.entry(name, qtype).msg;
  }

  answer(name: string, qtype: number): ZoneAnswer { return this.entry(name, qtype); }

  /** The cached reply with the zone cells it was built from (still current when returned). */
  entry(name: string, qtype: number): { readonly msg: Msg; readonly cells: readonly Cell[] } & ZoneAnswer {
    let byName = this.cache.get(qtype);
    const hit = byName?.get(name);
    if (hit && hit.valid()) return hit;
    const deps: Cell[] = [];
    const msg = resolve(this.zone, this.rcfg, name, qtype, deps);
    if (this.prebuild) {
      try { msg.wire = this.prebuild(msg); } catch { /* too large to prebuild: encoded per query */ }
    }
    if (this.freeze) freezeMsg(msg);
    const cells = [...new Set(deps)];
    if (this.cachedCount >= this.cacheSize) { this.cache.clear(); this.cachedCount = 0; byName = undefined; }
    if (!byName) { byName = new Map(); this.cache.set(qtype, byName); }
    if (!byName.has(name)) this.cachedCount++;
    const e = new Entry(msg, cells);
    byName.set(name, e);
    return e;
  }

  namespaceOfIP(ip: string): string | undefined {
    return this.zone.namespaceOfIP(ip);
  }

  /** Replies currently cached (tests, debugging). */
  get cached(): number { return this.cachedCount; }
}

/** A copy whose records owned by the question carry the client's letter case (no prebuilt wire). */
export function withOwnerCase(msg: Msg, lower: string, asked: string): Msg {
  const fix = (rrs: RR[]) => rrs.map((r) => (r.name === lower ? { ...r, name: asked } : r));
  return { ...msg, question: [{ ...msg.question[0]!, name: asked }], answer: fix(msg.answer) };
}

export function freezeMsg(m: Msg): void {
  for (const list of [m.answer, m.authority, m.additional]) {
    for (const r of list) {
      if (typeof r.data === 'object' && !(r.data instanceof Uint8Array)) Object.freeze(r.data);
      Object.freeze(r);
    }
    Object.freeze(list);
  }
  for (const q of m.question) Object.freeze(q);
  Object.freeze(m.question);
  Object.freeze(m.flags);
  if (m.wire) Object.freeze(m.wire);
  Object.freeze(m);
}
