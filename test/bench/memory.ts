// Memory and sync: clusterdns (compiled, pinned to the server core) against the test Kubernetes API
// server, which runs in the bench process (pinned to the client core) holding a generated cluster.
//
// Per run: time from spawn to `/ready` 200; peak RSS of the initial sync (VmHWM, plus VmRSS sampled
// every 50 ms); RSS after an idle period; RSS and V8 heap after a forced full GC (through the V8
// inspector: the server runs with --inspect=127.0.0.1:0); then a full relist (the watch history is
// compacted and every watch dropped, so each resumes into a 410 Gone and lists again) with its own peak.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startKubeApi, type KubeApiServer } from '../kubeapi/server.ts';
import { loadBigCluster, type BigClusterInfo, type BigClusterSpec } from './cluster.ts';
import { Inspector, cliJs, deploymentEnv, freePort, memStatus, resetPeak, rssSampler, spawnNode, tempDir, waitHttp200 } from './proc.ts';
import { measurePropagation, type PropagationResult } from './propagation.ts';

export interface MemorySpec extends BigClusterSpec {
  name: string;
  podsVerified: boolean;
}

export interface MemoryRow {
  name: string;
  services: number;
  endpoints: number;
  pods: number;
  /** Spawn to `/ready` 200. */
  readyMs: number;
  /** Spawn to the first list request reaching the API server (process start, module loading). */
  firstListMs: number;
  /** Spawn to the last page of the initial lists requested. */
  lastPageMs: number;
  /** VmHWM after the initial sync and idle period: the peak of startup and the first list. */
  syncPeakMiB: number;
  /** VmRSS after `idleSeconds` without queries or changes. */
  steadyMiB: number;
  /** The steady RSS split: anonymous (RssAnon) and file-backed (RssFile + RssShmem). */
  steadyAnonMiB: number;
  steadyFileMiB: number;
  /** VmRSS and V8 heapUsed right after a forced full GC. */
  gcRssMiB: number;
  heapUsedMiB: number;
  /** Highest RSS from the forced 410 to the re-opened watches (+1 s). */
  relistPeakMiB: number;
  /** From dropping the watches to the last list page requested. */
  relistMs: number;
  /** Seconds the API server took to build the objects (not part of any server figure). */
  loadSeconds: number;
}

export interface MemoryOptions {
  core: number;
  idleSeconds: number;
  /** Run the propagation test on this server after the memory figures (number of changes). */
  propagation?: number;
  log: (line: string) => void;
}

const relistPaths = ['/api/v1/namespaces', '/api/v1/services', '/apis/discovery.k8s.io/v1/endpointslices', '/api/v1/pods'];

/** Wait until every watched kind listed again after `since` and then re-opened its watch. */
async function relisted(api: KubeApiServer, since: number, paths: string[], timeoutMs = 120_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let lastList = 0;
    let done = true;
    for (const p of paths) {
      const after = api.requests.filter((r) => r.path === p && r.at >= since);
      const lists = after.filter((r) => !r.watch);
      if (lists.length === 0) { done = false; break; }
      const last = lists[lists.length - 1]!;
      lastList = Math.max(lastList, last.at);
      if (!after.some((r) => r.watch && r.at >= last.at && r.query.resourceVersion)) { done = false; break; }
    }
    if (done) return lastList - since;
    if (Date.now() > deadline) return NaN;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function memoryRun(spec: MemorySpec, o: MemoryOptions): Promise<{ row: MemoryRow; propagation?: PropagationResult }> {
  const api = await startKubeApi();
  let info: BigClusterInfo;
  const t0 = performance.now();
  try {
    info = loadBigCluster(api, spec);
  } catch (e) {
    await api.close();
    throw e;
  }
  const loadSeconds = (performance.now() - t0) / 1000;
  const dir = tempDir('mem');
  const kubeconfig = api.kubeconfigFile(dir);
  const [dnsPort, readyPort] = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'Corefile'), `.:${dnsPort} {
    bind 127.0.0.1
    ready 127.0.0.1:${readyPort}
    kubernetes cluster.local {
        kubeconfig ${kubeconfig}
${spec.podsVerified ? '        pods verified\n' : ''}    }
}
`);
  // --inspect for the forced GC; it made no measurable difference to RSS (empty cluster: 130 MiB either way).
  // The Deployment's environment (NODE_OPTIONS heap flags, malloc settings): memory as production runs it.
  const prodEnv = deploymentEnv();
  const child = spawnNode(cliJs, ['-conf', join(dir, 'Corefile'), '-quiet'], {
    core: o.core, nodeArgs: ['--inspect=127.0.0.1:0'], env: { ...process.env, ...prodEnv },
  });
  const sampler = rssSampler(child.pid, 50);
  let inspector: Inspector | undefined;
  try {
    const readyMs = await waitHttp200(`http://127.0.0.1:${readyPort}/ready`, child.startedAt, 120_000, 10);
    if (!Number.isFinite(readyMs)) throw new Error(`not ready: ${child.output().slice(-2000)}`);
    // The API server stamps requests with Date.now(); the spawn time was taken with performance.now().
    const spawnEpoch = Date.now() - (performance.now() - child.startedAt);
    const lists = api.requests.filter((r) => !r.watch);
    const firstListMs = (lists[0]?.at ?? NaN) - spawnEpoch;
    const lastPageMs = (lists.at(-1)?.at ?? NaN) - spawnEpoch;
    await sleep(o.idleSeconds * 1000);
    const afterIdle = memStatus(child.pid);
    const syncPeakMiB = Math.max(afterIdle.hwmMiB, sampler.max());
    const steadyMiB = afterIdle.rssMiB;

    inspector = await Inspector.connect(child);
    await inspector.collectGarbage();
    const mu = await inspector.memoryUsage();
    const gcRssMiB = memStatus(child.pid).rssMiB;

    // Full relist: resuming from any resourceVersion now gets 410 Gone.
    const canReset = resetPeak(child.pid);
    sampler.reset();
    const dropAt = Date.now();
    // Watches resume from the resourceVersion they last saw; that is only "too old" once the history
    // moved past it. So: cut the watches, make one change nobody sees (a label on a namespace), forget
    // the history. Every kind then resumes into 410 Gone and lists again.
    api.dropWatches();
    const ns = api.get('Namespace', undefined, 'ns-000');
    if (ns) {
      ns.metadata.labels = { ...ns.metadata.labels, 'bench/relist': String(dropAt) };
      api.update(ns);
    }
    api.compactHistory();
    const relistMs = await relisted(api, dropAt, spec.podsVerified ? relistPaths : relistPaths.slice(0, 3));
    await sleep(1000);
    const relistPeakMiB = Math.max(sampler.max(), canReset ? memStatus(child.pid).hwmMiB : 0);

    const row: MemoryRow = {
      name: spec.name, services: info.services, endpoints: info.endpoints, pods: info.pods,
      readyMs, firstListMs, lastPageMs, syncPeakMiB, steadyMiB, steadyAnonMiB: afterIdle.anonMiB, steadyFileMiB: afterIdle.fileMiB, gcRssMiB, heapUsedMiB: mu.heapUsed / 2 ** 20, relistPeakMiB, relistMs, loadSeconds,
    };
    let propagation: PropagationResult | undefined;
    if (o.propagation && o.propagation > 0) {
      o.log(`bench: propagation: ${o.propagation} changes ...`);
      propagation = await measurePropagation(api, dnsPort, info, o.propagation);
    }
    return { row, ...(propagation ? { propagation } : {}) };
  } finally {
    inspector?.close();
    sampler.stop();
    await child.stop('SIGTERM');
    await api.close();
  }
}

