// Builders for real Kubernetes API JSON (what the API server stores and a watch sends), plus a recording
// ZoneSink and a polling waitFor(), the fixtures of the kubernetes sources' tests.
import type { Kind, Replacement, SlimEndpointSlice, SlimNamespace, SlimOf, SlimPod, SlimService, ZoneSink } from '../../plugins/kubernetes/objects.ts';
import type { ApiObject } from './server.ts';

export interface PortSpec { name?: string; port: number; protocol?: 'TCP' | 'UDP' | 'SCTP' }

export interface ServiceOpts {
  clusterIP?: string;
  clusterIPs?: string[];
  ports?: PortSpec[];
  labels?: Record<string, string>;
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  externalName?: string;
  publishNotReadyAddresses?: boolean;
}

let nextIP = 1;

function meta(ns: string | undefined, name: string, labels?: Record<string, string>, annotations?: Record<string, string>) {
  return {
    name,
    ...(ns !== undefined ? { namespace: ns } : {}),
    ...(labels ? { labels } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

function ports(specs: PortSpec[] | undefined) {
  return (specs ?? []).map((p) => ({ ...(p.name !== undefined ? { name: p.name } : {}), port: p.port, protocol: p.protocol ?? 'TCP' }));
}

/** A Service (ClusterIP with an allocated 10.96.x.y address unless told otherwise). */
export function service(ns: string, name: string, opts: ServiceOpts = {}): ApiObject {
  const type = opts.type ?? 'ClusterIP';
  const spec: Record<string, unknown> = { type, ports: ports(opts.ports) };
  if (type === 'ExternalName') {
    spec.externalName = opts.externalName ?? 'example.com';
  } else {
    const n = nextIP++;
    const ips = opts.clusterIPs ?? [opts.clusterIP ?? `10.96.${(n >> 8) & 255}.${n & 255}`];
    spec.clusterIP = ips[0];
    spec.clusterIPs = ips;
    spec.ipFamilies = ips.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4'));
  }
  if (opts.publishNotReadyAddresses !== undefined) spec.publishNotReadyAddresses = opts.publishNotReadyAddresses;
  return { apiVersion: 'v1', kind: 'Service', metadata: meta(ns, name, opts.labels), spec, status: { loadBalancer: {} } };
}

/** A headless Service (clusterIP None). */
export function headless(ns: string, name: string, opts: Omit<ServiceOpts, 'clusterIP' | 'clusterIPs' | 'type'> = {}): ApiObject {
  return service(ns, name, { ...opts, clusterIPs: ['None'] });
}

/** An ExternalName Service. */
export function externalName(ns: string, name: string, target: string, opts: Omit<ServiceOpts, 'type' | 'externalName'> = {}): ApiObject {
  return service(ns, name, { ...opts, type: 'ExternalName', externalName: target });
}

export interface EndpointSpec {
  ip?: string;
  addresses?: string[];
  hostname?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  /** targetRef Pod name. */
  pod?: string;
  nodeName?: string;
}

export interface SliceOpts {
  name?: string;
  addressType?: 'IPv4' | 'IPv6' | 'FQDN';
  labels?: Record<string, string>;
  /** endpoints.kubernetes.io/last-change-trigger-time */
  changedAt?: Date;
}

/** An EndpointSlice of Service `svc` (labelled kubernetes.io/service-name, as the controller does). */
export function endpointSlice(ns: string, svc: string, endpoints: Array<string | EndpointSpec>, portSpecs: PortSpec[] = [], opts: SliceOpts = {}): ApiObject {
  const addressType = opts.addressType ?? 'IPv4';
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: meta(
      ns,
      opts.name ?? `${svc}-${addressType.toLowerCase()}`,
      { 'kubernetes.io/service-name': svc, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io', ...opts.labels },
      opts.changedAt ? { 'endpoints.kubernetes.io/last-change-trigger-time': opts.changedAt.toISOString() } : undefined,
    ),
    addressType,
    endpoints: endpoints.map((e) => {
      const spec: EndpointSpec = typeof e === 'string' ? { ip: e } : e;
      const conditions: Record<string, boolean> = {};
      if (spec.ready !== undefined) conditions.ready = spec.ready;
      if (spec.serving !== undefined) conditions.serving = spec.serving;
      if (spec.terminating !== undefined) conditions.terminating = spec.terminating;
      return {
        addresses: spec.addresses ?? [spec.ip ?? '10.244.0.1'],
        conditions,
        ...(spec.hostname !== undefined ? { hostname: spec.hostname } : {}),
        ...(spec.pod !== undefined ? { targetRef: { kind: 'Pod', namespace: ns, name: spec.pod } } : {}),
        ...(spec.nodeName !== undefined ? { nodeName: spec.nodeName } : {}),
      };
    }),
    ports: ports(portSpecs),
  };
}

export function namespace(name: string, labels?: Record<string, string>): ApiObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: meta(undefined, name, { 'kubernetes.io/metadata.name': name, ...labels }), spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}

export interface PodOpts { ips?: string[]; deleting?: boolean; labels?: Record<string, string> }

export function pod(ns: string, name: string, ip: string, phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown' = 'Running', opts: PodOpts = {}): ApiObject {
  const ips = opts.ips ?? (ip ? [ip] : []);
  const metadata: Record<string, unknown> = meta(ns, name, opts.labels);
  if (opts.deleting) metadata.deletionTimestamp = new Date().toISOString();
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: metadata as ApiObject['metadata'],
    spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }], nodeName: 'node-1' },
    status: { phase, ...(ips.length > 0 ? { podIP: ips[0], podIPs: ips.map((i) => ({ ip: i })) } : {}) },
  };
}

