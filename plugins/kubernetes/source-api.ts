// The Kubernetes API source: lists and watches Services, EndpointSlices, Namespaces (and Pods when asked)
// with @kubernetes/client-node 2.0.x and feeds slim records into a ZoneSink.
//
// Per kind it runs client-node's own informer (ListWatch: list, watch from the list's resourceVersion,
// resume from the last seen resourceVersion, relist on 410 Gone) over client-node's Watch — with three
// adjustments client-go users get from SetTransform and the reflector, and client-node lacks:
//
// 1. No object cache: ListWatch keeps every object it has seen (client-go's SetTransform would slim
//    them; client-node has none), and for DNS that copy is dead weight (~3.5 MiB of heap for 10k
//    Services and their 10k EndpointSlices even as bare name/namespace shells). So the zone is the only
//    store: a list hands its pages to the sink as they arrive and returns no items to ListWatch, and
//    our Watch subclass applies each ADDED/MODIFIED/DELETED event to the sink itself and passes
//    ListWatch a bookmark carrying the event's resourceVersion, which is all it needs to resume.
// 2. Bookmarks: ListWatch does not ask for them; our Watch subclass adds allowWatchBookmarks=true (and a
//    server-side timeoutSeconds), so quiet watches resume from a fresh resourceVersion instead of falling
//    out of the history window and relisting.
// 3. Supervision: a ListWatch that hits an error other than 410 fires `error` and stops for good; its
//    start() resolves even when the list failed. We restart it with jittered exponential backoff, track
//    "synced" ourselves, and count restarts.
//
// Only those two classes come from client-node, by deep import (client-node.ts: dist/cache.js without
// the generated models, and dist/watch.js): the package index, KubeConfig, the generated API clients
// and their models cost ~25 MiB of RSS and ~0.5 s at startup on top (docs/performance.md, "Loading
// less of client-node"). Credentials and list requests are api-client.ts's: plain GETs, paged with
// limit/continue, each item parsed on its own (list-page.ts). A list is one replacement per kind in
// the sink (beginReplace): each page is converted and added as it arrives, so a big cluster is never
// held in memory whole, not even as slim records, and the replacement's end deletes whatever vanished
// (ListWatch's own relist fires deletes for vanished objects too, but the sink is already exact then,
// so the per-object callbacks ListWatch fires while applying a list are ignored).
// Nothing here is on the query path: the zone answers from its own maps.
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node/dist/types.js';
import type { Gauge } from 'prom-client';
import type { Logger } from '../../src/log.ts';
import type { Metrics } from '../../src/metrics.ts';
import { ListWatch, Watch } from './client-node.ts';
import { ApiClient, ApiStatusError, resolveConnection, type ApiConnectionConfig, type ListPage } from './api-client.ts';
import {
  describeObject, isInvalid, toSlimEndpointSlice, toSlimNamespace, toSlimPod, toSlimService, type Converted,
} from './convert.ts';
import type { Kind, Replacement, SlimEndpointSlice, SlimNamespace, SlimPod, SlimService, SourceHandle, ZoneSink } from './objects.ts';
import { parseSelector } from './selector.ts';

export { resolveConnection } from './api-client.ts';

export interface ApiSourceConfig extends ApiConnectionConfig {
  /** Label selector for Services and EndpointSlices (CoreDNS `labels`), sent to the server. */
  labels?: string;
  /** Label selector for Namespaces (CoreDNS `namespace_labels`), sent to the server. */
  namespaceLabels?: string;
  /** Watch Pods too (`pods insecure|verified`). */
  watchPods: boolean;
  /** Restart backoff after a watch failed (default 500 ms doubling to 30 s, ±20% jitter). Tests shorten it. */
  backoff?: { initialMs: number; maxMs: number };
  /** Items per list page (default 500). Not a Corefile option; tests use small pages. */
  pageSize?: number;
}

export interface ApiSourceEnv {
  /** Already prefixed `plugin/kubernetes`. */
  log: Logger;
  metrics: Metrics;
}

type Slim = SlimService | SlimEndpointSlice | SlimNamespace | SlimPod;

/** What ListWatch sees of an object: a bookmark-shaped record of the resourceVersion (it caches nothing then). */
interface Shell extends KubernetesObject {
  metadata: { resourceVersion?: string };
}

