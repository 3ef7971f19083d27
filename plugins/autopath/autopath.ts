// autopath: server-side search path completion (CoreDNS's plugin/autopath).
//
// A pod with `ndots:5` sends `example.com.<ns>.svc.cluster.local` first and walks its search list one
// NXDOMAIN at a time. When a query ends in the client's FIRST search domain, we walk the rest of the
// list here, through `next`, and answer with the first reply that is not NXDOMAIN, under a CNAME from
// the asked name to the name that answered. The client's search list must be known for certain: with
// `@kubernetes` it is derived from the namespace of the pod that owns the source address, and only
// when the query itself names that namespace as its first search domain. Anything doubtful goes to
// `next` untouched, so the worst case is exactly the behaviour without autopath.
import { Class, type Msg, type NameRR, Rcode, type RR, type SoaRR, Type } from '../../src/dns/types.ts';
import { isSubdomain } from '../../src/dns/name.ts';
import { parseQuery } from '../../src/dns/query.ts';
import type { Handler, Next, Reply } from '../../src/plugin.ts';
import { Request } from '../../src/request.ts';
import type { CounterChild, FastCounter } from '../../src/fastmetrics.ts';

/**
 * The clients' namespaces, by source address (the kubernetes plugin, with `pods verified`).
 * `namespaceOfIP` must answer only when it is certain: one namespace for the address, from a synced
 * pod watch; anything else is `undefined` (then autopath leaves the query alone).
 */
export interface PodNamespaces {
  /** Canonical zones the plugin serves ("cluster.local.", reverse zones...). */
  readonly zones: readonly string[];
  namespaceOfIP(ip: string): string | undefined;
}

/** Where the search path comes from. */
export type SearchSource =
  /** A resolv.conf's `search` list: the same path for every client. Canonical names. */
  | { kind: 'static'; search: readonly string[] }
  /**
   * Per client, from its pod's namespace: `<ns>.svc.<zone> svc.<zone> <zone>` then `hostSearch` (the
   * server's own resolv.conf search list, which the kubelet appends to every pod's list too).
   * `pods` may be a getter: the peer plugin is known only once the server block is set up.
   */
  | { kind: 'pods'; pods: PodNamespaces | (() => PodNamespaces | undefined); hostSearch: readonly string[] };

export interface AutoPathOptions {
  /** Canonical zones autopath acts in (default in setup: the server block's zones). */
  zones: readonly string[];
  source: SearchSource;
  /** coredns_autopath_success_total{server}. */
  success: FastCounter;
}

/**
 * Query types autopath leaves alone. CoreDNS autopaths every type; a synthesized CNAME makes no sense
 * as the answer to a CNAME or ANY question, nor in a zone transfer.
 */
const skipTypes = new Set<number>([Type.CNAME, Type.ANY, Type.AXFR, Type.IXFR]);

/** Distinct (zone, namespace) search paths kept; a cluster has far fewer namespaces. */
const maxPaths = 10_000;

/** A query to walk: the search path and where the base name ends in the query's bytes. */
interface Walk {
  req: Request;
  next: Next;
  /** The search path, first element first; '.' stands for the bare base name. */
  search: readonly string[];
  /** Offset in req.raw just past the base name's labels (where the first search domain starts). */
  baseEnd: number;
  /** The reply to the query as asked (step 0), returned when the walk finds nothing better. */
  first: Msg | undefined;
}

export class AutoPath implements Handler {
  readonly name = 'autopath';
  private readonly zones: readonly string[];
  private readonly anyZone: boolean;
  private readonly source: SearchSource;
  private readonly success: FastCounter;
  /** Its child per listen address (a handful), so counting is a property increment. */
  private readonly successBy = new Map<string, CounterChild>();
  /** static: '.' + the first search domain, the one cheap test every query pays. */
  private readonly staticSuffix: string;
  /** pods: the source once known, and '.svc.<zone>' for each of its forward zones. */
  private pods: PodNamespaces | undefined;
  private podSuffixes: Array<{ suffix: string; zone: string }> = [];
  /** Search paths by "<zone> <ns>", built once (bounded: cleared past `maxPaths`). */
  private readonly paths = new Map<string, readonly string[]>();

  constructor(opts: AutoPathOptions) {
    this.zones = opts.zones;
    this.anyZone = opts.zones.includes('.');
    this.source = opts.source;
    this.success = opts.success;
    const first = opts.source.kind === 'static' ? opts.source.search[0] : undefined;
    this.staticSuffix = first === undefined || first === '.' ? '' : '.' + first;
  }

  serveDNS(req: Request, next: Next): Reply {
    const w = this.plan(req, next);
    return w ? this.walk(w, 0) : next(req);
  }

