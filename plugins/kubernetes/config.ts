// The kubernetes plugin's typed configuration and the small pure helpers parse needs.
import { canonical, expandIPv6 } from '../../src/dns/name.ts';

export type PodMode = 'disabled' | 'insecure' | 'verified';

export interface KubernetesConfig {
  /** Canonical zones the plugin is authoritative for (forward and reverse). */
  zones: string[];
  /** The first non-reverse zone: PTR targets are named in it. */
  primaryZone: string;
  /** API server URL; absent means in-cluster (or kubeconfig). Only the first of several is used. */
  endpoint?: string;
  tls?: { cert: string; key: string; ca: string };
  kubeconfig?: { file: string; context?: string };
  /** Exposed namespaces; empty means all. */
  namespaces: string[];
  /** Label selector for Services and EndpointSlices (passed to the source). */
  labels?: string;
  /** Label selector for Namespaces (passed to the source). */
  namespaceLabels?: string;
  pods: PodMode;
  endpointPodNames: boolean;
  /** Seconds, 0..3600. */
  ttl: number;
  /** `noendpoints`: no endpoint records, headless services answer NXDOMAIN. */
  noEndpoints: boolean;
  /** Zones whose NXDOMAIN answers go to the next plugin instead; null when `fallthrough` is absent. */
  fallthrough: string[] | null;
  ignoreEmptyService: boolean;
  /** How long startup waits for the first sync before serving anyway (ms). */
  startupTimeoutMs: number;
  /** `manifests PATH...`: read objects from YAML files instead of the API. */
  manifests: string[];
  /** Non-fatal remarks from parsing (deprecations), logged at setup. */
  warnings: string[];
}

export const defaultTTL = 5;
export const defaultStartupTimeoutMs = 5000;

export function defaultConfig(zones: string[]): KubernetesConfig {
  return {
    zones, primaryZone: zones.find((z) => !isReverseZone(z)) ?? '',
    namespaces: [], pods: 'disabled', endpointPodNames: false, ttl: defaultTTL, noEndpoints: false,
    fallthrough: null, ignoreEmptyService: false, startupTimeoutMs: defaultStartupTimeoutMs, manifests: [],
    warnings: [],
  };
}

/** Is `zone` (canonical) inside in-addr.arpa. or ip6.arpa.? */
export function isReverseZone(zone: string): boolean {
  return zone === 'in-addr.arpa.' || zone.endsWith('.in-addr.arpa.') || zone === 'ip6.arpa.' || zone.endsWith('.ip6.arpa.');
}

/**
 * A zone argument as CoreDNS reads it: a domain name, or a CIDR that becomes the reverse zone(s)
 * covering it. A prefix that does not fall on an octet (IPv4) or nibble (IPv6) boundary expands to
 * every zone at the next boundary ("10.0.0.0/23" → 0.0.10.in-addr.arpa. and 1.0.10.in-addr.arpa.).
 * Returns undefined for a malformed CIDR.
 */
export function zonesFromArg(arg: string): string[] | undefined {
  let a = arg.replace(/^dns:\/\//, '');
  const slash = a.indexOf('/');
  if (slash < 0) {
    // "example.org:53" style keys: drop a port.
    const colon = a.lastIndexOf(':');
    if (colon > 0 && !a.slice(0, colon).includes(':') && /^\d+$/.test(a.slice(colon + 1))) a = a.slice(0, colon);
    return [canonical(a)];
  }
  const ip = a.slice(0, slash);
  const bits = Number(a.slice(slash + 1));
  if (!/^\d+$/.test(a.slice(slash + 1))) return undefined;
  if (ip.includes(':')) {
    const words = expandIPv6(ip);
    if (!words || bits > 128) return undefined;
    const nibbles: number[] = [];
    for (const w of words) for (let s = 12; s >= 0; s -= 4) nibbles.push((w >> s) & 0xf);
    const whole = Math.ceil(bits / 4);
    const free = whole * 4 - bits;
    const out: string[] = [];
    for (let v = 0; v < 1 << free; v++) {
      const n = nibbles.slice(0, whole);
      if (whole > 0) n[whole - 1] = (n[whole - 1]! & ~((1 << free) - 1)) | v;
      out.push(n.reverse().map((x) => x.toString(16)).join('.') + (whole > 0 ? '.' : '') + 'ip6.arpa.');
    }
    return out;
  }
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255) || bits > 32) return undefined;
  const octets = parts.map(Number);
  const whole = Math.ceil(bits / 8);
  const free = whole * 8 - bits;
  const out: string[] = [];
  for (let v = 0; v < 1 << free; v++) {
    const o = octets.slice(0, whole);
    if (whole > 0) o[whole - 1] = (o[whole - 1]! & ~((1 << free) - 1) & 0xff) | v;
    out.push(o.reverse().join('.') + (whole > 0 ? '.' : '') + 'in-addr.arpa.');
  }
  return out;
}
