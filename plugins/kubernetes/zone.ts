// The in-memory cluster zone: slim objects fed by a source (API watch or manifests), kept in indexes
// the resolver reads without scanning: services by namespace/name (each with a prebuilt view of its
// ready endpoints), namespaces, pods by IP, and a reverse map IP → names.
//
// Change tracking is by "cells": small objects whose `gen` goes up when what they stand for changes
// (one per service, per namespace, per IP, plus one global cell that moves on every change). The
// resolver records the cells an answer read; a cached answer is valid while none of them moved. An
// event therefore only invalidates answers about the names it touched.
import { normalizeIP } from '../../src/dns/name.ts';
import type { SlotTable } from './slots.ts';
import type {
  Kind, SlimEndpoint, SlimEndpointSlice, SlimNamespace, SlimPod, SlimPort, SlimService, ZoneSink,
} from './objects.ts';

/**
 * A generation counter standing for one piece of zone data. `slot` is its place in a shared
 * SlotTable (workers), -1 while no worker's reply depends on it.
 */
export interface Cell { gen: number; slot: number }

export function newCell(): Cell { return { gen: 0, slot: -1 }; }

/** The records under one endpoint name of a service (several endpoints may share a hostname). */
export interface EndpointView {
  /** The DNS label: hostname, pod name (endpoint_pod_names) or the dashed address. Lowercase. */
  readonly name: string;
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  /** Ports of the slices the endpoint appears in (for headless SRV records). */
  readonly ports: readonly SlimPort[];
}

export type ServiceKind = 'cluster_ip' | 'headless' | 'external';

/** What DNS needs of one Service and its EndpointSlices, rebuilt whenever either changes. */
export interface ServiceView {
  readonly namespace: string;
  readonly name: string;
  readonly kind: ServiceKind;
  /** ExternalName target as an FQDN (lowercase), "" for other kinds. */
  readonly externalName: string;
  readonly clusterV4: readonly string[];
  readonly clusterV6: readonly string[];
  readonly ports: readonly SlimPort[];
  /** Ready (or published not-ready), non-terminating endpoints, grouped by name, sorted by name. */
  readonly endpoints: readonly EndpointView[];
  readonly byName: ReadonlyMap<string, EndpointView>;
  /** All answered endpoint addresses, deduplicated. */
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  readonly cell: Cell;
}

export type ProgrammingKind = 'cluster_ip' | 'headless_with_selector' | 'headless_without_selector';

export interface ZoneOptions {
  /** Only these namespaces are kept and exposed; empty or absent: all. */
  namespaces?: readonly string[];
  /** Keep EndpointSlices (false for `noendpoints`). Default true. */
  endpoints?: boolean;
  /** Name endpoints without a hostname after their pod (`endpoint_pod_names`). */
  endpointPodNames?: boolean;
  /** Keep pods (pods verified, autopath). Default false. */
  pods?: boolean;
  /**
   * A namespace also exists while it holds a Service (manifest files often leave Namespace objects
   * out). Off for the API, where a Service never outlives its Namespace anyway.
   */
  implicitNamespaces?: boolean;
  /** Clock (ms since epoch), for tests. */
  now?: () => number;
  /** An update with a change time was applied: the DNS programming latency SLI. */
  onProgramming?: (kind: ProgrammingKind, seconds: number) => void;
  /** The number of objects of a kind held changed. */
  onCount?: (kind: Kind, count: number) => void;
}

interface ServiceState {
  readonly key: string;
  svc: SlimService | undefined;
  readonly slices: Map<string, SlimEndpointSlice>;
  readonly cell: Cell;
  view: ServiceView | undefined;
  /** IP → reverse entry this service contributes. */
  rev: Map<string, RevEntry>;
}

/** What one service contributes to an IP's PTR records. */
interface RevEntry {
  readonly clusterIP: boolean;
  /** Endpoint labels with this address (when not a cluster IP). */
  readonly names: readonly string[];
}

/** A PTR target for an address: a service (cluster IP) or one of its endpoint names. */
export interface ReverseTarget {
  readonly view: ServiceView;
  /** Endpoint label, or undefined for the service name itself. */
  readonly endpoint: string | undefined;
}

const svcKey = (ns: string, name: string) => `${ns.toLowerCase()}/${name.toLowerCase()}`;

