// The in-memory cluster zone: slim objects fed by a source (API watch or manifests), kept in indexes
// the resolver reads without scanning: services by namespace/name (each with a prebuilt view of its
// ready endpoints), namespaces, pods by IP, and a reverse map IP → services. What is kept is compact:
// addresses packed as numbers, no copy of the slim objects the sources hand over (see CompactSlice).
//
// Change tracking is by "cells": small objects whose `gen` goes up when what they stand for changes
// (one per service, per namespace, per IP, plus one global cell that moves on every change). The
// resolver records the cells an answer read; a cached answer is valid while none of them moved. An
// event therefore only invalidates answers about the names it touched.
import { compressIPv6, expandIPv6, normalizeIP } from '../../src/dns/name.ts';
import { PodTable, ipv4Word, type IPKey } from './pods.ts';
import type { SlotTable } from './slots.ts';
import type {
  Kind, Replacement, SlimEndpoint, SlimEndpointSlice, SlimNamespace, SlimOf, SlimPod, SlimPort, SlimService, ZoneSink,
} from './objects.ts';

/**
 * A generation counter standing for one piece of zone data. `slot` is its place in a shared
 * SlotTable (workers), -1 while no worker's reply depends on it.
 */
export interface Cell { gen: number; slot: number }

export function newCell(): Cell { return { gen: 0, slot: -1 }; }

/** The records under one endpoint name of a service (several endpoints may share a hostname). Built on demand. */
export interface EndpointView {
  /** The DNS label: hostname, pod name (endpoint_pod_names) or the dashed address. Lowercase. */
  readonly name: string;
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  /** Ports of the slices the endpoint appears in (for headless SRV records). */
  readonly ports: readonly SlimPort[];
}

export type ServiceKind = 'cluster_ip' | 'headless' | 'external';

/**
 * One EndpointSlice as the zone keeps it: only the addresses DNS may answer (terminating ones are
 * dropped at ingest), packed as numbers, and the labels that are not the dashed address. The slim
 * object it came from is not retained. Addresses are numbered IPv4 first, then IPv6.
 */
export interface CompactSlice {
  /** "ns/name", lowercase (shared with the zone's slice index). */
  readonly key: string;
  /** Interned: equal port lists are one array. */
  readonly ports: readonly SlimPort[];
  /** IPv4 addresses as int32 (small integers: no allocation per address). */
  readonly v4: readonly number[];
  /** IPv6 addresses, 4 int32 words each. */
  readonly v6: readonly number[];
  /** Per address: its label when it is not the dashed address (hostname, pod name); undefined when none has one. */
  readonly labels: readonly (string | undefined)[] | undefined;
  /** Numbers of the not-ready addresses (answered only when the Service publishes not-ready addresses). */
  readonly notReady: readonly number[] | undefined;
  /** The slice carried a change-trigger time (it is managed by the EndpointSlice controller). */
  readonly changeTime: boolean;
}

/** Endpoint services above this many addresses get a label index (built on first lookup). */
const INDEX_ABOVE = 64;

/**
 * What DNS needs of one Service and its EndpointSlices, rebuilt whenever either changes. The
 * endpoint records are derived on demand from the compact slices (answers are cached by the handler).
 */
export class ServiceView {
  readonly namespace: string;
  readonly name: string;
  readonly kind: ServiceKind;
  /** ExternalName target as an FQDN (lowercase), "" for other kinds. */
  readonly externalName: string;
  readonly clusterV4: readonly string[];
  readonly clusterV6: readonly string[];
  readonly ports: readonly SlimPort[];
  readonly publishNotReady: boolean;
  /** The Service's slices, sorted by key. */
  readonly slices: readonly CompactSlice[];
  readonly cell: Cell;
  /** Some endpoint is answered (ready or published not-ready, not terminating). */
  readonly hasEndpoints: boolean;
  private index: Map<string, EndpointView> | undefined;

  constructor(spec: ServiceSpec, slices: readonly CompactSlice[], cell: Cell) {
    this.namespace = spec.namespace;
    this.name = spec.name;
    this.kind = spec.kind;
    this.externalName = spec.externalName;
    this.clusterV4 = spec.clusterV4;
    this.clusterV6 = spec.clusterV6;
    this.ports = spec.ports;
    this.publishNotReady = spec.publishNotReady;
    this.slices = slices;
    this.cell = cell;
    this.index = undefined;
    this.hasEndpoints = spec.kind !== 'external' && answeredCount(slices, spec.publishNotReady) > 0;
  }

