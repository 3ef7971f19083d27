// API objects → slim records. Input is raw JSON (lists, watch events, manifests); client-node class
// instances (same field names, but timestamps are Date objects) are accepted too. Nothing here throws:
// a malformed object yields a reason string, which the caller logs ("skipping Service ns/name: reason")
// before skipping the object, so one bad object never stops a list, a watch or a manifest load.
import { isIPv4, isIPv6 } from 'node:net';
import type { SlimEndpoint, SlimEndpointSlice, SlimNamespace, SlimPod, SlimPort, SlimService } from './objects.ts';

/**
 * A conversion: the slim record; `null` when the object is valid but DNS must not answer for it (a pod
 * that is not running, a slice that belongs to no Service), which callers treat as a delete; or a string
 * saying why the object is invalid (callers log it, skip the object and drop any copy they hold).
 */
export type Converted<T> = T | null | string;

export function isInvalid<T>(c: Converted<T>): c is string {
  return typeof c === 'string';
}

export const serviceNameLabel = 'kubernetes.io/service-name';
export const lastChangeTriggerTime = 'endpoints.kubernetes.io/last-change-trigger-time';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const dnsLabelRe = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const dns1035Re = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const subdomainRe = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
// A name DNS can resolve (ExternalName, FQDN endpoints): letters, digits, '-', '_', dot-separated.
const hostnameRe = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/;

// Namespaces seen valid: thousands of pods share each one, and the check is a regular expression.
const validNamespaces = new Set<string>();

function validNamespace(ns: string): boolean {
  if (validNamespaces.has(ns)) return true;
  if (!dnsLabelRe.test(ns)) return false;
  if (validNamespaces.size >= 10_000) validNamespaces.clear();
  validNamespaces.add(ns);
  return true;
}

/** "ns/name" (or "name") of any object-ish value, for log lines about objects that failed to convert. */
export function describeObject(obj: unknown): string {
  const m = isObj(obj) && isObj(obj.metadata) ? obj.metadata : {};
  const name = typeof m.name === 'string' && m.name !== '' ? m.name : '<unnamed>';
  return typeof m.namespace === 'string' && m.namespace !== '' ? `${m.namespace}/${name}` : name;
}

interface Meta {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  deleting: boolean;
  created?: number;
}

function stringMap(v: unknown, what: string): Record<string, string> | string {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) return `${what} is not a map`;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') return `${what}["${k}"] is not a string`;
    out[k] = val;
  }
  return out;
}