export class KubeZone implements ZoneSink {
  /** Moves on every change: negative answers and the SOA serial depend on it. */
  readonly global: Cell = newCell();
  private readonly opts: ZoneOptions;
  private readonly allowed: ReadonlySet<string> | undefined;
  private readonly now: () => number;
  private readonly services = new Map<string, ServiceState>();
  /** "ns/slice" → service key, so deletes by slice name and relabelled slices find their service. */
  private readonly sliceOwner = new Map<string, string>();
  private readonly namespaces = new Map<string, SlimNamespace>();
  private readonly nsCells = new Map<string, Cell>();
  /** Services per namespace (for implicit namespaces). */
  private readonly nsServices = new Map<string, number>();
  private readonly pods = new Map<string, SlimPod>();
  private readonly podsByIP = new Map<string, Set<string>>();
  private readonly reverse = new Map<string, Map<string, RevEntry>>();
  private readonly ipCells = new Map<string, Cell>();
  private serviceCount = 0;
  private serialValue: number;
  private serialDirty = false;
  /** With workers: where cells that workers' replies depend on are mirrored. */
  private slots: SlotTable | undefined;

  constructor(opts: ZoneOptions = {}) {
    this.opts = opts;
    this.allowed = opts.namespaces && opts.namespaces.length > 0 ? new Set(opts.namespaces.map((n) => n.toLowerCase())) : undefined;
    this.now = opts.now ?? Date.now;
    this.serialValue = Math.floor(this.now() / 1000) >>> 0;
  }

  /** Mirror cell changes into a shared slot table (main thread, with workers). */
  shareChanges(table: SlotTable): void { this.slots = table; }

  // ---------------------------------------------------------------- reads (resolver side)

  /** SOA serial: seconds since the epoch of the last change, and always larger after a change. */
  get serial(): number {
    if (this.serialDirty) {
      this.serialDirty = false;
      this.serialValue = Math.max(this.serialValue + 1, Math.floor(this.now() / 1000)) >>> 0;
    }
    return this.serialValue;
  }

  /** Is the namespace configured and present? Records the namespace's cell (or global when absent). */
  namespaceExposed(ns: string, deps: Cell[]): boolean {
    const cell = this.nsCells.get(ns);
    if (cell && this.nsExists(ns)) { deps.push(cell); return true; }
    deps.push(this.global);
    return false;
  }

  /** The view of a service, or undefined when there is no such Service (records global then). */
  service(ns: string, name: string, deps: Cell[]): ServiceView | undefined {
    const st = this.services.get(`${ns}/${name}`);
    if (st?.view) { deps.push(st.cell); return st.view; }
    deps.push(this.global);
    return undefined;
  }

  /**
   * PTR targets for an address: the service owning it as a cluster IP if there is one, else every
   * endpoint name carrying it. Exposure is already applied (objects outside `namespaces` are not kept).
   */
  reverseTargets(ip: string, deps: Cell[]): ReverseTarget[] {
    const entries = this.reverse.get(ip);
    const cell = this.ipCells.get(ip);
    if (!entries || !cell) { deps.push(this.global); return []; }
    deps.push(cell);
    const out: ReverseTarget[] = [];
    for (const [key, e] of entries) {
      const st = this.services.get(key);
      if (!st?.view || !this.nsExists(st.view.namespace)) continue;
      deps.push(st.cell, this.nsCells.get(st.view.namespace)!);
      if (e.clusterIP) return [{ view: st.view, endpoint: undefined }];
      for (const n of e.names) out.push({ view: st.view, endpoint: n });
    }
    if (out.length === 0) deps.push(this.global);
    return out;
  }

  /** Is there a (running) pod with this address in this namespace? */
  hasPod(ip: string, ns: string, deps: Cell[]): boolean {
    const keys = this.podsByIP.get(ip);
    const cell = this.ipCells.get(ip);
    if (keys && cell) {
      deps.push(cell);
      for (const k of keys) if (this.pods.get(k)?.namespace.toLowerCase() === ns) return true;
    }
    deps.push(this.global);
    return false;
  }

