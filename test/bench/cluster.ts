// Synthetic clusters for the benchmarks: a 1,000-Service zone written as manifests (with its dnsperf
// query mix), and big object sets for the test Kubernetes API server (memory, sync, propagation).
// Everything is deterministic (a seeded PRNG), so runs are comparable.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { endpointSlice, namespace, pod, service, type EndpointSpec } from '../kubeapi/objects.ts';
import type { ApiObject, KubeApiServer } from '../kubeapi/server.ts';

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** The i-th address of a /8-ish pool starting at base (e.g. 10.128.0.0): a.b.c.d as text. */
export function ipAt(base: number, i: number): string {
  const n = (base + i) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const ip4 = (a: number, b: number, c: number, d: number) => ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
/** Cluster IPs: 10.96.0.0/12. */
export const serviceIPBase = ip4(10, 96, 0, 0);
/** Endpoint (pod) addresses: 10.128.0.0/9. */
export const podIPBase = ip4(10, 128, 0, 0);

// ---- the 1,000-Service zone (manifests) ----

export interface SmallCluster {
  /** Directory of manifests (one JSON List per namespace). */
  dir: string;
  /** dnsperf lines: 70% A of existing Services, 10% SRV, 20% NXDOMAIN search-path names. */
  queries: string[];
  services: number;
  headless: number;
  endpoints: number;
}

/**
 * 1,000 Services over 20 namespaces: 80% ClusterIP with named ports (http, and grpc on every other
 * one) and 2 ready endpoints each, 20% headless with 3-5 endpoints (half with hostnames, as a
 * StatefulSet's). Namespace `default` is one of the 20.
 */
export function writeSmallCluster(dir: string, opts: { services?: number; namespaces?: number; queries?: number } = {}): SmallCluster {
  const rand = prng(1);
  const nServices = opts.services ?? 1000;
  const nNamespaces = opts.namespaces ?? 20;
  const nsNames = Array.from({ length: nNamespaces }, (_, i) => (i === 0 ? 'default' : `ns${String(i).padStart(2, '0')}`));
  const perNs = new Map<string, ApiObject[]>(nsNames.map((n) => [n, [namespace(n)]]));
  const names: Array<{ ns: string; name: string; headless: boolean; ports: string[] }> = [];
  let ep = 0;
  let headlessCount = 0;
  for (let i = 0; i < nServices; i++) {
    const ns = nsNames[i % nNamespaces]!;
    const headless = i % 5 === 4;
    const name = headless ? `db-${i}` : `svc-${i}`;
    const ports = headless ? [{ name: 'db', port: 5432 }] : i % 2 === 0 ? [{ name: 'http', port: 80 }, { name: 'grpc', port: 9090 }] : [{ name: 'http', port: 8080 }];
    const objs = perNs.get(ns)!;
    objs.push(service(ns, name, headless ? { clusterIPs: ['None'], ports } : { clusterIP: ipAt(serviceIPBase, 16 + i), ports }));
    const count = headless ? 3 + Math.floor(rand() * 3) : 2;
    if (headless) headlessCount++;
    const eps: EndpointSpec[] = [];
    for (let k = 0; k < count; k++) {
      const ip = ipAt(podIPBase, ep++);
      eps.push({ ip, ready: true, pod: `${name}-${k}`, ...(headless && i % 10 === 4 ? { hostname: `${name}-${k}` } : {}) });
    }
    objs.push(endpointSlice(ns, name, eps, ports.map((p) => ({ ...p, port: p.port + 10000 })), { name: `${name}-abcde` }));
    names.push({ ns, name, headless, ports: ports.map((p) => p.name) });
  }
  mkdirSync(dir, { recursive: true });
  for (const [ns, items] of perNs) {
    writeFileSync(join(dir, `${ns}.json`), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  }

  const total = opts.queries ?? 1000;
  const lines: string[] = [];
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  for (let i = 0; i < Math.round(total * 0.7); i++) {
    const s = names[i % names.length]!;
    lines.push(`${s.name}.${s.ns}.svc.cluster.local A`);
  }
  for (let i = 0; i < Math.round(total * 0.1); i++) {
    const s = pick(names);
    lines.push(`_${pick(s.ports)}._tcp.${s.name}.${s.ns}.svc.cluster.local SRV`);
  }
  // What a pod's resolver asks before it reaches the real name (ndots:5 search path).
  const external = ['google.com', 'api.example.com', 'registry.k8s.io', 'login.microsoftonline.com', 'sts.amazonaws.com', 'github.com'];
  for (let i = 0; i < Math.round(total * 0.2); i++) {
    const e = pick(external);
    const ns = pick(nsNames);
    const r = rand();
    lines.push(r < 0.5 ? `${e}.${ns}.svc.cluster.local A` : r < 0.8 ? `${e}.svc.cluster.local A` : `${e}.cluster.local A`);
  }
  return { dir, queries: shuffle(lines, rand), services: nServices, headless: headlessCount, endpoints: ep };
}

/** ~`n` external names (A mostly, some AAAA): what a cache in front of the upstream sees. */
export function externalQueries(n = 1000): string[] {
  const rand = prng(2);
  const tlds = ['com', 'net', 'org', 'io', 'dev'];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `host${i}.site${i % 97}.${tlds[i % tlds.length]}`;
    lines.push(`${name} ${rand() < 0.8 ? 'A' : 'AAAA'}`);
  }
  return lines;
}

// ---- big clusters in the test API server ----

export interface BigClusterSpec {
  namespaces: number;
  /** Headless Services, each with `headlessEndpoints` endpoints in one EndpointSlice. */
  headless: number;
  headlessEndpoints: number;
  /** ClusterIP Services, each with `clusterIPEndpoints` endpoints in one EndpointSlice (0: no slice). */
  clusterIP: number;
  clusterIPEndpoints: number;
  /** Create a running Pod for every endpoint address. */
  pods: boolean;
  /** Running Pods of no Service, round-robin over the namespaces (addresses after the endpoints'). */
  lonePods?: number;
}

export interface BigClusterInfo {
  services: number;
  endpoints: number;
  slices: number;
  pods: number;
  /** A ClusterIP Service (ns/name) and a headless Service, for the propagation test. */
  clusterIPNames: Array<{ ns: string; name: string }>;
  headlessNames: Array<{ ns: string; name: string }>;
}

/**
 * Load a cluster into the API server: `namespaces` namespaces (ns-000...), Services spread round-robin.
 * Endpoints carry a targetRef to their Pod; Pods (when asked) are Running with that address.
 */
export function loadBigCluster(api: KubeApiServer, spec: BigClusterSpec): BigClusterInfo {
  const nsNames = Array.from({ length: spec.namespaces }, (_, i) => `ns-${String(i).padStart(3, '0')}`);
  for (const n of nsNames) api.add(namespace(n));
  let svc = 0;
  let ep = 0;
  let slices = 0;
  let pods = 0;
  const clusterIPNames: Array<{ ns: string; name: string }> = [];
  const headlessNames: Array<{ ns: string; name: string }> = [];
  const addEndpoints = (ns: string, name: string, count: number, hostnames: boolean, ports: Array<{ name: string; port: number }>) => {
    if (count === 0) return;
    const eps: EndpointSpec[] = [];
    for (let k = 0; k < count; k++) {
      const ip = ipAt(podIPBase, ep++);
      const podName = `${name}-${k}`;
      eps.push({ ip, ready: true, pod: podName, nodeName: `node-${ep % 50}`, ...(hostnames ? { hostname: podName } : {}) });
      if (spec.pods) {
        api.add(pod(ns, podName, ip, 'Running'));
        pods++;
      }
    }
    api.add(endpointSlice(ns, name, eps, ports, { name: `${name}-x7k2p` }));
    slices++;
  };
  for (let i = 0; i < spec.headless; i++) {
    const ns = nsNames[i % nsNames.length]!;
    const name = `sts-${i}`;
    const ports = [{ name: 'peer', port: 7000 }, { name: 'client', port: 7001 }];
    api.add(service(ns, name, { clusterIPs: ['None'], ports, labels: { app: name } }));
    svc++;
    headlessNames.push({ ns, name });
    addEndpoints(ns, name, spec.headlessEndpoints, i % 2 === 0, ports);
  }
  for (let i = 0; i < spec.clusterIP; i++) {
    const ns = nsNames[i % nsNames.length]!;
    const name = `web-${i}`;
    const ports = [{ name: 'http', port: 80 }, { name: 'https', port: 443 }];
    api.add(service(ns, name, { clusterIP: ipAt(serviceIPBase, 16 + i), ports, labels: { app: name } }));
    svc++;
    clusterIPNames.push({ ns, name });
    addEndpoints(ns, name, spec.clusterIPEndpoints, false, ports.map((p) => ({ ...p, port: p.port + 8000 })));
  }
  for (let i = 0; i < (spec.lonePods ?? 0); i++) {
    const ns = nsNames[i % nsNames.length]!;
    api.add(pod(ns, `job-${i}`, ipAt(podIPBase, ep + i), 'Running'));
    pods++;
  }
  api.prepareLists();
  return { services: svc, endpoints: ep, slices, pods, clusterIPNames, headlessNames };
}