interface KindDef {
  kind: Kind;
  /** The resource's plural: log lines, metric label. */
  resource: 'services' | 'endpointslices' | 'namespaces' | 'pods';
  path: string;
  labelSelector: string | undefined;
  convert(obj: unknown): Converted<Slim>;
  upsert(s: Slim): void;
  remove(namespace: string, name: string): void;
  beginReplace(): Replacement<Slim>;
}

const defaultBackoff = { initialMs: 500, maxMs: 30_000 };
const listPageTimeoutMs = 60_000;
/** Slim records handed to the zone at a time while a page is converted. */
const addBatch = 50;

/** A short, single-line reason for a failed request. */
export function errorText(err: unknown): string {
  if (err instanceof ApiStatusError) return `HTTP ${err.statusCode}${err.message ? `: ${err.message}` : ''}`;
  if (err instanceof Error || (typeof err === 'object' && err !== null && 'message' in err)) {
    const e = err as Error & { statusCode?: number; code?: unknown; cause?: { code?: string; message?: string } };
    if (typeof e.statusCode === 'number') return `HTTP ${e.statusCode} ${e.message}`;
    if (e.cause?.code) return `${e.message} (${e.cause.code})`;
    if (e.cause?.message) return `${e.message}: ${e.cause.message}`;
    // node:http's errors carry their code beside a message that may not name it ("aborted", "socket hang up").
    if (typeof e.code === 'string' && !e.message.includes(e.code)) return `${e.message} (${e.code})`;
    return e.message;
  }
  return String(err);
}