// ---- a ZoneSink that records ----

export type SinkCall =
  | { op: 'upsert'; kind: Kind; key: string }
  | { op: 'delete'; kind: Kind; key: string }
  | { op: 'replaceAll'; kind: Kind; keys: string[] }
  /** A page added to a beginReplace replacement (its end is recorded as a replaceAll of every key added). */
  | { op: 'page'; kind: Kind; keys: string[] };

/** A ZoneSink keeping the state it was fed (by kind, keyed ns/name) and every call in order. */
export class RecordingSink implements ZoneSink {
  readonly calls: SinkCall[] = [];
  readonly services = new Map<string, SlimService>();
  readonly slices = new Map<string, SlimEndpointSlice>();
  readonly namespaces = new Map<string, SlimNamespace>();
  readonly pods = new Map<string, SlimPod>();

  upsertService(s: SlimService): void { this.upsert('Service', this.services, `${s.namespace}/${s.name}`, s); }
  deleteService(ns: string, name: string): void { this.del('Service', this.services, `${ns}/${name}`); }
  upsertEndpointSlice(e: SlimEndpointSlice): void { this.upsert('EndpointSlice', this.slices, `${e.namespace}/${e.name}`, e); }
  deleteEndpointSlice(ns: string, name: string): void { this.del('EndpointSlice', this.slices, `${ns}/${name}`); }
  upsertNamespace(n: SlimNamespace): void { this.upsert('Namespace', this.namespaces, n.name, n); }
  deleteNamespace(name: string): void { this.del('Namespace', this.namespaces, name); }
  upsertPod(p: SlimPod): void { this.upsert('Pod', this.pods, `${p.namespace}/${p.name}`, p); }
  deletePod(ns: string, name: string): void { this.del('Pod', this.pods, `${ns}/${name}`); }

  replaceAll(kind: 'Service', items: SlimService[]): void;
  replaceAll(kind: 'EndpointSlice', items: SlimEndpointSlice[]): void;
  replaceAll(kind: 'Namespace', items: SlimNamespace[]): void;
  replaceAll(kind: 'Pod', items: SlimPod[]): void;
  replaceAll(kind: Kind, items: Array<SlimService | SlimEndpointSlice | SlimNamespace | SlimPod>): void {
    const map = this.mapOf(kind) as Map<string, unknown>;
    map.clear();
    const keys: string[] = [];
    for (const it of items) {
      const key = 'namespace' in it ? `${it.namespace}/${it.name}` : it.name;
      map.set(key, it);
      keys.push(key);
    }
    this.calls.push({ op: 'replaceAll', kind, keys });
  }

  beginReplace<K extends Kind>(kind: K): Replacement<SlimOf[K]> {
    const map = this.mapOf(kind) as Map<string, unknown>;
    const seen = new Set<string>();
    return {
      add: (items) => {
        const keys: string[] = [];
        for (const it of items as ReadonlyArray<SlimService | SlimEndpointSlice | SlimNamespace | SlimPod>) {
          const key = 'namespace' in it ? `${it.namespace}/${it.name}` : it.name;
          map.set(key, it);
          seen.add(key);
          keys.push(key);
        }
        this.calls.push({ op: 'page', kind, keys });
      },
      end: () => {
        for (const key of [...map.keys()]) if (!seen.has(key)) map.delete(key);
        this.calls.push({ op: 'replaceAll', kind, keys: [...seen] });
      },
    };
  }

  /** Calls of one op/kind. */
  callsOf(op: SinkCall['op'], kind?: Kind): SinkCall[] {
    return this.calls.filter((c) => c.op === op && (kind === undefined || c.kind === kind));
  }

  keys(kind: Kind): string[] {
    return [...this.mapOf(kind).keys()].sort();
  }

  private mapOf(kind: Kind): Map<string, SlimService | SlimEndpointSlice | SlimNamespace | SlimPod> {
    switch (kind) {
      case 'Service': return this.services;
      case 'EndpointSlice': return this.slices;
      case 'Namespace': return this.namespaces;
      case 'Pod': return this.pods;
    }
  }

  private upsert<T>(kind: Kind, map: Map<string, T>, key: string, v: T): void {
    map.set(key, v);
    this.calls.push({ op: 'upsert', kind, key });
  }

  private del<T>(kind: Kind, map: Map<string, T>, key: string): void {
    map.delete(key);
    this.calls.push({ op: 'delete', kind, key });
  }
}

/** Poll `cond` until it returns a truthy value (returned) or fail after timeoutMs. */
export async function waitFor<T>(cond: () => T | undefined | null | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
