// Query → reply for the cluster zone, per the Kubernetes DNS specification (schema 1.1.0) and CoreDNS's
// kubernetes plugin. Pure given a zone: no I/O, no clock; the cells an answer read are pushed to `deps`
// so the handler can cache the reply until one of them moves.
//
// Names (below each forward zone Z):
//   Z                                   SOA, NS
//   dns-version.Z                       TXT "1.1.0"
//   ns.dns.Z                            A/AAAA of this DNS server
//   svc.Z  pod.Z  dns.Z                 empty non-terminals
//   <ns>.svc.Z                          exists while the namespace does
//   <svc>.<ns>.svc.Z                    A/AAAA/SRV (ClusterIP, headless) or CNAME (ExternalName)
//   <ep>.<svc>.<ns>.svc.Z               A/AAAA/SRV of one endpoint name
//   _<proto>.<svc>.<ns>.svc.Z           empty non-terminal when an SRV name lies below it
//   _<port>._<proto>.<svc>.<ns>.svc.Z   SRV per named port
//   <a-b-c-d>.<ns>.pod.Z                pods insecure|verified
// and, under in-addr.arpa./ip6.arpa. zones, PTR for cluster IPs and endpoint addresses.
import { addressFromReverse, isSubdomain, matchZone, normalizeIP } from '../../src/dns/name.ts';
import { type Msg, type RR, type SrvRR, Class, Rcode, Type, emptyFlags } from '../../src/dns/types.ts';
import type { PodMode } from './config.ts';
import type { Cell, KubeZone, ServiceView } from './zone.ts';

export const DNS_SCHEMA_VERSION = '1.1.0';
/** CoreDNS answers dns-version with this TTL whatever `ttl` says (the spec's example does too). */
export const DNS_VERSION_TTL = 28800;
/** Longest CNAME chain followed inside our zones (CoreDNS stops at 8 too). */
const MAX_CHAIN = 8;

export interface ResolveConfig {
  /** Canonical zones, forward and reverse. */
  zones: readonly string[];
  /** First non-reverse zone: PTR targets are named in it. */
  primaryZone: string;
  ttl: number;
  pods: PodMode;
  noEndpoints: boolean;
  ignoreEmptyService: boolean;
  /** Addresses this server answers on (for NS / ns.dns.<zone> when its own Service is not found). */
  localIPs: readonly string[];
}

/** One step of a lookup: the records found for a name and type, and whether the name exists. */
interface Found {
  rcode: number;
  answer: RR[];
  additional: RR[];
  /** Zone whose SOA goes in the authority section of a negative answer. */
  soaZone: string;
  /** The CNAME chain left our zones: the client's resolver continues it, no SOA of ours applies. */
  open?: boolean;
}

interface Ctx {
  zone: KubeZone;
  cfg: ResolveConfig;
  deps: Cell[];
}

/**
 * The reply for `name` (canonical, lowercase) and `qtype`: a complete Msg with ID 0 and the lowercase
 * question, authoritative. Negative answers carry the zone's SOA in the authority section.
 */
export function resolve(zone: KubeZone, cfg: ResolveConfig, name: string, qtype: number, deps: Cell[] = []): Msg {
  const flags = emptyFlags();
  flags.qr = true;
  const msg: Msg = {
    id: 0, opcode: 0, rcode: Rcode.NOERROR, flags, question: [{ name, type: qtype, class: Class.IN }],
    answer: [], authority: [], additional: [], edns: null,
  };
  const authZone = matchZone(name, cfg.zones);
  if (authZone === undefined) { msg.rcode = Rcode.REFUSED; return msg; }
  flags.aa = true;
  const ctx: Ctx = { zone, cfg, deps };
  const f = lookup(ctx, name, qtype, authZone, [name]);
  msg.rcode = f.rcode;
  msg.answer = f.answer;
  msg.additional = f.additional;
  if (f.rcode === Rcode.NXDOMAIN || (f.rcode === Rcode.NOERROR && !f.open && !answers(f.answer, qtype))) {
    msg.authority = [soa(ctx, f.soaZone)];
  }
  return msg;
}

/** Does the answer hold data for the question (not just a CNAME chain that ends nowhere)? */
function answers(rrs: RR[], qtype: number): boolean {
  if (rrs.length === 0) return false;
  if (qtype === Type.CNAME) return true;
  return rrs.some((r) => r.type === qtype || (qtype === Type.ANY && r.type !== Type.CNAME));
}

export function isReverseName(name: string): boolean {
  return isSubdomain(name, 'in-addr.arpa.') || isSubdomain(name, 'ip6.arpa.');
}