  /** Should this query be walked? The common "no" costs one endsWith. */
  private plan(req: Request, next: Next): Walk | undefined {
    const name = req.name;
    let search: readonly string[];
    if (this.source.kind === 'static') {
      if (this.staticSuffix === '' || !name.endsWith(this.staticSuffix)) return undefined;
      if (!this.typeOk(req) || !this.inZones(name)) return undefined;
      search = this.source.search;
    } else {
      const pods = this.podSource(this.source);
      if (!pods) return undefined;
      let zone: string | undefined;
      let rest = '';
      for (const s of this.podSuffixes) {
        if (name.endsWith(s.suffix)) { zone = s.zone; rest = name.slice(0, name.length - s.suffix.length); break; }
      }
      if (zone === undefined) return undefined;
      // rest = "<base>.<ns>": the namespace the query claims as the client's first search domain.
      const dot = rest.lastIndexOf('.');
      if (dot <= 0) return undefined;
      const ns = rest.slice(dot + 1);
      if (!this.typeOk(req) || !this.inZones(name)) return undefined;
      // Certainty: the address must belong to a pod of exactly that namespace. A stale or reused
      // address names another namespace than the one the client put first, and is left alone.
      const ip = clientIP(req.remoteAddress);
      if (pods.namespaceOfIP(ip) !== ns) return undefined;
      const key = `${zone} ${ns}`;
      let p = this.paths.get(key);
      if (!p) {
        if (this.paths.size >= maxPaths) this.paths.clear();
        this.paths.set(key, p = podSearch(ns, zone, this.source.hostSearch));
      }
      search = p;
    }
    // Without escapes the text is the wire layout: the first domain's labels are its last bytes.
    const baseEnd = req.query.qnameEnd > 0 && !req.qname.includes('\\')
      ? req.query.qnameEnd - search[0]!.length - 1
      : baseEndOf(req, toWire(search[0]!));
    if (baseEnd < 0) return undefined;
    return { req, next, search, baseEnd, first: undefined };
  }

  private typeOk(req: Request): boolean {
    return req.qclass === Class.IN && !skipTypes.has(req.qtype);
  }

  private inZones(name: string): boolean {
    if (this.anyZone) return true;
    for (const z of this.zones) if (isSubdomain(name, z)) return true;
    return false;
  }

  private podSource(src: Extract<SearchSource, { kind: 'pods' }>): PodNamespaces | undefined {
    if (this.pods) return this.pods;
    const p = typeof src.pods === 'function' ? src.pods() : src.pods;
    if (!p) return undefined;
    this.pods = p;
    // Reverse zones never end a pod's search domain; leaving them out keeps the common test to one.
    this.podSuffixes = p.zones
      .filter((z) => !isReverse(z))
      .map((z) => ({ zone: z, suffix: z === '.' ? '.svc.' : '.svc.' + z }));
    return p;
  }

  /** Ask `next` for search element i, i+1, ... until one is not NXDOMAIN. Synchronous while next is. */
  private walk(w: Walk, from: number): Reply {
    for (let i = from; i < w.search.length; i++) {
      const sub = i === 0 ? w.req : derive(w, w.search[i]!);
      if (!sub) continue;
      let r: Reply;
      try {
        r = w.next(sub);
      } catch (e) {
        if (i === 0) throw e;
        return this.fallback(w);
      }
      if (r instanceof Promise) {
        return r.then(
          (m) => this.judge(w, i, sub, m) ?? this.walk(w, i + 1),
          (e: unknown) => { if (i === 0) throw e; return this.fallback(w); },
        );
      }
      const done = this.judge(w, i, sub, r);
      if (done) return done;
    }
    return this.fallback(w);
  }

  /** The reply to send, or undefined to try the next search element. */
  private judge(w: Walk, i: number, sub: Request, m: Msg): Msg | undefined {
    if (i === 0) w.first = m;
    if (m.rcode === Rcode.NXDOMAIN) return undefined;
    // SERVFAIL, REFUSED...: give the client the answer to its own question and let it walk itself.
    if (m.rcode !== Rcode.NOERROR) return this.fallback(w);
    const server = w.req.server;
    let c = this.successBy.get(server);
    if (!c) this.successBy.set(server, c = this.success.labels(server));
    c.inc();
    if (i === 0) return m;
    w.req.plugin = sub.plugin;
    return cnamed(w.req, sub, m);
  }

  /** Nothing better than the answer to the query as asked. */
  private fallback(w: Walk): Msg {
    if (!w.first) throw new Error('autopath: no reply for the original query');
    return w.first;
  }
}