  /** The namespace of a pod with this address, if pods are kept (autopath). Records the address's cell. */
  namespaceOfIP(ip: string, deps?: Cell[]): string | undefined {
    const n = normalizeIP(ip);
    const keys = n === undefined ? undefined : this.podsByIP.get(n);
    const cell = n === undefined ? undefined : this.ipCells.get(n);
    if (!keys || !cell) { deps?.push(this.global); return undefined; }
    deps?.push(cell);
    // Certain or nothing (autopath must never guess): an IP shared by pods of several namespaces, or
    // by a hostNetwork pod (its node's IP), names no namespace.
    let ns: string | undefined;
    for (const k of keys) {
      const p = this.pods.get(k);
      if (!p) continue;
      if (p.hostNetwork || (ns !== undefined && ns !== p.namespace)) return undefined;
      ns = p.namespace;
    }
    return ns;
  }

  /**
   * The addresses this DNS server is reached at: the cluster IPs of the Services whose endpoints are
   * one of `localIPs` (headless: the local IPs themselves), else `localIPs`. Depends on everything.
   */
  serverAddresses(localIPs: readonly string[], deps: Cell[]): string[] {
    deps.push(this.global);
    const out = new Set<string>();
    for (const raw of localIPs) {
      const ip = normalizeIP(raw);
      if (ip === undefined) continue;
      const entries = this.reverse.get(ip);
      if (!entries) continue;
      for (const [key, e] of entries) {
        if (e.clusterIP) continue;
        const v = this.services.get(key)?.view;
        if (!v || !this.nsExists(v.namespace)) continue;
        if (v.kind === 'cluster_ip') for (const c of [...v.clusterV4, ...v.clusterV6]) out.add(c);
        else if (v.kind === 'headless') out.add(ip);
      }
    }
    if (out.size === 0) for (const raw of localIPs) { const ip = normalizeIP(raw); if (ip !== undefined) out.add(ip); }
    return [...out];
  }

  /** Counts of objects held, by kind. */
  counts(): Record<Kind, number> {
    return { Service: this.serviceCount, EndpointSlice: this.sliceOwner.size, Namespace: this.namespaces.size, Pod: this.pods.size };
  }

  // ---------------------------------------------------------------- writes (ZoneSink)

  upsertService(s: SlimService): void {
    if (!this.keep(s.namespace)) return;
    const key = svcKey(s.namespace, s.name);
    let st = this.services.get(key);
    if (st?.svc && sameIgnoringChangeTime(st.svc, s)) return;
    st ??= this.newState(key);
    if (!st.svc) { this.serviceCount++; this.adjustNsServices(s.namespace, +1); }
    st.svc = s;
    this.rebuild(st);
    if (s.changedAt !== undefined && st.view && st.view.kind !== 'external') {
      const kind: ProgrammingKind = st.view.kind === 'cluster_ip' ? 'cluster_ip'
        : [...st.slices.values()].some((e) => e.changedAt !== undefined) ? 'headless_with_selector' : 'headless_without_selector';
      this.programmed(kind, s.changedAt);
    }
    this.count('Service');
  }

  deleteService(namespace: string, name: string): void {
    const st = this.services.get(svcKey(namespace, name));
    if (!st?.svc) return;
    this.serviceCount--;
    this.adjustNsServices(st.svc.namespace, -1);
    st.svc = undefined;
    this.rebuild(st);
    this.count('Service');
  }

  upsertEndpointSlice(e: SlimEndpointSlice): void {
    if (this.opts.endpoints === false || !this.keep(e.namespace)) return;
    const sliceKey = svcKey(e.namespace, e.name);
    const key = svcKey(e.namespace, e.service);
    const owner = this.sliceOwner.get(sliceKey);
    if (owner !== undefined && owner !== key) this.removeSlice(sliceKey, owner);
    let st = this.services.get(key);
    const old = st?.slices.get(sliceKey);
    if (old && sameIgnoringChangeTime(old, e)) return;
    st ??= this.newState(key);
    st.slices.set(sliceKey, e);
    this.sliceOwner.set(sliceKey, key);
    this.rebuild(st);
    if (e.changedAt !== undefined && st.view && st.view.kind !== 'external') {
      // The trigger-time annotation is written by the EndpointSlice controller, which only manages
      // slices of Services with a selector.
      this.programmed(st.view.kind === 'cluster_ip' ? 'cluster_ip' : 'headless_with_selector', e.changedAt);
    }
    this.count('EndpointSlice');
  }