function lookup(ctx: Ctx, name: string, qtype: number, zone: string, chain: string[]): Found {
  if (name === zone) return apex(ctx, zone, qtype);
  if (isReverseName(name)) return reverse(ctx, name, qtype, zone);
  const base = (zone === '.' ? name.slice(0, -1) : name.slice(0, name.length - zone.length - 1)).split('.');
  const n = base.length;
  const last = base[n - 1]!;
  if (n === 1) {
    if (last === 'dns-version') {
      if (qtype !== Type.TXT) return nodata(zone);
      return found(zone, [{ name, class: Class.IN, ttl: DNS_VERSION_TTL, type: Type.TXT, data: [DNS_SCHEMA_VERSION] }]);
    }
    if (last === 'svc' || last === 'pod' || last === 'dns') return nodata(zone);
    return nxdomain(ctx, zone);
  }
  if (n === 2 && base[0] === 'ns' && last === 'dns') return nsDns(ctx, name, qtype, zone);
  if (last === 'svc') return services(ctx, base, name, qtype, zone, chain);
  if (last === 'pod') return pods(ctx, base, name, qtype, zone);
  return nxdomain(ctx, zone);
}

// ------------------------------------------------------------------------------------- apex, NS

function apex(ctx: Ctx, zone: string, qtype: number): Found {
  if (qtype === Type.SOA) return found(zone, [soa(ctx, zone)]);
  if (qtype === Type.NS) {
    const target = nsName(ctx, zone);
    const f = found(zone, [{ name: zone, class: Class.IN, ttl: ctx.cfg.ttl, type: Type.NS, data: target }]);
    f.additional = addressRecords(target, ctx.zone.serverAddresses(ctx.cfg.localIPs, ctx.deps), ctx.cfg.ttl);
    return f;
  }
  return nodata(zone);
}

/** The NS target: ns.dns.<zone>, named in the primary zone for reverse zones so that it resolves. */
function nsName(ctx: Ctx, zone: string): string {
  return under('ns.dns', isReverseName(zone) ? ctx.cfg.primaryZone : zone);
}

function nsDns(ctx: Ctx, name: string, qtype: number, zone: string): Found {
  const addrs = ctx.zone.serverAddresses(ctx.cfg.localIPs, ctx.deps);
  return addressAnswer(name, qtype, addrs.filter((a) => !a.includes(':')), addrs.filter((a) => a.includes(':')), ctx.cfg.ttl, zone);
}

/** SOA for a zone: TTL min(ttl, 300) and minimum = ttl, as CoreDNS writes it. */
function soa(ctx: Ctx, zone: string): RR {
  const ttl = ctx.cfg.ttl;
  ctx.deps.push(ctx.zone.global);
  return {
    name: zone, class: Class.IN, ttl: Math.min(ttl, 300), type: Type.SOA,
    data: {
      mname: nsName(ctx, zone), rname: under('hostmaster', zone), serial: ctx.zone.serial,
      refresh: 7200, retry: 1800, expire: 86400, minimum: ttl,
    },
  };
}

// ------------------------------------------------------------------------------------- services

function services(ctx: Ctx, base: string[], name: string, qtype: number, zone: string, chain: string[]): Found {
  const n = base.length;
  const ns = base[n - 2]!;
  if (!ctx.zone.namespaceExposed(ns, ctx.deps)) return nxdomain(ctx, zone);
  if (n === 2) return nodata(zone);
  if (n > 5) return nxdomain(ctx, zone);
  const view = ctx.zone.service(ns, base[n - 3]!, ctx.deps);
  if (!view) return nxdomain(ctx, zone);
  if (ctx.cfg.ignoreEmptyService && view.kind === 'cluster_ip' && !view.hasEndpoints) return nxdomain(ctx, zone);
  const svcName = under(`${view.name}.${view.namespace}.svc`, zone);

  if (n === 3) {
    if (view.kind === 'external') return externalName(ctx, view, name, qtype, zone, chain);
    if (view.kind === 'cluster_ip') {
      if (qtype === Type.SRV) {
        const targets = view.ports.map((p) => ({ port: p.port, target: svcName }));
        return srvAnswer(name, targets, addressRecords(svcName, [...view.clusterV4, ...view.clusterV6], ctx.cfg.ttl), ctx.cfg.ttl, zone);
      }
      return addressAnswer(name, qtype, view.clusterV4, view.clusterV6, ctx.cfg.ttl, zone);
    }
    // Headless: the ready endpoints; none at all is NXDOMAIN (spec 2.4.1).
    if (ctx.cfg.noEndpoints || !view.hasEndpoints) return nxdomain(ctx, zone);
    if (qtype === Type.SRV) return headlessSrv(ctx, view, name, svcName, zone, () => true);
    return addressAnswer(name, qtype, view.v4, view.v6, ctx.cfg.ttl, zone);
  }
  if (view.kind === 'external') return nxdomain(ctx, zone);

  if (n === 4) {
    const label = base[0]!;
    if (label.startsWith('_')) {
      // _<proto>.<svc>: exists when some SRV name lies below it.
      const proto = label.slice(1);
      const f = srvFor(ctx, view, name, svcName, undefined, proto, zone);
      return f.answer.length > 0 ? nodata(zone) : nxdomain(ctx, zone);
    }
    if (ctx.cfg.noEndpoints) return nxdomain(ctx, zone);
    const ep = view.endpoint(label);
    if (!ep) return nxdomain(ctx, zone);
    if (qtype === Type.SRV) {
      const epName = `${ep.name}.${svcName}`;
      const targets = ep.ports.map((p) => ({ port: p.port, target: epName }));
      return srvAnswer(name, targets, addressRecords(epName, [...ep.v4, ...ep.v6], ctx.cfg.ttl), ctx.cfg.ttl, zone);
    }
    return addressAnswer(name, qtype, ep.v4, ep.v6, ctx.cfg.ttl, zone);
  }

  // n === 5: _<port>._<proto>.<svc>.<ns>.svc.<zone>
  const [port, proto] = [base[0]!, base[1]!];
  if (!port.startsWith('_') || !proto.startsWith('_') || port.length < 2) return nxdomain(ctx, zone);
  const f = srvFor(ctx, view, name, svcName, port.slice(1), proto.slice(1), zone);
  if (f.answer.length === 0) return nxdomain(ctx, zone);
  return qtype === Type.SRV ? f : nodata(zone);
}

