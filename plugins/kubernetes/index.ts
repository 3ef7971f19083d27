// kubernetes: answer the cluster zone (Services, endpoints, pods, PTR) from a Kubernetes API watch or
// from manifest files. Parse is pure (config.ts); setup wires the zone, its source and the handler.
import { networkInterfaces } from 'node:os';
import type { Gauge } from 'prom-client';
import type { Logger } from '../../src/log.ts';
import type { Metrics } from '../../src/metrics.ts';
import { definePlugin, type SetupEnv } from '../../src/plugin.ts';
import { disablePretenuring, fullGc, GcPacer } from '../../src/gc.ts';
import { prebuild } from '../../src/dns/wire.ts';
import { parseConfig, type KubernetesConfig } from './config.ts';
import { KubernetesHandler, type ZoneHandler } from './kubernetes.ts';
import type { Kind, SourceHandle, ZoneSink } from './objects.ts';
import { RemoteKubernetesHandler, RemoteZone, zoneService, type ZoneCall } from './remote.ts';
import { SlotReader, SlotTable } from './slots.ts';
import type { ApiSourceConfig } from './source-api.ts';
import { KubeZone, type ProgrammingKind } from './zone.ts';

export type { KubernetesConfig, PodMode } from './config.ts';
export { parseConfig } from './config.ts';
export { KubernetesHandler, ZoneHandler } from './kubernetes.ts';
export { RemoteKubernetesHandler, RemoteZone } from './remote.ts';
export { KubeZone } from './zone.ts';

/** What setup needs from the sources; tests pass fakes. */
export interface SourceStarters {
  api(cfg: ApiSourceConfig, sink: ZoneSink, env: { log: Logger; metrics: Metrics }): SourceHandle | Promise<SourceHandle>;
  manifests(paths: string[], sink: ZoneSink, env: { log: Logger; metrics: Metrics },
    opts: { watch?: boolean; labels?: string; namespaceLabels?: string }): SourceHandle | Promise<SourceHandle>;
}

// Sources load on demand: the API source (client-node's ListWatch and Watch, our node:https transport)
// costs RSS and startup time that a manifests-only or node-local configuration never needs
// (docs/performance.md, "Loading less of client-node").
export const defaultStarters: SourceStarters = {
  async api(cfg, sink, env) {
    const { startApiSource } = await import('./source-api.ts');
    return startApiSource(cfg, sink, env);
  },
  async manifests(paths, sink, env, opts) {
    const { startManifestSource } = await import('./source-manifests.ts');
    return startManifestSource(paths, sink, env, opts);
  },
};

export interface SetupOptions {
  starters?: SourceStarters;
  /** Addresses this server answers on; default: the host's non-internal interface addresses. */
  localIPs?: readonly string[];
}

/** CoreDNS's buckets for the programming latency: 1 ms doubling to ~17 minutes. */
const programmingBuckets = Array.from({ length: 20 }, (_, i) => 0.001 * 2 ** i);

/** Zones alive per metrics registry, summed by the objects gauge (each zone holds its own copies). */
const zonesByRegistry = new WeakMap<Metrics, Set<KubeZone>>();

function objectsGauge(metrics: Metrics): Gauge<'kind'> {
  return metrics.gauge('coredns_kubernetes_objects', 'Kubernetes objects held in memory for DNS, by kind.', ['kind'],
    function collect(this: Gauge<'kind'>) {
      const sums: Record<Kind, number> = { Service: 0, EndpointSlice: 0, Namespace: 0, Pod: 0 };
      for (const z of zonesByRegistry.get(metrics) ?? []) {
        const c = z.counts();
        for (const k of Object.keys(sums) as Kind[]) sums[k] += c[k];
      }
      for (const k of Object.keys(sums) as Kind[]) this.set({ kind: k }, sums[k]);
    });
}

/** The host's addresses (what CoreDNS calls the bound IPs when listening on all interfaces). */
export function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && !a.address.startsWith('fe80:')) out.push(a.address);
  }
  return out.length > 0 ? out : ['127.0.0.1'];
}

/** The link key of a block's kubernetes plugin (main and workers agree on it). */
const linkKey = (env: SetupEnv) => `kubernetes#${env.block.index}`;

/**
 * Wire a parsed configuration. Single-threaded and in main: the zone, its source (started at
 * startup), metrics, readiness, handler; main also offers the zone to workers. In a worker: a handler
 * over main's zone (RemoteZone), with no source, zone or readiness of its own.
 */
export function setupKubernetes(cfg: KubernetesConfig, env: SetupEnv, opts: SetupOptions = {}): ZoneHandler {
  if (env.role === 'worker') {
    const link = env.link?.connect(linkKey(env));
    if (!link?.shared) throw new Error('kubernetes: the main thread offers no zone to this worker');
    const shed = env.metrics.counter('coredns_kubernetes_worker_shed_total',
      'Queries a worker answered SERVFAIL at once because too many names were already waiting for the main thread.');
    return new RemoteKubernetesHandler(cfg, new RemoteZone(new SlotReader(link.shared), (body: ZoneCall) => link.call(body), { onShed: () => shed.inc() }));
  }
  return setupLocal(cfg, env, opts);
}