  deleteEndpointSlice(namespace: string, name: string): void {
    const sliceKey = svcKey(namespace, name);
    const owner = this.sliceOwner.get(sliceKey);
    if (owner === undefined) return;
    this.removeSlice(sliceKey, owner);
    this.count('EndpointSlice');
  }

  upsertNamespace(n: SlimNamespace): void {
    if (!this.keep(n.name)) return;
    const name = n.name.toLowerCase();
    const old = this.namespaces.get(name);
    if (old && sameIgnoringChangeTime(old, n)) return;
    const existed = this.nsExists(name);
    this.namespaces.set(name, n);
    if (!existed) this.nsBecame(name, true);
    else this.touchGlobal();
    this.count('Namespace');
  }

  deleteNamespace(name: string): void {
    const n = name.toLowerCase();
    if (!this.namespaces.delete(n)) return;
    if (!this.nsExists(n)) this.nsBecame(n, false);
    else this.touchGlobal();
    this.count('Namespace');
  }

  upsertPod(p: SlimPod): void {
    if (!this.opts.pods || !this.keep(p.namespace)) return;
    const key = svcKey(p.namespace, p.name);
    const old = this.pods.get(key);
    if (old && sameIgnoringChangeTime(old, p)) return;
    const ips = p.ips.map(normalizeIP).filter((x): x is string => x !== undefined);
    const slim: SlimPod = p.hostNetwork
      ? { namespace: p.namespace.toLowerCase(), name: p.name, ips, hostNetwork: true }
      : { namespace: p.namespace.toLowerCase(), name: p.name, ips };
    if (old) this.unindexPod(key, old);
    this.pods.set(key, slim);
    for (const ip of ips) {
      let set = this.podsByIP.get(ip);
      if (!set) this.podsByIP.set(ip, set = new Set());
      set.add(key);
      this.bumpIP(ip);
    }
    this.touchGlobal();
    this.count('Pod');
  }

  deletePod(namespace: string, name: string): void {
    const key = svcKey(namespace, name);
    const old = this.pods.get(key);
    if (!old) return;
    this.pods.delete(key);
    this.unindexPod(key, old);
    this.touchGlobal();
    this.count('Pod');
  }

  replaceAll(kind: 'Service', items: SlimService[]): void;
  replaceAll(kind: 'EndpointSlice', items: SlimEndpointSlice[]): void;
  replaceAll(kind: 'Namespace', items: SlimNamespace[]): void;
  replaceAll(kind: 'Pod', items: SlimPod[]): void;
  replaceAll(kind: Kind, items: SlimService[] | SlimEndpointSlice[] | SlimNamespace[] | SlimPod[]): void {
    switch (kind) {
      case 'Service': {
        const list = items as SlimService[];
        const keep = new Set(list.map((s) => svcKey(s.namespace, s.name)));
        for (const st of [...this.services.values()]) {
          if (st.svc && !keep.has(st.key)) this.deleteService(st.svc.namespace, st.svc.name);
        }
        for (const s of list) this.upsertService(s);
        break;
      }
      case 'EndpointSlice': {
        const list = items as SlimEndpointSlice[];
        const keep = new Set(list.map((e) => svcKey(e.namespace, e.name)));
        for (const sliceKey of [...this.sliceOwner.keys()]) {
          if (!keep.has(sliceKey)) {
            const [ns, name] = splitKey(sliceKey);
            this.deleteEndpointSlice(ns, name);
          }
        }
        for (const e of list) this.upsertEndpointSlice(e);
        break;
      }
      case 'Namespace': {
        const list = items as SlimNamespace[];
        const keep = new Set(list.map((n) => n.name.toLowerCase()));
        for (const n of [...this.namespaces.keys()]) if (!keep.has(n)) this.deleteNamespace(n);
        for (const n of list) this.upsertNamespace(n);
        break;
      }
      case 'Pod': {
        const list = items as SlimPod[];
        const keep = new Set(list.map((p) => svcKey(p.namespace, p.name)));
        for (const [key, p] of [...this.pods]) if (!keep.has(key)) this.deletePod(p.namespace, p.name);
        for (const p of list) this.upsertPod(p);
        break;
      }
    }
  }

  // ---------------------------------------------------------------- internals

  private keep(ns: string): boolean {
    return this.allowed === undefined || this.allowed.has(ns.toLowerCase());
  }