/** SRV records of a named port (port undefined: any named port) and protocol, with their addresses. */
function srvFor(ctx: Ctx, view: ServiceView, name: string, svcName: string, port: string | undefined, proto: string, zone: string): Found {
  const match = (p: { name: string; protocol: string }) =>
    p.name !== '' && (port === undefined || p.name.toLowerCase() === port) && p.protocol.toLowerCase() === proto;
  if (view.kind === 'cluster_ip') {
    const targets = view.ports.filter(match).map((p) => ({ port: p.port, target: svcName }));
    return srvAnswer(name, targets, addressRecords(svcName, [...view.clusterV4, ...view.clusterV6], ctx.cfg.ttl), ctx.cfg.ttl, zone);
  }
  if (ctx.cfg.noEndpoints) return nodata(zone);
  return headlessSrv(ctx, view, name, svcName, zone, match);
}

/** One SRV per endpoint and port (the endpoint's own port numbers), endpoint names as targets. */
function headlessSrv(ctx: Ctx, view: ServiceView, name: string, svcName: string, zone: string,
  match: (p: { name: string; protocol: string }) => boolean): Found {
  const targets: { port: number; target: string }[] = [];
  const extra: RR[] = [];
  for (const ep of view.endpoints) {
    const ports = ep.ports.filter(match);
    if (ports.length === 0) continue;
    const target = `${ep.name}.${svcName}`;
    for (const p of ports) targets.push({ port: p.port, target });
    extra.push(...addressRecords(target, [...ep.v4, ...ep.v6], ctx.cfg.ttl));
  }
  return srvAnswer(name, targets, extra, ctx.cfg.ttl, zone);
}

/**
 * An ExternalName Service is a CNAME for every query type. When the target lies in one of our zones
 * the chain is followed in the same reply (RFC 1034 4.3.2); otherwise the client's resolver follows it.
 */
function externalName(ctx: Ctx, view: ServiceView, name: string, qtype: number, zone: string, chain: string[]): Found {
  const target = view.externalName;
  // An address in ExternalName is no name to point at: CoreDNS answers nothing for it either.
  if (target === '' || normalizeIP(target.slice(0, -1)) !== undefined) return nxdomain(ctx, zone);
  const cname: RR = { name, class: Class.IN, ttl: ctx.cfg.ttl, type: Type.CNAME, data: target };
  const out = found(zone, [cname]);
  if (qtype === Type.CNAME) return out;
  const targetZone = matchZone(target, ctx.cfg.zones);
  if (targetZone === undefined) { out.open = true; return out; }
  if (chain.includes(target) || chain.length >= MAX_CHAIN) return out;
  const next = lookup(ctx, target, qtype, targetZone, [...chain, target]);
  out.rcode = next.rcode;
  out.answer.push(...next.answer);
  out.additional = next.additional;
  out.soaZone = next.soaZone;
  if (next.open) out.open = true;
  return out;
}

// ------------------------------------------------------------------------------------- pods

