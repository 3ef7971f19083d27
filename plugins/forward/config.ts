// The forward directive: `forward FROM TO... { ... }` (CoreDNS plugin/forward/setup.go) into a typed
// config. TO parsing follows CoreDNS's plugin/pkg/parse HostPortOrFile: an IP, IP:port, [v6]:port,
// dns://..., or a resolv.conf-style file whose `nameserver` lines are used on port 53.
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Controller } from '../../src/corefile/controller.ts';
import { parseServerKey } from '../../src/corefile/parser.ts';
import type { Token } from '../../src/corefile/types.ts';
import { Rcode } from '../../src/dns/types.ts';
import { isDomainName } from '../../src/dns/name.ts';

export type PolicyName = 'random' | 'round_robin' | 'sequential';

/** One upstream: where to send, and the label CoreDNS uses for it (`to` in metrics). */
export interface UpstreamAddr {
  /** "10.0.0.1:53", "[2001:db8::1]:53": the `to` label. */
  addr: string;
  host: string;
  port: number;
  family: 4 | 6;
}

/** Timing constants CoreDNS hard-codes. Not Corefile syntax; tests shorten them. */
export interface ForwardTimeouts {
  /** Wait for one upstream's answer (CoreDNS: 2 s read timeout). */
  attemptMs: number;
  /** The whole query, all retries included (CoreDNS: 5 s). */
  totalMs: number;
  /** One health check's wait (CoreDNS: 1 s). */
  healthCheckMs: number;
}

export const defaultTimeouts: ForwardTimeouts = { attemptMs: 2000, totalMs: 5000, healthCheckMs: 1000 };

export interface ForwardConfig {
  /** Canonical zone the plugin forwards. */
  from: string;
  /** Set when FROM was a CIDR that expands to several reverse zones (only the first is used). */
  fromWarning?: string;
  upstreams: UpstreamAddr[];
  /** Canonical names (and everything below) not forwarded. */
  except: string[];
  forceTcp: boolean;
  preferUdp: boolean;
  expireMs: number;
  maxFails: number;
  maxIdleConns: number;
  /** 0: no cap on failed attempts per query. */
  maxConnectAttempts: number;
  healthCheck: { intervalMs: number; recursionDesired: boolean; domain: string };
  policy: PolicyName;
  /** 0: no limit. */
  maxConcurrent: number;
  /** Rcodes that hand the query to the next forward in the block. */
  next: number[];
  /** Rcodes that make forward try the next upstream. */
  failover: number[];
  failfastAllUnhealthyUpstreams: boolean;
  timeouts: ForwardTimeouts;
}

/** CoreDNS caps the number of upstreams of one forward. */
export const maxUpstreams = 15;

export function defaultConfig(): Omit<ForwardConfig, 'from' | 'upstreams'> {
  return {
    except: [], forceTcp: false, preferUdp: false, expireMs: 10_000, maxFails: 2, maxIdleConns: 0,
    maxConnectAttempts: 0, healthCheck: { intervalMs: 500, recursionDesired: true, domain: '.' },
    policy: 'random', maxConcurrent: 0, next: [], failover: [], failfastAllUnhealthyUpstreams: false,
    timeouts: { ...defaultTimeouts },
  };
}

/** Properties CoreDNS knows that clusterdns does not implement (plain DNS over UDP/TCP only). */
const unsupported = new Set(['tls', 'tls_servername', 'doh_method', 'resolver', 'resolve_upstream', 'next_on_nodata', 'fallthrough']);