  private nsExists(ns: string): boolean {
    if (this.allowed !== undefined && !this.allowed.has(ns)) return false;
    return this.namespaces.has(ns) || (this.opts.implicitNamespaces === true && (this.nsServices.get(ns) ?? 0) > 0);
  }

  private adjustNsServices(namespace: string, delta: number): void {
    const ns = namespace.toLowerCase();
    const before = this.nsExists(ns);
    const n = (this.nsServices.get(ns) ?? 0) + delta;
    if (n > 0) this.nsServices.set(ns, n); else this.nsServices.delete(ns);
    const after = this.nsExists(ns);
    if (before !== after) this.nsBecame(ns, after);
  }

  /** A namespace started or stopped existing: answers about anything in it may change. */
  private nsBecame(ns: string, exists: boolean): void {
    const old = this.nsCells.get(ns);
    if (old) { this.bump(old); this.nsCells.delete(ns); }
    if (exists) this.nsCells.set(ns, newCell());
    // Reverse answers filter on namespace existence; they depend on the namespace's cell.
    this.touchGlobal();
  }

  private newState(key: string): ServiceState {
    const st: ServiceState = { key, svc: undefined, slices: new Map(), cell: newCell(), view: undefined, rev: new Map() };
    this.services.set(key, st);
    return st;
  }

  private removeSlice(sliceKey: string, owner: string): void {
    this.sliceOwner.delete(sliceKey);
    const st = this.services.get(owner);
    if (!st || !st.slices.delete(sliceKey)) return;
    this.rebuild(st);
  }

  /** Recompute a service's view and reverse entries after a change to it or its slices. */
  private rebuild(st: ServiceState): void {
    this.bump(st.cell);
    st.view = st.svc ? buildView(st.svc, st.slices, st.cell, this.opts.endpointPodNames === true) : undefined;
    const rev = reverseEntries(st.view);
    for (const [ip, e] of st.rev) {
      const n = rev.get(ip);
      if (n && sameRev(n, e)) continue;
      const m = this.reverse.get(ip);
      if (m) { m.delete(st.key); if (m.size === 0) this.reverse.delete(ip); }
      this.bumpIP(ip);
    }
    for (const [ip, e] of rev) {
      const o = st.rev.get(ip);
      if (o && sameRev(o, e)) continue;
      let m = this.reverse.get(ip);
      if (!m) this.reverse.set(ip, m = new Map());
      m.set(st.key, e);
      this.bumpIP(ip);
    }
    st.rev = rev;
    if (!st.svc && st.slices.size === 0) this.services.delete(st.key);
    this.touchGlobal();
  }

  private unindexPod(key: string, p: SlimPod): void {
    for (const ip of p.ips) {
      const set = this.podsByIP.get(ip);
      if (set) { set.delete(key); if (set.size === 0) this.podsByIP.delete(ip); }
      this.bumpIP(ip);
    }
  }

  /** Invalidate answers about an address; keep its cell only while something uses the address. */
  private bumpIP(ip: string): void {
    const c = this.ipCells.get(ip);
    if (c) this.bump(c);
    const used = this.reverse.has(ip) || this.podsByIP.has(ip);
    if (!used) this.ipCells.delete(ip);
    else if (!c) this.ipCells.set(ip, newCell());
  }

  private touchGlobal(): void {
    this.bump(this.global);
    this.serialDirty = true;
  }

  /** A cell moved: cached replies that read it are stale (here, and in workers through its slot). */
  private bump(c: Cell): void {
    c.gen++;
    if (c.slot >= 0) this.slots?.bump(c.slot);
  }

  private programmed(kind: ProgrammingKind, changedAt: number): void {
    this.opts.onProgramming?.(kind, Math.max(0, this.now() - changedAt) / 1000);
  }

  private count(kind: Kind): void {
    this.opts.onCount?.(kind, this.counts()[kind]);
  }
}

function splitKey(k: string): [string, string] {
  const i = k.indexOf('/');
  return [k.slice(0, i), k.slice(i + 1)];
}

function sameRev(a: RevEntry, b: RevEntry): boolean {
  return a.clusterIP === b.clusterIP && a.names.length === b.names.length && a.names.every((n, i) => n === b.names[i]);
}