function pods(ctx: Ctx, base: string[], name: string, qtype: number, zone: string): Found {
  const n = base.length;
  if (ctx.cfg.pods === 'disabled' || n > 3) return nxdomain(ctx, zone);
  const ns = base[n - 2]!;
  if (!ctx.zone.namespaceExposed(ns, ctx.deps)) return nxdomain(ctx, zone);
  if (n === 2) return nodata(zone);
  const ip = podIP(base[0]!);
  if (ip === undefined) return nxdomain(ctx, zone);
  if (ctx.cfg.pods === 'verified' && !ctx.zone.hasPod(ip, ns, ctx.deps)) return nxdomain(ctx, zone);
  const six = ip.includes(':');
  return addressAnswer(name, qtype, six ? [] : [ip], six ? [ip] : [], ctx.cfg.ttl, zone);
}

/** "10-244-1-5" → 10.244.1.5, "fd00--5" → fd00::5; undefined unless a valid address (no leading zeros in IPv4). */
export function podIP(label: string): string | undefined {
  const dashes = label.split('-').length - 1;
  if (dashes === 3 && !label.includes('--')) {
    const parts = label.split('-');
    if (!parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
    return parts.join('.');
  }
  if (!/^[0-9a-f-]+$/.test(label)) return undefined;
  return normalizeIP(label.replace(/-/g, ':'));
}

// ------------------------------------------------------------------------------------- reverse

function reverse(ctx: Ctx, name: string, qtype: number, zone: string): Found {
  const raw = addressFromReverse(name);
  const ip = raw === undefined ? undefined : normalizeIP(raw);
  if (ip === undefined) return nxdomain(ctx, zone);
  const targets = ctx.zone.reverseTargets(ip, ctx.deps);
  if (targets.length === 0) return nxdomain(ctx, zone);
  if (qtype !== Type.PTR) return nodata(zone);
  const primary = ctx.cfg.primaryZone;
  const seen = new Set<string>();
  const rrs: RR[] = [];
  for (const t of targets) {
    const svc = under(`${t.view.name}.${t.view.namespace}.svc`, primary);
    const target = t.endpoint === undefined ? svc : `${t.endpoint}.${svc}`;
    if (seen.has(target)) continue;
    seen.add(target);
    rrs.push({ name, class: Class.IN, ttl: ctx.cfg.ttl, type: Type.PTR, data: target });
  }
  return found(zone, rrs);
}

// ------------------------------------------------------------------------------------- builders

/** `labels` (no trailing dot) below `zone`: "a.b" + "cluster.local." → "a.b.cluster.local."; "a.b" + "." → "a.b.". */
function under(labels: string, zone: string): string {
  return zone === '.' ? labels + '.' : `${labels}.${zone}`;
}

function found(zone: string, answer: RR[]): Found {
  return { rcode: Rcode.NOERROR, answer, additional: [], soaZone: zone };
}

function nodata(zone: string): Found {
  return found(zone, []);
}

function nxdomain(ctx: Ctx, zone: string): Found {
  ctx.deps.push(ctx.zone.global);
  return { rcode: Rcode.NXDOMAIN, answer: [], additional: [], soaZone: zone };
}

function addressRecords(name: string, addrs: readonly string[], ttl: number): RR[] {
  return addrs.map((a) => (a.includes(':')
    ? { name, class: Class.IN, ttl, type: Type.AAAA, data: a }
    : { name, class: Class.IN, ttl, type: Type.A, data: a }));
}

/** A or AAAA records for a name that exists; any other type (or no address of that family) is NODATA. */
function addressAnswer(name: string, qtype: number, v4: readonly string[], v6: readonly string[], ttl: number, zone: string): Found {
  if (qtype === Type.A) return found(zone, addressRecords(name, v4, ttl));
  if (qtype === Type.AAAA) return found(zone, addressRecords(name, v6, ttl));
  return nodata(zone);
}

/**
 * SRV records, priority 0 and the weight split evenly (CoreDNS: 100 / count, at least 1), duplicates
 * (same target and port) dropped; `extra` are the targets' addresses for the additional section.
 */
function srvAnswer(name: string, targets: { port: number; target: string }[], extra: RR[], ttl: number, zone: string): Found {
  const seen = new Set<string>();
  const uniq = targets.filter((t) => {
    const k = `${t.target} ${t.port}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  if (uniq.length === 0) return nodata(zone);
  const weight = Math.max(1, Math.floor(100 / uniq.length));
  const answer: SrvRR[] = uniq.map((t) => ({
    name, class: Class.IN, ttl, type: Type.SRV, data: { priority: 0, weight, port: t.port, target: t.target },
  }));
  const f = found(zone, answer);
  const seenExtra = new Set<string>();
  f.additional = extra.filter((r) => {
    const k = `${r.name} ${r.type} ${String(r.data)}`;
    if (seenExtra.has(k)) return false;
    seenExtra.add(k);
    return true;
  });
  return f;
}
