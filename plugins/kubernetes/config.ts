// The kubernetes plugin's typed configuration and the small pure helpers parse needs.
import type { Controller } from '../../src/corefile/controller.ts';
import { parseDuration } from '../../src/corefile/duration.ts';
import { parseServerKey } from '../../src/corefile/parser.ts';
import { CorefileError, type Token } from '../../src/corefile/types.ts';
import { parseSelector } from './selector.ts';

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

/** Zones from a zone argument: a domain name or a CIDR (its reverse zones), read like a server block key. */
function zonesFromArg(c: Controller, tok: Token): string[] {
  try {
    return parseServerKey(tok.text, tok.file, tok.line).map((k) => k.zone);
  } catch (e) {
    throw c.err(e instanceof CorefileError ? e.message.replace(/^.*Error during parsing: /, '') : String(e), tok);
  }
}

/**
 * Parse a `kubernetes` directive (CoreDNS syntax plus `manifests`). Error texts follow CoreDNS's
 * plugin/kubernetes/setup.go, so messages people search for still find answers.
 */
export function parseConfig(c: Controller): KubernetesConfig {
  const zones: string[] = [];
  for (const t of c.argTokens) for (const z of zonesFromArg(c, t)) if (!zones.includes(z)) zones.push(z);
  if (zones.length === 0) for (const z of c.serverZones) if (!zones.includes(z)) zones.push(z);
  const cfg = defaultConfig(zones);
  if (cfg.primaryZone === '') throw c.err('non-reverse zone name must be used');

  for (const line of c.lines()) {
    line.noBlock();
    const args = line.args;
    const toks = line.argTokens;
    switch (line.name) {
      case 'endpoint_pod_names':
        line.expectArgs(0);
        cfg.endpointPodNames = true;
        break;
      case 'pods':
        line.expectArgs(1);
        if (args[0] !== 'disabled' && args[0] !== 'insecure' && args[0] !== 'verified') {
          throw line.err(`wrong value for pods: ${args[0]},  must be one of: disabled, verified, insecure`, toks[0]);
        }
        cfg.pods = args[0];
        break;
      case 'namespaces':
        line.expectArgs(1, Infinity);
        for (const a of args) if (!cfg.namespaces.includes(a)) cfg.namespaces.push(a);
        break;
      case 'endpoint':
        line.expectArgs(1, Infinity);
        cfg.endpoint = args[0]!;
        if (args.length > 1) cfg.warnings.push(`Multiple endpoints have been deprecated, only the first specified endpoint '${args[0]}' is used`);
        break;
      case 'tls':
        line.expectArgs(3);
        cfg.tls = { cert: args[0]!, key: args[1]!, ca: args[2]! };
        break;
      case 'kubeconfig':
        line.expectArgs(1, 2);
        cfg.kubeconfig = args.length === 2 ? { file: args[0]!, context: args[1]! } : { file: args[0]! };
        break;
      case 'labels':
      case 'namespace_labels': {
        line.expectArgs(1, Infinity);
        const expr = args.join(' ');
        try {
          parseSelector(expr);
        } catch (e) {
          const what = line.name === 'labels' ? 'label' : 'namespace_label';
          throw line.err(`unable to parse ${what} selector value: '${expr}': ${(e as Error).message}`, toks[0]);
        }
        if (line.name === 'labels') cfg.labels = expr; else cfg.namespaceLabels = expr;
        break;
      }
      case 'fallthrough': {
        const fall: string[] = [];
        for (const t of toks) fall.push(...zonesFromArg(line, t));
        cfg.fallthrough = fall.length > 0 ? fall : ['.'];
        break;
      }
      case 'ttl': {
        line.expectArgs(1);
        const t = toks[0]!;
        if (!/^[+-]?\d+$/.test(t.text)) throw line.err(`strconv.Atoi: parsing "${t.text}": invalid syntax`, t);
        const ttl = Number(t.text);
        if (ttl < 0 || ttl > 3600) throw line.err(`ttl must be in range [0, 3600]: ${ttl}`, t);
        cfg.ttl = ttl;
        break;
      }
      case 'noendpoints':
        line.expectArgs(0);
        cfg.noEndpoints = true;
        break;
      case 'ignore':
        line.expectArgs(1);
        if (args[0] !== 'empty_service') throw line.err(`unable to parse ignore value: '${args[0]}'`, toks[0]);
        cfg.ignoreEmptyService = true;
        break;
      case 'startup_timeout': {
        line.expectArgs(1);
        const t = toks[0]!;
        const ms = parseDuration(t.text);
        if (ms === undefined) throw line.err(`time: invalid duration "${t.text}"`, t);
        if (ms < 0) throw line.err(`startup_timeout must not be negative: ${t.text}`, t);
        cfg.startupTimeoutMs = ms;
        break;
      }
      case 'manifests':
        line.expectArgs(1, Infinity);
        // Relative to the Corefile, so a bundled Corefile and its manifests travel together.
        for (const t of toks) {
          const p = line.pathRelativeToFile(t);
          if (!cfg.manifests.includes(p)) cfg.manifests.push(p);
        }
        break;
      default:
        throw line.unknownProperty();
    }
  }
  if (cfg.namespaces.length > 0 && cfg.namespaceLabels !== undefined) {
    throw c.err('namespaces and namespace_labels cannot both be set');
  }
  if (cfg.manifests.length > 0 && (cfg.endpoint !== undefined || cfg.tls !== undefined || cfg.kubeconfig !== undefined)) {
    throw c.err('manifests cannot be combined with endpoint, tls or kubeconfig');
  }
  return cfg;
}