/** Deep equality of two slim objects, ignoring `changedAt` (it changes without changing DNS data). */
export function sameIgnoringChangeTime(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => sameIgnoringChangeTime(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) {
    if (k === 'changedAt') continue;
    if (!sameIgnoringChangeTime(ao[k], bo[k])) return false;
  }
  return true;
}

/** Headless: no cluster IP (empty or "None"). */
export function isHeadless(s: SlimService): boolean {
  return s.clusterIPs.length === 0 || s.clusterIPs.every((ip) => ip === '' || ip === 'None');
}

/** An endpoint is answered when it is not terminating and ready (or its Service publishes not-ready ones). */
export function answered(e: SlimEndpoint, publishNotReady: boolean): boolean {
  return !e.terminating && (e.ready || publishNotReady);
}

/** The address as a DNS label: dots, or colons, become dashes ("10-244-1-5", "fd00--5"). */
export function dashedIP(ip: string): string {
  const d = ip.replace(/[.:]/g, '-');
  // A trailing "::" would leave a label ending in '-'; CoreDNS appends a 0 (the same address).
  return d.endsWith('-') ? d + '0' : d;
}

/** The DNS label of an endpoint address: hostname, else pod name (endpoint_pod_names), else dashed IP. */
export function endpointLabel(e: SlimEndpoint, ip: string, podNames: boolean): string {
  if (e.hostname) return e.hostname.toLowerCase();
  if (podNames && e.podName && !e.podName.includes('.')) return e.podName.toLowerCase();
  return dashedIP(ip);
}

function buildView(s: SlimService, slices: ReadonlyMap<string, SlimEndpointSlice>, cell: Cell, podNames: boolean): ServiceView {
  const kind: ServiceKind = s.type === 'ExternalName' ? 'external' : isHeadless(s) ? 'headless' : 'cluster_ip';
  const clusterV4: string[] = [];
  const clusterV6: string[] = [];
  if (kind === 'cluster_ip') {
    for (const raw of s.clusterIPs) {
      const ip = normalizeIP(raw);
      if (ip === undefined) continue;
      const list = ip.includes(':') ? clusterV6 : clusterV4;
      if (!list.includes(ip)) list.push(ip);
    }
  }
  const groups = new Map<string, { name: string; v4: string[]; v6: string[]; ports: SlimPort[] }>();
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  if (kind !== 'external') {
    const ordered = [...slices.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [, slice] of ordered) {
      if (slice.addressType === 'FQDN') continue;
      for (const e of slice.endpoints) {
        if (!answered(e, s.publishNotReadyAddresses)) continue;
        for (const raw of e.addresses) {
          const ip = normalizeIP(raw);
          if (ip === undefined) continue;
          const name = endpointLabel(e, ip, podNames);
          let g = groups.get(name);
          if (!g) groups.set(name, g = { name, v4: [], v6: [], ports: [] });
          const six = ip.includes(':');
          const list = six ? g.v6 : g.v4;
          if (!list.includes(ip)) list.push(ip);
          (six ? v6 : v4).add(ip);
          for (const p of slice.ports) {
            if (!g.ports.some((q) => q.name === p.name && q.port === p.port && q.protocol === p.protocol)) g.ports.push(p);
          }
        }
      }
    }
  }
  const endpoints = [...groups.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    namespace: s.namespace.toLowerCase(), name: s.name.toLowerCase(), kind,
    externalName: kind === 'external' && s.externalName ? (s.externalName.toLowerCase().replace(/\.?$/, '.')) : '',
    clusterV4, clusterV6, ports: s.ports, endpoints, byName: new Map(endpoints.map((e) => [e.name, e])),
    v4: [...v4], v6: [...v6], cell,
  };
}

function reverseEntries(v: ServiceView | undefined): Map<string, RevEntry> {
  const out = new Map<string, RevEntry>();
  if (!v) return out;
  for (const ip of [...v.clusterV4, ...v.clusterV6]) out.set(ip, { clusterIP: true, names: [] });
  const names = new Map<string, string[]>();
  for (const e of v.endpoints) {
    for (const ip of [...e.v4, ...e.v6]) {
      if (out.has(ip)) continue;
      let l = names.get(ip);
      if (!l) names.set(ip, l = []);
      l.push(e.name);
    }
  }
  for (const [ip, l] of names) out.set(ip, { clusterIP: false, names: l });
  return out;
}