export function parseForward(c: Controller): ForwardConfig {
  const args = c.argTokens;
  if (args.length < 2) throw c.argErr();
  const fromTok = args[0]!;
  let zones: string[];
  try {
    zones = parseServerKey(fromTok.text, fromTok.file, fromTok.line).map((k) => k.zone);
  } catch {
    throw c.err(`unable to normalize '${fromTok.text}'`, fromTok);
  }
  const cfg: ForwardConfig = { from: zones[0]!, upstreams: [], ...defaultConfig() };
  if (zones.length > 1) {
    cfg.fromWarning = `Unsupported CIDR notation: '${fromTok.text}' expands to multiple zones. Using only '${cfg.from}'.`;
  }
  for (const tok of args.slice(1)) cfg.upstreams.push(...hostPortOrFile(c, tok));
  if (cfg.upstreams.length === 0) throw c.err('no nameservers found', args[1]);
  if (cfg.upstreams.length > maxUpstreams) {
    throw c.err(`more than ${maxUpstreams} TOs configured: ${cfg.upstreams.length}`, args.at(-1));
  }
  for (const line of c.lines()) parseProperty(line, cfg);
  return cfg;
}

function parseProperty(c: Controller, cfg: ForwardConfig): void {
  const args = c.argTokens;
  const one = (): Token => { if (args.length !== 1) throw c.argErr(); return args[0]!; };
  const none = () => { if (args.length !== 0) throw c.argErr(); };
  switch (c.name) {
    case 'except':
      if (args.length === 0) throw c.argErr();
      for (const t of args) {
        try {
          cfg.except.push(...parseServerKey(t.text, t.file, t.line).map((k) => k.zone));
        } catch {
          throw c.err(`unable to normalize '${t.text}'`, t);
        }
      }
      break;
    case 'force_tcp': none(); cfg.forceTcp = true; break;
    case 'prefer_udp': none(); cfg.preferUdp = true; break;
    case 'max_fails': cfg.maxFails = uint(c, one()); break;
    case 'max_connect_attempts': cfg.maxConnectAttempts = uint(c, one()); break;
    case 'max_idle_conns': {
      const t = one();
      if (/^-\d+$/.test(t.text)) throw c.err(`max_idle_conns can't be negative: ${t.text}`, t);
      cfg.maxIdleConns = uint(c, t);
      break;
    }
    case 'max_concurrent': {
      const t = one();
      if (/^-\d+$/.test(t.text)) throw c.err(`max_concurrent can't be negative: ${t.text}`, t);
      cfg.maxConcurrent = uint(c, t);
      break;
    }
    case 'expire': {
      const t = one();
      const ms = c.duration(t);
      if (ms < 0) throw c.err(`expire can't be negative: ${t.text}`, t);
      cfg.expireMs = ms;
      break;
    }
    case 'health_check': {
      if (args.length === 0) throw c.argErr();
      const t = args[0]!;
      const ms = c.duration(t);
      if (ms < 0) throw c.err(`health_check can't be negative: ${t.text}`, t);
      const hc = { intervalMs: ms, recursionDesired: true, domain: '.' };
      for (let i = 1; i < args.length; i++) {
        const o = args[i]!;
        if (o.text === 'no_rec') { hc.recursionDesired = false; continue; }
        if (o.text === 'domain') {
          const d = args[++i];
          if (!d) throw c.argErr();
          if (!isDomainName(d.text)) throw c.err(`health_check: invalid domain name ${d.text}`, d);
          hc.domain = d.text.toLowerCase().endsWith('.') ? d.text.toLowerCase() : d.text.toLowerCase() + '.';
          continue;
        }
        throw c.err(`health_check: unknown option ${o.text}`, o);
      }
      cfg.healthCheck = hc;
      break;
    }
    case 'policy': {
      const t = one();
      if (t.text !== 'random' && t.text !== 'round_robin' && t.text !== 'sequential') throw c.err(`unknown policy '${t.text}'`, t);
      cfg.policy = t.text;
      break;
    }
    case 'next':
      if (args.length === 0) throw c.argErr();
      for (const t of args) cfg.next.push(rcode(c, t));
      break;
    case 'failover':
      if (args.length === 0) throw c.argErr();
      for (const t of args) {
        const rc = rcode(c, t);
        if (rc === Rcode.NOERROR) throw c.err('NoError cannot be used in failover', t);
        cfg.failover.push(rc);
      }
      break;
    case 'failfast_all_unhealthy_upstreams': none(); cfg.failfastAllUnhealthyUpstreams = true; break;
    default:
      if (unsupported.has(c.name)) throw c.err(`'${c.name}' is not supported by clusterdns (plain DNS upstreams only)`);
      throw c.unknownProperty();
  }
  c.noBlock();
}