function fmtDelay(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${Number((ms / 1000).toFixed(1))}s`;
}

/** The bookmark ListWatch is handed for an event: only the resourceVersion it resumes from. */
function versionOf(obj: unknown): Shell {
  const m = (typeof obj === 'object' && obj !== null ? (obj as { metadata?: unknown }).metadata : undefined) as
    { resourceVersion?: unknown } | undefined;
  return { metadata: typeof m?.resourceVersion === 'string' ? { resourceVersion: m.resourceVersion } : {} };
}

/** namespace/name of a raw object, for log lines and deletes. */
function nameOf(obj: unknown): { namespace: string; name: string } {
  const m = (typeof obj === 'object' && obj !== null ? (obj as { metadata?: unknown }).metadata : undefined) as
    { name?: unknown; namespace?: unknown } | undefined;
  return { namespace: typeof m?.namespace === 'string' ? m.namespace : '', name: typeof m?.name === 'string' ? m.name : '' };
}

/** Our Watch: asks for bookmarks, applies events to the sink (ListWatch sees bookmarks), notes every contact. */
class SlimWatch extends Watch {
  private readonly owner: KindWatch;

  constructor(client: ApiClient, owner: KindWatch) {
    // Watch asks its KubeConfig for getCurrentCluster() and applySecurityAuthentication(ctx) only;
    // ApiClient answers both (the tests run every watch through this).
    super(client as unknown as KubeConfig);
    this.owner = owner;
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const kw = this.owner;
    // ListWatch does not re-check stop() after its reconnect delay: do not open a watch for it then.
    if (kw.stopped) return new AbortController();
    // Like client-go: a server-side timeout of 5-10 minutes spreads reconnects out.
    const params = { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: 300 + Math.floor(Math.random() * 300) };
    let failed = false;
    let controller: AbortController;
    try {
      controller = await super.watch(path, params, (phase: string, obj: unknown, raw: unknown) => {
        kw.contact();
        const forward = kw.onWatchEvent(phase, obj);
        callback(forward.phase, forward.obj, raw);
      }, (err: unknown) => {
        if (err) failed = true;
        done(err);
      });
    } catch (err) {
      // Auth plugins and config lookups throw before the request is made; ListWatch would leave that as
      // an unhandled rejection. Report it through `done`, which turns it into an `error` event.
      done(err);
      return new AbortController();
    }
    if (kw.stopped) controller.abort();
    else if (!failed) kw.contact();
    return controller;
  }
}

class KindWatch {
  stopped = false;
  synced = false;
  lastContactMs = 0;
  private readonly informer: ListWatch<Shell>;
  private failures = 0;
  private failing: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private listAbort: AbortController | undefined;

  readonly def: KindDef;
  private readonly client: ApiClient;
  private readonly log: Logger;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly pageSize: number;
  private readonly restarts: (resource: string) => void;
  private readonly onSynced: () => void;

  constructor(def: KindDef, client: ApiClient, log: Logger, opts: {
    backoff: { initialMs: number; maxMs: number }; pageSize: number; restarts: (resource: string) => void; onSynced: () => void;
  }) {
    this.def = def;
    this.client = client;
    this.log = log;
    this.backoff = opts.backoff;
    this.pageSize = opts.pageSize;
    this.restarts = opts.restarts;
    this.onSynced = opts.onSynced;
    this.informer = new ListWatch<Shell>(def.path, new SlimWatch(client, this), () => this.list(), false, def.labelSelector);
    // No add/update/delete handlers: ListWatch holds no objects (events go to the sink in SlimWatch).
    this.informer.on('error', (err) => this.onError(err));
  }

  start(): void {
    this.informer.start().catch((err: unknown) => this.onError(err));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.listAbort?.abort();
    await this.informer.stop();
  }

  contact(): void {
    this.lastContactMs = Date.now();
    if (this.failing !== undefined) {
      this.log.info(`watch of ${this.def.resource} recovered`);
      this.failing = undefined;
    }
    this.failures = 0;
  }

  /** Apply a watch event to the sink; what ListWatch should see of it (a bookmark for object events). */
  onWatchEvent(phase: string, obj: unknown): { phase: string; obj: unknown } {
    switch (phase) {
      case 'ADDED':
      case 'MODIFIED':
        this.applyObject(obj);
        return { phase: 'BOOKMARK', obj: versionOf(obj) };
      case 'DELETED':
        this.applyDelete(obj);
        return { phase: 'BOOKMARK', obj: versionOf(obj) };
      case 'ERROR': {
        const st = obj as { code?: unknown; message?: unknown } | undefined;
        // 410: ListWatch clears its resourceVersion and relists when the server closes the stream.
        if (st?.code === 410) this.log.debug(`watch of ${this.def.resource}: resourceVersion expired, relisting`);
        else this.log.warn(`watch of ${this.def.resource}: server sent an error: ${String(st?.message ?? JSON.stringify(obj))}`);
        return { phase, obj };
      }
      default: // BOOKMARK: ListWatch takes metadata.resourceVersion from it.
        return { phase, obj };
    }
  }

  private async list(): Promise<KubernetesListObject<Shell>> {
    if (this.stopped) throw new Error('stopped');
    const abort = new AbortController();
    this.listAbort = abort;
    // Each page goes into the zone as it arrives: only the page being converted and ListWatch's shells
    // are held, never the whole list. end() then deletes what the list no longer has.
    const replacement = this.def.beginReplace();
    let listed = 0;
    let kept = 0;
    let resourceVersion = '';
    let cont: string | undefined;
    let pages = 0;
    do {
      let page: ListPage | undefined = await this.client.list(this.def.path,
        { labelSelector: this.def.labelSelector, limit: this.pageSize, continue: cont },
        AbortSignal.any([abort.signal, AbortSignal.timeout(listPageTimeoutMs)]));
      pages++;
      if (!resourceVersion) resourceVersion = page.metadata?.resourceVersion ?? '';
      cont = page.metadata?.continue || undefined;
      const items = page.items;
      page = undefined;
      // Each item is parsed here, converted and dropped while it is young (list-page.ts); the slim
      // records go into the zone in small batches, so they do not live long enough to be promoted
      // either (a relist's unchanged objects are garbage once compared).
      let batch: Slim[] = [];
      for (let i = 0; i < items.length; i++) {
        const item = items.at(i);
        const c = this.def.convert(item);
        listed++;
        if (isInvalid(c)) this.skip(item, c);
        else if (c !== null) batch.push(c);
        if (batch.length === addBatch) {
          replacement.add(batch);
          kept += batch.length;
          batch = [];
        }
      }
      if (batch.length > 0) {
        replacement.add(batch);
        kept += batch.length;
      }
      items.release();
      if (this.stopped) break;
      this.contact();
    } while (cont && !this.stopped);
    if (this.stopped) throw new Error('stopped');
    replacement.end();
    if (!this.synced) {
      this.synced = true;
      this.log.debug(`listed ${this.def.resource}: ${kept} of ${listed} objects in ${pages} page(s)`);
      this.onSynced();
    } else {
      this.log.debug(`relisted ${this.def.resource}: ${kept} of ${listed} objects in ${pages} page(s)`);
    }
    // The sink already holds the list: ListWatch gets its resourceVersion and no items to cache.
    return { metadata: { resourceVersion }, items: [] };
  }

  private skip(obj: unknown, reason: string): void {
    this.log.warn(`skipping ${this.def.kind} ${describeObject(obj)}: ${reason}`);
  }

  private applyObject(obj: unknown): void {
    const c = this.def.convert(obj);
    const { namespace, name } = nameOf(obj);
    try {
      if (isInvalid(c)) {
        this.log.warn(`skipping ${this.def.kind} ${namespace ? `${namespace}/` : ''}${name || '<unnamed>'}: ${c}`);
        // A previous version may be held: an object that became invalid must not keep answering.
        this.def.remove(namespace, name);
      } else if (c === null) {
        // Not for DNS (e.g. a Pod that stopped running): drop whatever version was held.
        this.def.remove(namespace, name);
      } else {
        this.def.upsert(c);
      }
    } catch (err) {
      this.log.error(`applying ${this.def.kind} ${namespace}/${name}: ${errorText(err)}`);
    }
  }

  private applyDelete(obj: unknown): void {
    const { namespace, name } = nameOf(obj);
    try {
      this.def.remove(namespace, name);
    } catch (err) {
      this.log.error(`deleting ${this.def.kind} ${namespace}/${name}: ${errorText(err)}`);
    }
  }

  private onError(err: unknown): void {
    if (this.stopped) return;
    if (this.timer) return; // a restart is already scheduled
    const nominal = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.failures);
    const delay = Math.min(this.backoff.maxMs, nominal * (0.8 + Math.random() * 0.4));
    this.failures++;
    this.restarts(this.def.resource);
    const reason = errorText(err);
    const line = `watch of ${this.def.resource} failed: ${reason}; retrying in ${fmtDelay(delay)}`;
    if (this.failing !== reason) this.log.warn(line);
    else this.log.debug(line);
    this.failing = reason;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) this.start();
    }, delay);
  }
}

// Sources per metrics registry, for the age gauge's collect (no process-global state across instances).
const sourcesByRegistry = new WeakMap<Metrics, Set<ApiSource>>();

const resourcesInOrder = ['namespaces', 'services', 'endpointslices', 'pods'] as const;

function ageCollector(metrics: Metrics) {
  return function collect(this: Gauge<'kind'>): void {
    this.reset();
    const now = Date.now();
    const worst = new Map<string, number>();
    for (const src of sourcesByRegistry.get(metrics) ?? []) {
      for (const kw of src.kinds) {
        const since = kw.lastContactMs || src.startedAt;
        const age = Math.max(0, (now - since) / 1000);
        worst.set(kw.def.resource, Math.max(worst.get(kw.def.resource) ?? 0, age));
      }
    }
    for (const r of resourcesInOrder) {
      const age = worst.get(r);
      if (age !== undefined) this.set({ kind: r }, age);
    }
  };
}

class ApiSource implements SourceHandle {
  readonly synced: Promise<void>;
  readonly kinds: KindWatch[] = [];
  readonly startedAt = Date.now();
  private resolveSynced!: () => void;
  private readonly metrics: Metrics;
  private readonly client: ApiClient;

  constructor(cfg: ApiSourceConfig, sink: ZoneSink, env: ApiSourceEnv) {
    this.metrics = env.metrics;
    // Bad selectors are configuration errors, not 400s to retry forever.
    for (const [what, sel] of [['labels', cfg.labels], ['namespace_labels', cfg.namespaceLabels]] as const) {
      if (sel) {
        try { parseSelector(sel); } catch (err) { throw new Error(`${what}: ${(err as Error).message}`); }
      }
    }
    const conn = resolveConnection(cfg);
    this.client = new ApiClient(conn);
    env.log.debug(`API server ${conn.server} (${conn.origin})`);
    if (conn.kubeConfig) env.log.info(`${conn.origin} needs ${conn.kubeConfig.reason}: credentials come from client-node's KubeConfig`);
    const restarts = env.metrics.counter('coredns_kubernetes_watch_restarts_total',
      'Watches of the Kubernetes API restarted after failing, by resource.', ['kind']);
    env.metrics.gauge('coredns_kubernetes_last_contact_age_seconds',
      'Seconds since the last list, watch event or bookmark from the Kubernetes API, by resource (the worst across sources).',
      ['kind'], ageCollector(env.metrics));
    this.synced = new Promise((resolve) => { this.resolveSynced = resolve; });

    const labels = cfg.labels || undefined;
    const defs: KindDef[] = [
      {
        kind: 'Namespace', resource: 'namespaces', path: '/api/v1/namespaces', labelSelector: cfg.namespaceLabels || undefined,
        convert: (obj) => toSlimNamespace(obj),
        upsert: (s) => sink.upsertNamespace(s as SlimNamespace),
        remove: (_ns, name) => sink.deleteNamespace(name),
        beginReplace: () => sink.beginReplace('Namespace') as Replacement<Slim>,
      },
      {
        kind: 'Service', resource: 'services', path: '/api/v1/services', labelSelector: labels,
        convert: (obj) => toSlimService(obj),
        upsert: (s) => sink.upsertService(s as SlimService),
        remove: (ns, name) => sink.deleteService(ns, name),
        beginReplace: () => sink.beginReplace('Service') as Replacement<Slim>,
      },
      {
        kind: 'EndpointSlice', resource: 'endpointslices', path: '/apis/discovery.k8s.io/v1/endpointslices', labelSelector: labels,
        convert: (obj) => toSlimEndpointSlice(obj),
        upsert: (s) => sink.upsertEndpointSlice(s as SlimEndpointSlice),
        remove: (ns, name) => sink.deleteEndpointSlice(ns, name),
        beginReplace: () => sink.beginReplace('EndpointSlice') as Replacement<Slim>,
      },
    ];
    if (cfg.watchPods) {
      defs.push({
        kind: 'Pod', resource: 'pods', path: '/api/v1/pods', labelSelector: undefined,
        convert: (obj) => toSlimPod(obj),
        upsert: (s) => sink.upsertPod(s as SlimPod),
        remove: (ns, name) => sink.deletePod(ns, name),
        beginReplace: () => sink.beginReplace('Pod') as Replacement<Slim>,
      });
    }
    const opts = {
      backoff: cfg.backoff ?? defaultBackoff,
      pageSize: cfg.pageSize ?? 500,
      restarts: (resource: string) => restarts.inc({ kind: resource }),
      onSynced: () => {
        if (this.isSynced()) {
          env.log.debug('all watched resources synced');
          this.resolveSynced();
        }
      },
    };
    for (const def of defs) this.kinds.push(new KindWatch(def, this.client, env.log, opts));
    let set = sourcesByRegistry.get(env.metrics);
    if (!set) sourcesByRegistry.set(env.metrics, (set = new Set()));
    set.add(this);
    for (const k of this.kinds) k.start();
  }

  isSynced(): boolean {
    return this.kinds.every((k) => k.synced);
  }

  /** The oldest of the per-resource last contacts: it stops advancing when any watch is broken. 0 before all made contact. */
  lastContact(): number {
    let oldest = Infinity;
    for (const k of this.kinds) oldest = Math.min(oldest, k.lastContactMs);
    return oldest === Infinity ? 0 : oldest;
  }

  async stop(): Promise<void> {
    sourcesByRegistry.get(this.metrics)?.delete(this);
    await Promise.all(this.kinds.map((k) => k.stop()));
    await this.client.close();
  }
}

/**
 * Start listing and watching. Throws (synchronously) on configuration errors: unreadable kubeconfig,
 * unknown context, bad endpoint URL, bad label selector. API errors never throw: they are logged,
 * retried with backoff and visible as `synced` not resolving / `lastContact()` not advancing.
 */
export function startApiSource(cfg: ApiSourceConfig, sink: ZoneSink, env: ApiSourceEnv): SourceHandle {
  return new ApiSource(cfg, sink, env);
}