function timestamp(v: unknown): number | undefined {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.getTime();
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

function meta(obj: unknown, namespaced: boolean, defaultNamespace: string | undefined): Meta | string {
  if (!isObj(obj)) return 'not an object';
  const m = obj.metadata;
  if (!isObj(m)) return 'no metadata';
  if (typeof m.name !== 'string' || m.name === '') return 'no metadata.name';
  let namespace = '';
  if (namespaced) {
    const ns = m.namespace === undefined || m.namespace === null || m.namespace === '' ? defaultNamespace : m.namespace;
    if (typeof ns !== 'string' || ns === '') return 'no metadata.namespace';
    if (!dnsLabelRe.test(ns)) return `invalid namespace "${ns}"`;
    namespace = ns;
  }
  const labels = stringMap(m.labels, 'metadata.labels');
  if (typeof labels === 'string') return labels;
  const annotations = stringMap(m.annotations, 'metadata.annotations');
  if (typeof annotations === 'string') return annotations;
  const created = timestamp(m.creationTimestamp);
  return {
    name: m.name, namespace, labels, annotations,
    deleting: m.deletionTimestamp !== undefined && m.deletionTimestamp !== null,
    ...(created !== undefined ? { created } : {}),
  };
}

function ports(v: unknown, where: string, portRequired: boolean): SlimPort[] | string {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return `${where} is not a list`;
  const out: SlimPort[] = [];
  for (const [i, p] of v.entries()) {
    if (!isObj(p)) return `${where}[${i}] is not an object`;
    if (p.port === undefined || p.port === null) {
      // An EndpointSlice port without a number means "all ports": nothing an SRV record can name.
      if (portRequired) return `${where}[${i}].port is missing`;
      continue;
    }
    if (typeof p.port !== 'number' || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      return `${where}[${i}].port ${JSON.stringify(p.port)} is not a port number`;
    }
    const name = p.name === undefined || p.name === null ? '' : p.name;
    if (typeof name !== 'string') return `${where}[${i}].name is not a string`;
    const protocol = p.protocol === undefined || p.protocol === null ? 'TCP' : p.protocol;
    if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP') return `${where}[${i}].protocol ${JSON.stringify(protocol)} is not TCP, UDP or SCTP`;
    out.push({ name, port: p.port, protocol });
  }
  return out;
}

function isIP(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

function validHostname(s: string): boolean {
  return s.length > 0 && s.length <= 253 && hostnameRe.test(s);
}

export interface ConvertOptions {
  /** Namespace for objects without metadata.namespace (manifests; API objects always have one). */
  defaultNamespace?: string;
  /** "Now" in ms, for Service.changedAt (tests pin it). */
  now?: number;
}

const serviceTypes = new Set(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']);

/**
 * A Service. Headless services keep clusterIPs ["None"]; a Service with no cluster IP at all (typical of
 * hand-written manifests, where the API server would have allocated one) has [] and is headless too.
 * ExternalName targets are lowercased and lose a trailing dot. changedAt is the time the object was
 * converted: Services carry no trigger time, and creationTimestamp would be wrong for every update, so for
 * Services the programming-duration metric can only measure our own processing.
 */
export function toSlimService(obj: unknown, opts: ConvertOptions = {}): Converted<SlimService> {
  const m = meta(obj, true, opts.defaultNamespace);
  if (typeof m === 'string') return m;
  if (!dns1035Re.test(m.name)) return `invalid Service name "${m.name}"`;
  const spec = (obj as Obj).spec;
  if (spec !== undefined && spec !== null && !isObj(spec)) return 'spec is not an object';
  const s: Obj = spec ?? {};
  const type = s.type === undefined || s.type === null || s.type === '' ? 'ClusterIP' : s.type;
  if (typeof type !== 'string' || !serviceTypes.has(type)) return `unknown spec.type ${JSON.stringify(type)}`;

  let clusterIPs: string[] = [];
  if (Array.isArray(s.clusterIPs) && s.clusterIPs.length > 0) {
    if (!s.clusterIPs.every((ip): ip is string => typeof ip === 'string')) return 'spec.clusterIPs holds a non-string';
    clusterIPs = [...s.clusterIPs];
  } else if (s.clusterIPs !== undefined && s.clusterIPs !== null && !Array.isArray(s.clusterIPs)) {
    return 'spec.clusterIPs is not a list';
  } else if (typeof s.clusterIP === 'string' && s.clusterIP !== '') {
    clusterIPs = [s.clusterIP];
  } else if (s.clusterIP !== undefined && s.clusterIP !== null && s.clusterIP !== '') {
    return 'spec.clusterIP is not a string';
  }
  if (clusterIPs.includes('None')) {
    if (clusterIPs.length !== 1) return 'spec.clusterIPs mixes "None" with addresses';
  } else {
    for (const ip of clusterIPs) if (!isIP(ip)) return `invalid cluster IP "${ip}"`;
    if (clusterIPs.length > 2) return 'more than two cluster IPs';
  }

  let externalName = '';
  if (type === 'ExternalName') {
    if (typeof s.externalName !== 'string' || s.externalName === '') return 'ExternalName service without spec.externalName';
    externalName = s.externalName.toLowerCase().replace(/\.$/, '');
    if (!validHostname(externalName)) return `invalid spec.externalName "${s.externalName}"`;
    // ExternalName services have no cluster IP; one left over from a type change is ignored, as the API does.
    clusterIPs = [];
  }

  const p = ports(s.ports, 'spec.ports', true);
  if (typeof p === 'string') return p;
  if (s.publishNotReadyAddresses !== undefined && s.publishNotReadyAddresses !== null && typeof s.publishNotReadyAddresses !== 'boolean') {
    return 'spec.publishNotReadyAddresses is not a boolean';
  }
  return {
    namespace: m.namespace,
    name: m.name,
    type: type as SlimService['type'],
    clusterIPs,
    externalName,
    ports: p,
    publishNotReadyAddresses: s.publishNotReadyAddresses === true,
    changedAt: opts.now ?? Date.now(),
  };
}

function condition(v: unknown, absent: boolean): boolean | string {
  if (v === undefined || v === null) return absent;
  if (typeof v !== 'boolean') return 'is not a boolean';
  return v;
}

/**
 * An EndpointSlice. Slices without the kubernetes.io/service-name label belong to no Service and convert
 * to null. Conditions follow kube-proxy: ready and serving default to true, terminating to false.
 */
export function toSlimEndpointSlice(obj: unknown, opts: ConvertOptions = {}): Converted<SlimEndpointSlice> {
  const m = meta(obj, true, opts.defaultNamespace);
  if (typeof m === 'string') return m;
  if (!subdomainRe.test(m.name) || m.name.length > 253) return `invalid EndpointSlice name "${m.name}"`;
  const service = m.labels[serviceNameLabel];
  if (service === undefined || service === '') return null;
  if (!dns1035Re.test(service)) return `invalid ${serviceNameLabel} label "${service}"`;
  const o = obj as Obj;
  const addressType = o.addressType;
  if (addressType !== 'IPv4' && addressType !== 'IPv6' && addressType !== 'FQDN') return `unknown addressType ${JSON.stringify(addressType)}`;
  const validAddress = addressType === 'IPv4' ? isIPv4 : addressType === 'IPv6' ? isIPv6 : validHostname;

  const endpoints: SlimEndpoint[] = [];
  if (o.endpoints !== undefined && o.endpoints !== null) {
    if (!Array.isArray(o.endpoints)) return 'endpoints is not a list';
    for (const [i, e] of o.endpoints.entries()) {
      const where = `endpoints[${i}]`;
      if (!isObj(e)) return `${where} is not an object`;
      if (!Array.isArray(e.addresses) || e.addresses.length === 0) return `${where}.addresses is empty`;
      for (const a of e.addresses) {
        if (typeof a !== 'string' || !validAddress(a)) return `${where}: invalid ${addressType} address ${JSON.stringify(a)}`;
      }
      const c = e.conditions === undefined || e.conditions === null ? {} : e.conditions;
      if (!isObj(c)) return `${where}.conditions is not an object`;
      const ready = condition(c.ready, true);
      const serving = condition(c.serving, true);
      const terminating = condition(c.terminating, false);
      if (typeof ready === 'string') return `${where}.conditions.ready ${ready}`;
      if (typeof serving === 'string') return `${where}.conditions.serving ${serving}`;
      if (typeof terminating === 'string') return `${where}.conditions.terminating ${terminating}`;
      const ep: SlimEndpoint = { addresses: [...(e.addresses as string[])], ready, serving, terminating };
      if (e.hostname !== undefined && e.hostname !== null && e.hostname !== '') {
        if (typeof e.hostname !== 'string' || !dnsLabelRe.test(e.hostname)) return `${where}: invalid hostname ${JSON.stringify(e.hostname)}`;
        ep.hostname = e.hostname;
      }
      if (isObj(e.targetRef) && e.targetRef.kind === 'Pod' && typeof e.targetRef.name === 'string' && e.targetRef.name !== '') {
        ep.podName = e.targetRef.name;
      }
      if (typeof e.nodeName === 'string' && e.nodeName !== '') ep.nodeName = e.nodeName;
      endpoints.push(ep);
    }
  }
  const p = ports(o.ports, 'ports', false);
  if (typeof p === 'string') return p;
  const slice: SlimEndpointSlice = { namespace: m.namespace, name: m.name, service, addressType, ports: p, endpoints };
  const changedAt = timestamp(m.annotations[lastChangeTriggerTime]);
  if (changedAt !== undefined) slice.changedAt = changedAt;
  return slice;
}

export function toSlimNamespace(obj: unknown): Converted<SlimNamespace> {
  const m = meta(obj, false, undefined);
  if (typeof m === 'string') return m;
  if (!dnsLabelRe.test(m.name)) return `invalid Namespace name "${m.name}"`;
  return { name: m.name, labels: m.labels };
}

/**
 * A Pod DNS may answer for: status.phase Running and not being deleted, with its status.podIPs (or
 * status.podIP). Any other pod converts to null, and callers drop it.
 */
export function toSlimPod(obj: unknown, opts: ConvertOptions = {}): Converted<SlimPod> {
  // Not meta(): a Pod's labels, annotations and timestamps are never read, and copying them (real
  // Pods carry many) was most of the conversion of a 100,000-Pod list.
  if (!isObj(obj)) return 'not an object';
  const md = obj.metadata;
  if (!isObj(md)) return 'no metadata';
  if (typeof md.name !== 'string' || md.name === '') return 'no metadata.name';
  const ns = md.namespace === undefined || md.namespace === null || md.namespace === '' ? opts.defaultNamespace : md.namespace;
  if (typeof ns !== 'string' || ns === '') return 'no metadata.namespace';
  if (!validNamespace(ns)) return `invalid namespace "${ns}"`;
  const m = { name: md.name, namespace: ns };
  const status = obj.status;
  if (status !== undefined && status !== null && !isObj(status)) return 'status is not an object';
  const st: Obj = status ?? {};
  if (st.phase !== 'Running' || (md.deletionTimestamp !== undefined && md.deletionTimestamp !== null)) return null;
  const ips: string[] = [];
  if (Array.isArray(st.podIPs) && st.podIPs.length > 0) {
    for (const [i, p] of st.podIPs.entries()) {
      const ip = isObj(p) ? p.ip : undefined;
      if (typeof ip !== 'string' || !isIP(ip)) return `invalid status.podIPs[${i}] ${JSON.stringify(ip ?? p)}`;
      ips.push(ip);
    }
  } else if (typeof st.podIP === 'string' && st.podIP !== '') {
    if (!isIP(st.podIP)) return `invalid status.podIP "${st.podIP}"`;
    ips.push(st.podIP);
  }
  if (ips.length === 0) return null;
  const spec = (obj as Obj).spec;
  const hostNetwork = isObj(spec) && spec.hostNetwork === true;
  return hostNetwork ? { namespace: m.namespace, name: m.name, ips, hostNetwork } : { namespace: m.namespace, name: m.name, ips };
}