function uint(c: Controller, t: Token): number {
  if (!/^\d+$/.test(t.text) || Number(t.text) > 0xffffffff) throw c.err(`invalid number '${t.text}'`, t);
  return Number(t.text);
}

/** miekg/dns StringToRcode names (and NOTIMPL, which it also accepts). */
function rcode(c: Controller, t: Token): number {
  const u = t.text.toUpperCase();
  if (u === 'NOTIMPL') return Rcode.NOTIMP;
  if (Object.hasOwn(Rcode, u)) return Rcode[u as keyof typeof Rcode];
  throw c.err(`${t.text} is not a valid rcode`, t);
}


// ---- TO: HostPortOrFile ----

const schemes = ['tls', 'dns', 'quic', 'grpc', 'https3', 'https', 'unix'] as const;

/** Split off a transport prefix ("dns://", "tls://", ...); none means plain DNS. */
function transport(s: string): [string, string] {
  for (const t of schemes) if (s.startsWith(`${t}://`)) return [t, s.slice(t.length + 3)];
  return ['dns', s];
}

/** Go's net.SplitHostPort: "[v6]:p", "host:p" (exactly one colon); undefined when there is no port. */
export function splitHostPort(s: string): [string, string] | undefined {
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0 || s[end + 1] !== ':' || s.slice(end + 2).includes(':')) return undefined;
    return [s.slice(1, end), s.slice(end + 2)];
  }
  const i = s.lastIndexOf(':');
  if (i < 0 || s.indexOf(':') !== i) return undefined;
  return [s.slice(0, i), s.slice(i + 1)];
}

const stripZone = (h: string) => (h.includes('%') ? h.slice(0, h.lastIndexOf('%')) : h);

const defaultPorts: Record<string, number> = { dns: 53, tls: 853, grpc: 443, https: 443 };

function hostPortOrFile(c: Controller, tok: Token): UpstreamAddr[] {
  const [trans, rest] = transport(tok.text);
  const notSupported = (where: string) =>
    c.err(`'${trans}' is not supported as a destination protocol in forward: ${where}`, tok);
  const fromFile = (): UpstreamAddr[] => {
    const servers = resolvConfServers(rest);
    if (servers === undefined) throw c.err(`not an IP address or file: "${rest}"`, tok);
    return servers.map((ip) => upstream(ip, 53));
  };
  const hp = splitHostPort(rest);
  if (!hp) {
    if (isIP(stripZone(rest)) === 0) return fromFile();
    if (trans !== 'dns') throw notSupported(`${trans}://${joinHostPort(rest, defaultPorts[trans] ?? 53)}`);
    return [upstream(rest, 53)];
  }
  const [host, portText] = hp;
  if (isIP(stripZone(host)) === 0) return fromFile();
  if (trans !== 'dns') throw notSupported(tok.text);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) throw c.err(`invalid port '${portText}' in '${tok.text}'`, tok);
  return [upstream(host, port)];
}

function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function upstream(host: string, port: number): UpstreamAddr {
  return { addr: joinHostPort(host, port), host, port, family: isIP(stripZone(host)) === 6 ? 6 : 4 };
}

/**
 * The `nameserver` addresses of a resolv.conf-style file, or undefined when it cannot be read. Like
 * miekg/dns ClientConfigFromFile: `#` and `;` start comments; entries that are not IP addresses are
 * skipped (glibc ignores them too).
 */
export function resolvConfServers(file: string): string[] | undefined {
  let text: string;
  try {
    if (!statSync(file).isFile()) return undefined;
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] !== 'nameserver' || f.length < 2) continue;
    if (isIP(stripZone(f[1]!)) !== 0) out.push(f[1]!);
  }
  return out;
}