function setupLocal(cfg: KubernetesConfig, env: SetupEnv, opts: SetupOptions): KubernetesHandler {
  const starters = opts.starters ?? defaultStarters;
  const log = env.log;
  for (const w of cfg.warnings) log.warn(w);

  const programming = env.metrics.histogram('coredns_kubernetes_dns_programming_duration_seconds',
    'Histogram of the time (in seconds) it took to program a dns instance.', ['service_kind'], programmingBuckets);
  objectsGauge(env.metrics);

  const manifests = cfg.manifests.length > 0;
  // During a bulk load (initial list, relist, manifest reload) a major GC whenever the old generation
  // and external memory grew by a step (4 MiB), so what a load promotes does not pile up into its RSS
  // peak; after it, once the burst is over (no page for 500 ms; not between the lists of the kinds,
  // which would pause the rest of the sync), one memory-reducing GC, so the process does not keep the
  // heap it grew to. And no pretenuring, so a relist's unchanged records die young (src/gc.ts;
  // docs/performance.md, "Memory during list and relist").
  const pacer = new GcPacer({ stepBytes: 4 * 2 ** 20 });
  disablePretenuring();
  let release: NodeJS.Timeout | undefined;
  const bulkWrite = () => {
    pacer.tick();
    clearTimeout(release);
    release = setTimeout(() => {
      pacer.reset();
      const ms = fullGc();
      if (ms >= 0) log.info(`released memory after a bulk load (full GC, ${ms.toFixed(0)} ms)`);
    }, 500);
    release.unref();
  };
  const zone = new KubeZone({
    namespaces: cfg.namespaces,
    endpoints: !cfg.noEndpoints,
    endpointPodNames: cfg.endpointPodNames,
    pods: cfg.pods === 'verified',
    implicitNamespaces: manifests && cfg.namespaceLabels === undefined,
    onProgramming: (kind: ProgrammingKind, seconds: number) => programming.observe({ service_kind: kind }, seconds),
    onBulkWrite: bulkWrite,
  });
  let zones = zonesByRegistry.get(env.metrics);
  if (!zones) zonesByRegistry.set(env.metrics, zones = new Set());
  zones.add(zone);

  let source: SourceHandle | undefined;
  const synced = () => source?.isSynced() ?? false;
  env.readiness('kubernetes', synced);
  // With workers, main shares the zone's change counters and its synced state with them.
  const table = env.role === 'main' ? new SlotTable() : undefined;
  if (table) zone.shareChanges(table);

  env.onStartup(async () => {
    const senv = { log, metrics: env.metrics };
    const sel = { ...(cfg.labels !== undefined ? { labels: cfg.labels } : {}), ...(cfg.namespaceLabels !== undefined ? { namespaceLabels: cfg.namespaceLabels } : {}) };
    source = manifests
      ? await starters.manifests(cfg.manifests, zone, senv, { watch: true, ...sel })
      : await starters.api({
        ...(cfg.endpoint !== undefined ? { endpoint: cfg.endpoint } : {}),
        ...(cfg.tls ? { tls: cfg.tls } : {}),
        ...(cfg.kubeconfig ? { kubeconfig: cfg.kubeconfig } : {}),
        ...sel,
        watchPods: cfg.pods === 'verified',
      }, zone, senv);
    if (table) void source.synced.then(() => table.setSynced(true), () => undefined);
    if (source.isSynced()) return;
    log.info('waiting for Kubernetes API before starting server');
    if (!(await syncedWithin(source, cfg.startupTimeoutMs))) log.warn('starting server with unsynced Kubernetes API');
  });
  env.onFinalShutdown(async () => {
    clearTimeout(release);
    zones.delete(zone);
    await source?.stop();
  });

  const handler = new KubernetesHandler(cfg, zone, { synced, localIPs: opts.localIPs ?? interfaceAddresses(), prebuild });
  if (table) {
    if (!env.link) throw new Error('kubernetes: main thread without a link to its workers');
    env.link.serve(linkKey(env), zoneService(handler, table));
  }
  return handler;
}

/** Wait for the first sync, at most `ms`; true when synced. */
async function syncedWithin(source: SourceHandle, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), ms); });
  try {
    return await Promise.race([source.synced.then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The plugin: CoreDNS's kubernetes syntax plus `manifests PATH...`. Once per server block. */
export const plugin = definePlugin<KubernetesConfig>({
  name: 'kubernetes',
  // The zone and its watch in main (once), a reply cache over it in each worker.
  placement: 'both',
  parse: parseConfig,
  setup: (cfg, env) => setupKubernetes(cfg, env),
});