  /** Answered endpoints, grouped by name, sorted by name. */
  get endpoints(): EndpointView[] {
    return [...groups(this, undefined).values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The endpoint records under one label. */
  endpoint(label: string): EndpointView | undefined {
    if (answeredCount(this.slices, this.publishNotReady) <= INDEX_ABOVE) return groups(this, label).get(label);
    this.index ??= groups(this, undefined);
    return this.index.get(label);
  }

  /** All answered endpoint addresses, deduplicated. */
  get v4(): string[] { return this.addresses(false); }
  get v6(): string[] { return this.addresses(true); }

  private addresses(six: boolean): string[] {
    const seen = new Set<number | string>();
    const out: string[] = [];
    if (this.kind === 'external') return out;
    for (const s of this.slices) {
      const n = six ? s.v6.length / 4 : s.v4.length;
      for (let i = 0; i < n; i++) {
        const at = six ? s.v4.length + i : i;
        if (!isAnswered(s, at, this.publishNotReady)) continue;
        const ip = six ? formatV6(s.v6, i * 4) : formatV4(s.v4[i]!);
        const k = six ? ip : s.v4[i]!;
        if (seen.has(k)) continue;
        seen.add(k);
        out.push(ip);
      }
    }
    return out;
  }
}

/** The Service fields a view is made of (derived from the SlimService once). */
interface ServiceSpec {
  readonly namespace: string;
  readonly name: string;
  readonly kind: ServiceKind;
  readonly externalName: string;
  readonly clusterV4: readonly string[];
  readonly clusterV6: readonly string[];
  readonly ports: readonly SlimPort[];
  readonly publishNotReady: boolean;
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
  /**
   * A bulk write: a page added to a replacement (beginReplace), or a replacement ended (also each
   * replaceAll). A bulk load is over when these stop coming.
   */
  onBulkWrite?: (kind: Kind) => void;
}

interface ServiceState {
  readonly key: string;
  /** Present while the Service is. */
  view: ServiceView | undefined;
  /** Its EndpointSlices, sorted by key; replaced (never mutated) on change, so a view can share it. */
  slices: readonly CompactSlice[];
  readonly cell: Cell;
}


/** A PTR target for an address: a service (cluster IP) or one of its endpoint names. */
export interface ReverseTarget {
  readonly view: ServiceView;
  /** Endpoint label, or undefined for the service name itself. */
  readonly endpoint: string | undefined;
}

/**
 * Answers about addresses depend on one of this many cells, by address. A cell per address cost ~100
 * bytes per endpoint; sharing one between addresses only makes a change invalidate a few more cached
 * PTR/pod answers.
 */
const IP_CELLS = 4096;

const svcKey = (ns: string, name: string) => `${ns.toLowerCase()}/${name.toLowerCase()}`;

export class KubeZone implements ZoneSink {
  /** Moves on every change: negative answers and the SOA serial depend on it. */
  readonly global: Cell = newCell();
  private readonly opts: ZoneOptions;
  private readonly allowed: ReadonlySet<string> | undefined;
  private readonly now: () => number;
  private readonly podNames: boolean;
  private readonly services = new Map<string, ServiceState>();
  /** "ns/slice" → service key, so deletes by slice name and relabelled slices find their service. */
  private readonly sliceOwner = new Map<string, string>();
  private readonly namespaces = new Map<string, SlimNamespace>();
  private readonly nsCells = new Map<string, Cell>();
  /** Services per namespace (for implicit namespaces). */
  private readonly nsServices = new Map<string, number>();
  /** Running pods: namespace, addresses, hostNetwork (pods.ts). */
  private readonly pods: PodTable;
  /** A pod change moved an address's cell since the last check. */
  private podsMoved = false;
  /** Address → the services having it as a cluster IP or an answered endpoint address. */
  private readonly reverse = new Map<IPKey, ServiceState | ServiceState[]>();
  private readonly ipCells = new Array<Cell | undefined>(IP_CELLS).fill(undefined);
  private readonly strings = new Interner();
  private serviceCount = 0;
  private serialValue: number;
  private serialDirty = false;
  /** With workers: where cells that workers' replies depend on are mirrored. */
  private slots: SlotTable | undefined;

  constructor(opts: ZoneOptions = {}) {
    this.opts = opts;
    this.allowed = opts.namespaces && opts.namespaces.length > 0 ? new Set(opts.namespaces.map((n) => n.toLowerCase())) : undefined;
    this.now = opts.now ?? Date.now;
    this.podNames = opts.endpointPodNames === true;
    this.serialValue = Math.floor(this.now() / 1000) >>> 0;
    this.pods = new PodTable((key) => { this.bumpIP(key); this.podsMoved = true; });
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
    const key = ipKey(ip);
    const entry = key === undefined ? undefined : this.reverse.get(key);
    if (key === undefined || entry === undefined) { deps.push(this.global); return []; }
    deps.push(this.ipCell(key));
    const out: ReverseTarget[] = [];
    for (const st of Array.isArray(entry) ? entry : [entry]) {
      const v = st.view;
      if (!v || !this.nsExists(v.namespace)) continue;
      deps.push(st.cell, this.nsCells.get(v.namespace)!);
      if (hasClusterIP(v, ip)) return [{ view: v, endpoint: undefined }];
      for (const n of labelsOf(v, key)) out.push({ view: v, endpoint: n });
    }
    if (out.length === 0) deps.push(this.global);
    return out;
  }

  /** Is there a (running) pod with this address in this namespace? */
  hasPod(ip: string, ns: string, deps: Cell[]): boolean {
    const key = ipKey(ip);
    if (key !== undefined && this.pods.has(key)) {
      deps.push(this.ipCell(key));
      if (this.pods.hasPod(key, ns)) return true;
    }
    deps.push(this.global);
    return false;
  }

  /** The namespace of a pod with this address, if pods are kept (autopath). Records the address's cell. */
  namespaceOfIP(ip: string, deps?: Cell[]): string | undefined {
    const key = podIPKey(ip);
    if (key === undefined || !this.pods.has(key)) { deps?.push(this.global); return undefined; }
    deps?.push(this.ipCell(key));
    // Certain or nothing (autopath must never guess): an IP shared by pods of several namespaces, or
    // by a hostNetwork pod (its node's IP), names no namespace.
    return this.pods.namespaceOf(key);
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
      const key = ip === undefined ? undefined : ipKey(ip);
      if (ip === undefined || key === undefined) continue;
      const entry = this.reverse.get(key);
      if (!entry) continue;
      for (const st of Array.isArray(entry) ? entry : [entry]) {
        const v = st.view;
        if (!v || !this.nsExists(v.namespace) || hasClusterIP(v, ip)) continue;
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
    const spec = this.specOf(s);
    if (st?.view && sameSpec(st.view, spec)) return;
    st ??= this.newState(key);
    if (!st.view) { this.serviceCount++; this.adjustNsServices(s.namespace, +1); }
    this.rebuild(st, spec);
    if (s.changedAt !== undefined && st.view && st.view.kind !== 'external') {
      const kind: ProgrammingKind = st.view.kind === 'cluster_ip' ? 'cluster_ip'
        : st.slices.some((e) => e.changeTime) ? 'headless_with_selector' : 'headless_without_selector';
      this.programmed(kind, s.changedAt);
    }
    this.count('Service');
  }

  deleteService(namespace: string, name: string): void {
    const st = this.services.get(svcKey(namespace, name));
    if (!st?.view) return;
    this.serviceCount--;
    this.adjustNsServices(st.view.namespace, -1);
    this.rebuild(st, undefined);
    this.count('Service');
  }

  upsertEndpointSlice(e: SlimEndpointSlice): void {
    if (this.opts.endpoints === false || !this.keep(e.namespace)) return;
    const sliceKey = svcKey(e.namespace, e.name);
    const key = svcKey(e.namespace, e.service);
    const owner = this.sliceOwner.get(sliceKey);
    if (owner !== undefined && owner !== key) this.removeSlice(sliceKey, owner);
    let st = this.services.get(key);
    const old = st?.slices.find((x) => x.key === sliceKey);
    const compact = this.compactSlice(old?.key ?? sliceKey, e);
    if (old && sameSlice(old, compact)) return;
    st ??= this.newState(key);
    st.slices = withSlice(st.slices, compact);
    this.sliceOwner.set(compact.key, st.key);
    this.rebuild(st, st.view);
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
    const before = this.pods.size;
    this.pods.upsert(p.namespace.toLowerCase(), p.name.toLowerCase(), podKeys(p.ips), p.hostNetwork === true);
    this.podsChanged(before);
  }

  deletePod(namespace: string, name: string): void {
    const before = this.pods.size;
    this.pods.remove(namespace.toLowerCase(), name.toLowerCase());
    this.podsChanged(before);
  }

  replaceAll(kind: 'Service', items: SlimService[]): void;
  replaceAll(kind: 'EndpointSlice', items: SlimEndpointSlice[]): void;
  replaceAll(kind: 'Namespace', items: SlimNamespace[]): void;
  replaceAll(kind: 'Pod', items: SlimPod[]): void;
  replaceAll(kind: Kind, items: SlimService[] | SlimEndpointSlice[] | SlimNamespace[] | SlimPod[]): void {
    const r = this.beginReplace(kind) as Replacement<unknown>;
    r.add(items);
    r.end();
  }

  /**
   * Replace a kind page by page: each page is upserted as it is added (unchanged objects cost a
   * comparison), and end() deletes what no page held. Only the keys seen are kept meanwhile.
   */
  beginReplace<K extends Kind>(kind: K): Replacement<SlimOf[K]> {
    const seen = new Set<string>();
    let ended = false;
    const check = () => { if (ended) throw new Error(`replacement of ${kind} already ended`); };
    const bulk = this.opts.onBulkWrite;
    const added = () => bulk?.(kind);
    const done = () => { ended = true; bulk?.(kind); };
    switch (kind) {
      case 'Service': {
        const r: Replacement<SlimService> = {
          add: (items) => { check(); for (const s of items) { seen.add(svcKey(s.namespace, s.name)); this.upsertService(s); } added(); },
          end: () => {
            check();
            for (const st of [...this.services.values()]) {
              if (st.view && !seen.has(st.key)) this.deleteService(st.view.namespace, st.view.name);
            }
            done();
          },
        };
        return r as Replacement<SlimOf[K]>;
      }
      case 'EndpointSlice': {
        const r: Replacement<SlimEndpointSlice> = {
          add: (items) => { check(); for (const e of items) { seen.add(svcKey(e.namespace, e.name)); this.upsertEndpointSlice(e); } added(); },
          end: () => {
            check();
            for (const sliceKey of [...this.sliceOwner.keys()]) {
              if (!seen.has(sliceKey)) { const [ns, name] = splitKey(sliceKey); this.deleteEndpointSlice(ns, name); }
            }
            done();
          },
        };
        return r as Replacement<SlimOf[K]>;
      }
      case 'Namespace': {
        const r: Replacement<SlimNamespace> = {
          add: (items) => { check(); for (const n of items) { seen.add(n.name.toLowerCase()); this.upsertNamespace(n); } added(); },
          end: () => {
            check();
            for (const n of [...this.namespaces.keys()]) if (!seen.has(n)) this.deleteNamespace(n);
            done();
          },
        };
        return r as Replacement<SlimOf[K]>;
      }
      default: {
        // Pods: the table marks what the replacement upserts and sweeps the rest at the end.
        const table = this.pods.beginReplace();
        const r: Replacement<SlimPod> = {
          add: (items) => { check(); for (const p of items) this.upsertPod(p); added(); },
          end: () => {
            check();
            const before = this.pods.size;
            table.end();
            this.podsChanged(before);
            done();
          },
        };
        return r as Replacement<SlimOf[K]>;
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
    const st: ServiceState = { key, view: undefined, slices: EMPTY_SLICES, cell: newCell() };
    this.services.set(key, st);
    return st;
  }

  private removeSlice(sliceKey: string, owner: string): void {
    this.sliceOwner.delete(sliceKey);
    const st = this.services.get(owner);
    if (!st) return;
    const rest = st.slices.filter((x) => x.key !== sliceKey);
    if (rest.length === st.slices.length) return;
    st.slices = rest.length === 0 ? EMPTY_SLICES : rest;
    this.rebuild(st, st.view);
  }

  /**
   * Recompute a service's view after a change to it (spec: its new Service fields, undefined when
   * it is gone) or its slices, and move the reverse entries of the addresses it gained or lost.
   * Addresses it keeps need no move: PTR answers also depend on the service's own cell.
   */
  private rebuild(st: ServiceState, spec: ServiceSpec | undefined): void {
    this.bump(st.cell);
    const before = st.view ? addressKeys(st.view) : EMPTY_KEYS;
    st.view = spec ? new ServiceView(spec, st.slices, st.cell) : undefined;
    const after = st.view ? addressKeys(st.view) : EMPTY_KEYS;
    for (const k of before) {
      if (after.has(k)) continue;
      const entry = this.reverse.get(k);
      if (entry === st) this.reverse.delete(k);
      else if (Array.isArray(entry)) {
        const rest = entry.filter((x) => x !== st);
        this.reverse.set(k, rest.length === 1 ? rest[0]! : rest);
      }
      this.bumpIP(k);
    }
    for (const k of after) {
      if (before.has(k)) continue;
      const entry = this.reverse.get(k);
      if (entry === undefined) this.reverse.set(k, st);
      else if (Array.isArray(entry)) entry.push(st);
      else this.reverse.set(k, [entry, st]);
      this.bumpIP(k);
    }
    if (!st.view && st.slices.length === 0) this.services.delete(st.key);
    this.touchGlobal();
  }

  /** The Service fields DNS uses, with shared strings and port lists. */
  private specOf(s: SlimService): ServiceSpec {
    const kind: ServiceKind = s.type === 'ExternalName' ? 'external' : isHeadless(s) ? 'headless' : 'cluster_ip';
    let clusterV4: string[] = [];
    let clusterV6: string[] = [];
    if (kind === 'cluster_ip') {
      for (const raw of s.clusterIPs) {
        const ip = normalizeIP(raw);
        if (ip === undefined) continue;
        const list = ip.includes(':') ? clusterV6 : clusterV4;
        if (!list.includes(ip)) list.push(ip);
      }
    }
    if (clusterV4.length === 0) clusterV4 = EMPTY_STRINGS;
    if (clusterV6.length === 0) clusterV6 = EMPTY_STRINGS;
    return {
      namespace: this.strings.get(s.namespace.toLowerCase()), name: s.name.toLowerCase(), kind,
      externalName: kind === 'external' && s.externalName ? (s.externalName.toLowerCase().replace(/\.?$/, '.')) : '',
      clusterV4, clusterV6, ports: this.strings.ports(s.ports), publishNotReady: s.publishNotReadyAddresses,
    };
  }

  /** The compact form of a slice: answerable addresses packed, labels only where not the dashed address. */
  private compactSlice(key: string, e: SlimEndpointSlice): CompactSlice {
    const v4: number[] = [];
    const v6: number[] = [];
    const labels4: (string | undefined)[] = [];
    const labels6: (string | undefined)[] = [];
    const notReady4: number[] = [];
    const notReady6: number[] = [];
    let labelled = false;
    if (e.addressType !== 'FQDN') {
      for (const ep of e.endpoints) {
        if (ep.terminating) continue;
        const label = ep.hostname ? ep.hostname.toLowerCase()
          : this.podNames && ep.podName && !ep.podName.includes('.') ? ep.podName.toLowerCase() : undefined;
        if (label !== undefined) labelled = true;
        for (const raw of ep.addresses) {
          const ip = normalizeIP(raw);
          if (ip === undefined) continue;
          if (ip.includes(':')) {
            if (!ep.ready) notReady6.push(v6.length / 4);
            pushV6(v6, ip);
            labels6.push(label);
          } else {
            if (!ep.ready) notReady4.push(v4.length);
            v4.push(v4Word(ip));
            labels4.push(label);
          }
        }
      }
    }
    const n4 = v4.length;
    const notReady = notReady4.length + notReady6.length === 0 ? undefined : [...notReady4, ...notReady6.map((i) => n4 + i)];
    // slice()/concat() copy into exact-size arrays: pushed-to arrays carry spare capacity.
    return {
      key, ports: this.strings.ports(e.ports),
      v4: n4 === 0 ? EMPTY_NUMBERS : v4.slice(), v6: v6.length === 0 ? EMPTY_NUMBERS : v6.slice(),
      labels: labelled ? labels4.concat(labels6) : undefined, notReady, changeTime: e.changedAt !== undefined,
    };
  }

  /** After pod writes: a change moves the global cell (negative answers, the serial) and the count. */
  private podsChanged(sizeBefore: number): void {
    if (!this.podsMoved && this.pods.size === sizeBefore) return;
    this.podsMoved = false;
    this.touchGlobal();
    this.count('Pod');
  }

  /** The cell answers about an address depend on (shared with other addresses: see IP_CELLS). */
  private ipCell(key: IPKey): Cell {
    const i = ipCellIndex(key);
    let c = this.ipCells[i];
    if (!c) this.ipCells[i] = c = newCell();
    return c;
  }

  /** Invalidate answers about an address. */
  private bumpIP(key: IPKey): void {
    const c = this.ipCells[ipCellIndex(key)];
    if (c) this.bump(c);
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

// ------------------------------------------------------------------------------ compact form helpers

const EMPTY_SLICES: readonly CompactSlice[] = Object.freeze([]);
const EMPTY_STRINGS: string[] = Object.freeze([]) as unknown as string[];
const EMPTY_NUMBERS: readonly number[] = Object.freeze([]);
const EMPTY_KEYS: ReadonlySet<IPKey> = new Set();

/** One shared copy of equal namespace strings and port lists (most Services share a few of each). */
class Interner {
  private readonly strs = new Map<string, string>();
  private readonly portLists = new Map<string, readonly SlimPort[]>();

  get(s: string): string {
    const have = this.strs.get(s);
    if (have !== undefined) return have;
    this.strs.set(s, s);
    return s;
  }

  ports(ports: readonly SlimPort[]): readonly SlimPort[] {
    if (ports.length === 0) return EMPTY_PORTS;
    const key = ports.map((p) => `${p.name}/${p.port}/${p.protocol}`).join(',');
    const have = this.portLists.get(key);
    if (have) return have;
    const copy = Object.freeze(ports.map((p) => Object.freeze({ name: p.name, port: p.port, protocol: p.protocol })));
    this.portLists.set(key, copy);
    return copy;
  }
}
const EMPTY_PORTS: readonly SlimPort[] = Object.freeze([]);

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameSpec(a: ServiceSpec, b: ServiceSpec): boolean {
  return a.namespace === b.namespace && a.name === b.name && a.kind === b.kind && a.externalName === b.externalName &&
    sameStrings(a.clusterV4, b.clusterV4) && sameStrings(a.clusterV6, b.clusterV6) && a.ports === b.ports &&
    a.publishNotReady === b.publishNotReady;
}

function sameNumbers(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Same DNS data (the change time is not: it changes without changing an answer). */
function sameSlice(a: CompactSlice, b: CompactSlice): boolean {
  if (a.key !== b.key || a.ports !== b.ports || !sameNumbers(a.v4, b.v4) || !sameNumbers(a.v6, b.v6) || !sameNumbers(a.notReady, b.notReady)) return false;
  if (a.labels === undefined || b.labels === undefined) return a.labels === b.labels;
  return a.labels.length === b.labels.length && a.labels.every((x, i) => x === b.labels![i]);
}

/** The slices with `s` added or replaced, sorted by key (a new array). */
function withSlice(slices: readonly CompactSlice[], s: CompactSlice): readonly CompactSlice[] {
  const out = slices.filter((x) => x.key !== s.key);
  out.push(s);
  if (out.length > 1) out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out;
}

function isAnswered(s: CompactSlice, at: number, publishNotReady: boolean): boolean {
  return publishNotReady || s.notReady === undefined || !s.notReady.includes(at);
}

function answeredCount(slices: readonly CompactSlice[], publishNotReady: boolean): number {
  let n = 0;
  for (const s of slices) n += s.v4.length + s.v6.length / 4 - (publishNotReady || !s.notReady ? 0 : s.notReady.length);
  return n;
}

/** a.b.c.d (canonical) → int32. */
function v4Word(ip: string): number {
  const p = ip.split('.');
  return (Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3]);
}

function formatV4(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
}

function pushV6(out: number[], ip: string): void {
  const h = expandIPv6(ip)!;
  for (let i = 0; i < 8; i += 2) out.push((h[i]! << 16) | h[i + 1]!);
}

function formatV6(words: readonly number[], at: number): string {
  const h: number[] = [];
  for (let i = 0; i < 4; i++) { const w = words[at + i]!; h.push((w >>> 16) & 0xffff, w & 0xffff); }
  return compressIPv6(h);
}

/** The address keys of a pod's addresses as given (any valid form), deduplicated. */
function podKeys(ips: readonly string[]): IPKey[] {
  const out: IPKey[] = [];
  for (const raw of ips) {
    const k = podIPKey(raw);
    if (k !== undefined && !out.includes(k)) out.push(k);
  }
  return out;
}

/** The key of an address in any valid form: IPv4 parsed without allocating, IPv6 canonicalized. */
function podIPKey(ip: string): IPKey | undefined {
  if (ip.includes(':')) return normalizeIP(ip);
  return ipv4Word(ip);
}

/** The map key of a canonical address (undefined if it is none). */
function ipKey(ip: string): IPKey | undefined {
  if (ip.includes(':')) return ip;
  return ip.split('.').length === 4 ? v4Word(ip) : undefined;
}

function ipCellIndex(key: IPKey): number {
  if (typeof key === 'number') return key & (IP_CELLS - 1);
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (Math.imul(h, 31) + key.charCodeAt(i)) | 0;
  return h & (IP_CELLS - 1);
}

/** Every address a service contributes to the reverse map: cluster IPs and answered endpoint addresses. */
function addressKeys(v: ServiceView): Set<IPKey> {
  const out = new Set<IPKey>();
  for (const ip of v.clusterV4) out.add(v4Word(ip));
  for (const ip of v.clusterV6) out.add(ip);
  if (v.kind === 'external') return out;
  for (const s of v.slices) {
    const n4 = s.v4.length;
    for (let i = 0; i < n4; i++) if (isAnswered(s, i, v.publishNotReady)) out.add(s.v4[i]!);
    for (let i = 0; i < s.v6.length / 4; i++) if (isAnswered(s, n4 + i, v.publishNotReady)) out.add(formatV6(s.v6, i * 4));
  }
  return out;
}

function hasClusterIP(v: ServiceView, ip: string): boolean {
  return v.clusterV4.includes(ip) || v.clusterV6.includes(ip);
}

/** The endpoint labels carrying an address, sorted. */
function labelsOf(v: ServiceView, key: IPKey): string[] {
  const out = new Set<string>();
  for (const s of v.slices) {
    const n4 = s.v4.length;
    if (typeof key === 'number') {
      for (let i = 0; i < n4; i++) {
        if (s.v4[i] === key && isAnswered(s, i, v.publishNotReady)) out.add(s.labels?.[i] ?? dashedIP(formatV4(key)));
      }
    } else {
      for (let i = 0; i < s.v6.length / 4; i++) {
        if (isAnswered(s, n4 + i, v.publishNotReady) && formatV6(s.v6, i * 4) === key) out.add(s.labels?.[n4 + i] ?? dashedIP(key));
      }
    }
  }
  return [...out].sort();
}

interface Group { name: string; v4: string[]; v6: string[]; ports: SlimPort[] }

/**
 * The endpoint records of a service by label (only label `only` when given), built from its slices
 * in key order: each address once per label, the ports of every slice the label appears in.
 */
function groups(v: ServiceView, only: string | undefined): Map<string, EndpointView> {
  const out = new Map<string, Group>();
  if (v.kind === 'external') return out;
  for (const s of v.slices) {
    const n4 = s.v4.length;
    const n = n4 + s.v6.length / 4;
    for (let at = 0; at < n; at++) {
      if (!isAnswered(s, at, v.publishNotReady)) continue;
      const six = at >= n4;
      const given = s.labels?.[at];
      if (only !== undefined && given !== undefined && given !== only) continue;
      const ip = six ? formatV6(s.v6, (at - n4) * 4) : formatV4(s.v4[at]!);
      const name = given ?? dashedIP(ip);
      if (only !== undefined && name !== only) continue;
      let g = out.get(name);
      if (!g) out.set(name, g = { name, v4: [], v6: [], ports: [] });
      const list = six ? g.v6 : g.v4;
      if (!list.includes(ip)) list.push(ip);
      for (const p of s.ports) {
        if (!g.ports.some((q) => q.name === p.name && q.port === p.port && q.protocol === p.protocol)) g.ports.push(p);
      }
    }
  }
  return out;
}
