// hosts(5) text → lookup tables. One line: `IP_address canonical_hostname [aliases...]`, `#` starts a
// comment. Lines whose first field is not an IP address are skipped, as are names outside the zones.
import { canonical, isSubdomain, matchZone, normalizeIP, expandIPv6, reverseName } from '../../src/dns/name.ts';
import { type AddrRR, type NameRR, Class, Type } from '../../src/dns/types.ts';

/** What one source (the file, or the inline lines) says: names → addresses and addresses → names. */
export interface HostsEntries {
  /** Lowercase FQDN → IPv4 addresses, file order, no duplicates. */
  v4: Map<string, string[]>;
  v6: Map<string, string[]>;
  /** Normalized address → names (empty when reverse records are off). */
  byAddr: Map<string, string[]>;
}

export function emptyEntries(): HostsEntries {
  return { v4: new Map(), v6: new Map(), byAddr: new Map() };
}

/** CoreDNS's count for coredns_hosts_entries: forward addresses plus reverse names. */
export function entryCount(e: HostsEntries): number {
  let n = 0;
  for (const v of e.v4.values()) n += v.length;
  for (const v of e.v6.values()) n += v.length;
  for (const v of e.byAddr.values()) n += v.length;
  return n;
}

/**
 * An address field → [family, normalized text], or undefined. An IPv6 zone (`fe80::1%eth0`) is
 * dropped; an IPv4-mapped IPv6 address (`::ffff:10.0.0.2`) counts as IPv4, as in CoreDNS.
 */
export function parseAddress(field: string): [4 | 6, string] | undefined {
  const pct = field.indexOf('%');
  const ip = pct >= 0 ? field.slice(0, pct) : field;
  if (!ip.includes(':')) {
    const v4 = normalizeIP(ip);
    return v4 ? [4, v4] : undefined;
  }
  const w = expandIPv6(ip);
  if (!w) return undefined;
  if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff) {
    return [4, `${w[6]! >> 8}.${w[6]! & 0xff}.${w[7]! >> 8}.${w[7]! & 0xff}`];
  }
  const v6 = normalizeIP(ip);
  return v6 ? [6, v6] : undefined;
}

/** A host name as a lowercase FQDN, or undefined when it cannot be a DNS name. */
function hostName(field: string): string | undefined {
  const name = canonical(field);
  if (name === '.' || name.length > 254) return undefined;
  const labels = name.slice(0, -1).split('.');
  for (const l of labels) if (l.length === 0 || l.length > 63) return undefined;
  return name;
}

function add(map: Map<string, string[]>, key: string, value: string): boolean {
  const list = map.get(key);
  if (!list) { map.set(key, [value]); return true; }
  if (list.includes(value)) return false;
  list.push(value);
  return true;
}

/** Parse hosts text, keeping only names inside `zones` (canonical). */
export function parseHosts(text: string, zones: readonly string[], reverse: boolean): HostsEntries {
  const e = emptyEntries();
  for (let line of text.split('\n')) {
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    const f = line.split(/[ \t\r\f\v]+/).filter((x) => x !== '');
    if (f.length < 2) continue;
    const addr = parseAddress(f[0]!);
    if (!addr) continue;
    const [family, ip] = addr;
    for (let i = 1; i < f.length; i++) {
      const name = hostName(f[i]!);
      if (!name || matchZone(name, zones) === undefined) continue;
      add(family === 4 ? e.v4 : e.v6, name, ip);
      if (reverse) add(e.byAddr, ip, name);
    }
  }
  return e;
}

/**
 * The merged, query-ready view of the file and the inline lines (file first, as CoreDNS): records
 * built once per load, so a query is a map lookup and an array copy.
 */
export class HostsTable {
  readonly a = new Map<string, AddrRR[]>();
  readonly aaaa = new Map<string, AddrRR[]>();
  /** Reverse name ("1.0.0.10.in-addr.arpa.") → PTR records. */
  readonly ptr = new Map<string, NameRR[]>();
  /** Names that have no records but names below them (empty non-terminals), up to the zone apex. */
  readonly empty = new Set<string>();
  readonly entries: number;
  /** Replaced by a newer table (the file changed): replies built from this one are out of date. */
  retired = false;

  /** For the reply memo (src/server/memo.ts): a reply that read this table is current while it is. */
  valid(): boolean { return !this.retired; }

  constructor(sources: readonly HostsEntries[], ttl: number, zones: readonly string[]) {
    let entries = 0;
    for (const s of sources) {
      entries += entryCount(s);
      this.fill(this.a, s.v4, Type.A, ttl);
      this.fill(this.aaaa, s.v6, Type.AAAA, ttl);
      for (const [ip, names] of s.byAddr) {
        const rev = reverseName(ip);
        if (!rev) continue;
        let list = this.ptr.get(rev);
        if (!list) { list = []; this.ptr.set(rev, list); }
        for (const n of names) {
          if (!list.some((r) => r.data === n)) list.push({ name: rev, type: Type.PTR, class: Class.IN, ttl, data: n });
        }
      }
    }
    this.entries = entries;
    for (const name of [...this.a.keys(), ...this.aaaa.keys()]) {
      const zone = matchZone(name, zones);
      if (zone === undefined) continue;
      let n = name;
      while (n !== zone) {
        n = n.slice(n.indexOf('.') + 1) || '.';
        if (!isSubdomain(n, zone)) break;
        if (!this.a.has(n) && !this.aaaa.has(n)) this.empty.add(n);
      }
    }
  }

  private fill(into: Map<string, AddrRR[]>, from: Map<string, string[]>, type: 1 | 28, ttl: number): void {
    for (const [name, ips] of from) {
      let list = into.get(name);
      if (!list) { list = []; into.set(name, list); }
      for (const ip of ips) {
        if (!list.some((r) => r.data === ip)) list.push({ name, type, class: Class.IN, ttl, data: ip });
      }
    }
  }

  /** Does the name own an A or AAAA record? */
  has(name: string): boolean {
    return this.a.has(name) || this.aaaa.has(name);
  }
}