export const memoryNames = {
  empty: 'memory: 0 services (100 namespaces)',
  servicesOnly: 'memory: 10k services, no endpoints',
  small: 'memory: 2k services, 20k endpoints',
  main: 'memory: 10k services, 100k endpoints',
  pods: 'memory: 10k services, 100k endpoints, 100k pods (pods verified)',
  podsAlone: 'memory: 100k pods, no services (pods verified)',
} as const;

/** The memory runs: sizes chosen so differences give bytes per Service, per endpoint and per Pod. */
export function memorySpecs(): MemorySpec[] {
  const base = { namespaces: 100, pods: false, podsVerified: false };
  return [
    { ...base, name: memoryNames.empty, headless: 0, headlessEndpoints: 0, clusterIP: 0, clusterIPEndpoints: 0 },
    { ...base, name: memoryNames.servicesOnly, headless: 5000, headlessEndpoints: 0, clusterIP: 5000, clusterIPEndpoints: 0 },
    { ...base, name: memoryNames.small, headless: 1000, headlessEndpoints: 18, clusterIP: 1000, clusterIPEndpoints: 2 },
    { ...base, name: memoryNames.main, headless: 5000, headlessEndpoints: 18, clusterIP: 5000, clusterIPEndpoints: 2 },
    { ...base, name: memoryNames.pods, headless: 5000, headlessEndpoints: 18, clusterIP: 5000, clusterIPEndpoints: 2, pods: true, podsVerified: true },
    // Issue 6 names 100,000 Pods "separately": the same Pods on their own.
    { ...base, name: memoryNames.podsAlone, headless: 0, headlessEndpoints: 0, clusterIP: 0, clusterIPEndpoints: 0, lonePods: 100_000, podsVerified: true },
  ];
}

export interface PerObject { what: string; from: string; heapBytes: number; rssBytes: number }


/** Bytes per object from differences between runs (heap after a forced GC is the steadier figure). */
export function perObject(rows: MemoryRow[]): PerObject[] {
  const find = (name: string) => rows.find((r) => r.name === name);
  const out: PerObject[] = [];
  const diff = (what: string, a: MemoryRow | undefined, b: MemoryRow | undefined, n: (r: MemoryRow) => number) => {
    if (!a || !b) return;
    const count = n(b) - n(a);
    if (count <= 0) return;
    out.push({
      what, from: `(${short(b.name)}) - (${short(a.name)}), / ${count}`,
      heapBytes: ((b.heapUsedMiB - a.heapUsedMiB) * 2 ** 20) / count, rssBytes: ((b.gcRssMiB - a.gcRssMiB) * 2 ** 20) / count,
    });
  };
  const n = memoryNames;
  diff('Service (no endpoints)', find(n.empty), find(n.servicesOnly), (r) => r.services);
  diff('endpoint (18 or 2 per slice)', find(n.servicesOnly), find(n.main), (r) => r.endpoints);
  diff('Service with its 10 endpoints (2k run)', find(n.empty), find(n.small), (r) => r.services);
  diff('Service with its 10 endpoints (10k run)', find(n.empty), find(n.main), (r) => r.services);
  diff('Pod (pods verified)', find(n.main), find(n.pods), (r) => r.pods);
  diff('Pod, no services (pods verified)', find(n.empty), find(n.podsAlone), (r) => r.pods);
  return out;
}

function short(name: string): string {
  return name.replace(/^memory: /, '');
}