/** '10.0.0.1' for '::ffff:10.0.0.1' (a dual-stack socket's view of an IPv4 client). */
export function clientIP(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/** `<ns>.svc.<zone> svc.<zone> <zone> host... .` without repeats ('.' is the bare name, always last). */
export function podSearch(ns: string, zone: string, hostSearch: readonly string[]): string[] {
  const z = zone === '.' ? '' : zone;
  const out = [`${ns}.svc.${z}`, `svc.${z}`];
  if (z !== '') out.push(z);
  for (const h of hostSearch) if (h !== '.' && !out.includes(h)) out.push(h);
  out.push('.');
  return out;
}

function isReverse(zone: string): boolean {
  return zone === 'in-addr.arpa.' || zone.endsWith('.in-addr.arpa.') || zone === 'ip6.arpa.' || zone.endsWith('.ip6.arpa.');
}

/** Wire form of a canonical name without escapes ('.' → the root label). */
export function toWire(name: string): Uint8Array {
  if (name === '.') return Uint8Array.of(0);
  // "a.b." → 1 a 1 b 0: each dot becomes the length byte of the label before it, shifted one place.
  const out = new Uint8Array(name.length + 1);
  let at = 0;
  let len = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 46) { out[at] = len; at += len + 1; len = 0; } else { out[at + 1 + len++] = c; }
  }
  return out; // the last byte stays 0: the root label
}

/**
 * Where the base name ends in the question's bytes: the question must end, on a label boundary and
 * ignoring ASCII case, with `suffix` (wire form), after at least one label of its own. -1 otherwise
 * (also for a question name written with a compression pointer).
 */
export function baseEndOf(req: Request, suffix: Uint8Array): number {
  const raw = req.raw;
  const end = req.query.qnameEnd;
  if (end < 0) return -1;
  const start = end - suffix.length;
  if (start <= 12) return -1;
  let p = 12;
  while (p < start) p += raw[p]! + 1;
  if (p !== start) return -1;
  for (let i = 0; i < suffix.length; i++) {
    let c = raw[start + i]!;
    if (c >= 65 && c <= 90) c += 32; // length bytes are <= 63, never touched
    if (c !== suffix[i]) return -1;
  }
  return start;
}

/** The query for base + `suffix`: the client's bytes (ID, flags, EDNS, letter case) with a new tail. */
function derive(w: Walk, suffix: string): Request | undefined {
  const { req, baseEnd } = w;
  const raw = req.raw;
  const tail = toWire(suffix);
  const after = req.query.qnameEnd;
  const bytes = new Uint8Array(baseEnd + tail.length + raw.length - after);
  bytes.set(raw.subarray(0, baseEnd), 0);
  bytes.set(tail, baseEnd);
  bytes.set(raw.subarray(after), baseEnd + tail.length);
  const q = parseQuery(bytes);
  if ('kind' in q) return undefined; // e.g. the longer name passes 255 octets: not a name to ask for
  const sub = new Request(q, bytes, req.proto, req.remoteAddress, req.remotePort, req.server,
    req.localAddress, req.localPort, req.size);
  sub.zone = req.zone;
  return sub;
}

/**
 * The winner's reply under the asked name: a CNAME from the client's qname to the name that answered,
 * then that reply's records (CoreDNS's cnamer, without mutating the shared reply). For a NODATA
 * winner the CNAME carries the negative TTL, so a cache keeps it no longer than the SOA says.
 */
function cnamed(req: Request, sub: Request, m: Msg): Msg {
  const cname: NameRR = { name: req.qname, type: Type.CNAME, class: Class.IN, ttl: cnameTtl(m), data: sub.qname };
  const out: Msg = {
    id: req.id, opcode: m.opcode, rcode: m.rcode, flags: { ...m.flags },
    question: [req.question],
    answer: [cname, ...m.answer], authority: m.authority, additional: m.additional, edns: m.edns,
  };
  if (m.ttlDelta) out.ttlDelta = m.ttlDelta;
  return out;
}

function cnameTtl(m: Msg): number {
  const a = m.answer[0];
  if (a) return a.ttl;
  const soa = m.authority.find((r: RR) => r.type === Type.SOA) as SoaRR | undefined;
  if (soa && !(soa.data instanceof Uint8Array)) return Math.min(soa.ttl, soa.data.minimum);
  return 0;
}

/** Search domains from resolv.conf text: the last `search` or `domain` line wins (glibc, miekg/dns). */
export function searchFromResolvConf(text: string): string[] {
  let search: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'search') search = f.slice(1);
    else if (f[0] === 'domain' && f[1] !== undefined) search = [f[1]];
  }
  const out: string[] = [];
  for (const s of search) {
    const c = s.toLowerCase().replace(/\.?$/, '.');
    if (c !== '.' && validName(c) && !out.includes(c)) out.push(c);
  }
  return out;
}

/** A canonical name we can write without escapes: labels of 1-63 octets, 255 octets in all. */
function validName(name: string): boolean {
  if (name.length > 254 || name.includes('\\')) return false;
  return name.slice(0, -1).split('.').every((l) => l.length > 0 && l.length <= 63);
}
