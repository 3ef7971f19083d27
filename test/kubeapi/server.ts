// A test Kubernetes API server: real HTTP on 127.0.0.1 speaking enough of the list/watch protocol for the
// kubernetes plugin's sources (and the real @kubernetes/client-node) to run against it.
//
// - GET /api/v1/{services,pods,namespaces}, /api/v1/namespaces/{ns}/{services,pods},
//   /apis/discovery.k8s.io/v1/endpointslices, /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices
// - Lists: `{kind: ServiceList, metadata: {resourceVersion}, items}` with items stripped of kind/apiVersion
//   (as the real server does), labelSelector, limit/continue paging over a snapshot.
// - Watches (?watch=true): newline-delimited JSON events (ADDED/MODIFIED/DELETED/BOOKMARK) from
//   resourceVersion N (replaying history), or synthetic ADDEDs of the current state when N is "" or "0".
//   A label change that makes an object leave (enter) a selector is sent as DELETED (ADDED), as the API
//   server does. A resourceVersion older than the history window gets HTTP 200 + one
//   `{"type":"ERROR","object":{"kind":"Status","code":410,...}}` event, then the stream closes.
//   allowWatchBookmarks and timeoutSeconds are honoured.
// - One global resourceVersion counter shared by all kinds, like etcd's revision.
//
// Lists are cheap for the server so that benchmarks measure the client (the bench runs this server in
// its own process): stored objects are never mutated (changes store a new object), so each object's
// list JSON is encoded once when it is stored, the sorted object list of a kind is kept until the kind
// changes, and a paging snapshot is that list plus an offset (no copy of the rest per page). Before,
// 100,000 Pods in pages of 500 cost ~20 ms of this server's CPU per page (sort, copy, strip, encode),
// ~4 s in all, each on the client's critical path (pages are requested one after the other).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { matches, parseSelector, type Selector } from '../../plugins/kubernetes/selector.ts';

export type ResourceKind = 'Service' | 'EndpointSlice' | 'Namespace' | 'Pod';

/** An API object as JSON. */
export interface ApiObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

interface ResourceInfo { kind: ResourceKind; plural: string; apiVersion: string; namespaced: boolean }

const resources: readonly ResourceInfo[] = [
  { kind: 'Service', plural: 'services', apiVersion: 'v1', namespaced: true },
  { kind: 'EndpointSlice', plural: 'endpointslices', apiVersion: 'discovery.k8s.io/v1', namespaced: true },
  { kind: 'Namespace', plural: 'namespaces', apiVersion: 'v1', namespaced: false },
  { kind: 'Pod', plural: 'pods', apiVersion: 'v1', namespaced: true },
];
const byKind = new Map(resources.map((r) => [r.kind, r]));

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
interface HistoryEvent { rv: number; kind: ResourceKind; type: EventType; obj: ApiObject; prev?: ApiObject }

interface Watcher {
  kind: ResourceKind;
  namespace: string | undefined;
  selector: Selector;
  bookmarks: boolean;
  res: ServerResponse;
  timers: NodeJS.Timeout[];
}

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  watch: boolean;
  status?: number;
  at: number;
}

export interface KubeApiOptions {
  /** Bearer token clients must send (default "test-token"); null disables the check. */
  token?: string | null;
  /** Events kept for watch resumption; older resourceVersions get 410 (default 1000). */
  historySize?: number;
  /** Send BOOKMARK events to watches that allow them this often (default: only via sendBookmarks()). */
  bookmarkIntervalMs?: number;
}

function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function keyOf(ns: string | undefined, name: string): string {
  return ns ? `${ns}/${name}` : name;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

export class KubeApiServer {
  /** Every request received, in order. */
  readonly requests: RequestRecord[] = [];
  private readonly server: Server;
  private readonly store = new Map<ResourceKind, Map<string, ApiObject>>(resources.map((r) => [r.kind, new Map()]));
  private history: HistoryEvent[] = [];
  /** Watches from a resourceVersion below this get 410 Gone. */
  private compactedRv = 0;
  private rv = 100;
  private readonly watchers = new Set<Watcher>();
  private readonly snapshots = new Map<string, { kind: ResourceKind; rv: number; items: ApiObject[]; offset: number }>();
  /** Per kind: its objects sorted by key, until the kind changes. */
  private readonly sorted = new Map<ResourceKind, ApiObject[]>();
  /** An object's JSON as a list item (no kind/apiVersion); stored objects are never mutated. */
  private readonly itemJson = new WeakMap<ApiObject, string>();
  private readonly sockets = new Set<Socket>();
  private down: false | 'error' | 'reset' = false;
  private readonly token: string | null;
  private readonly historySize: number;
  private readonly bookmarkIntervalMs: number;
  private port = 0;

  private constructor(opts: KubeApiOptions) {
    this.token = opts.token === undefined ? 'test-token' : opts.token;
    this.historySize = opts.historySize ?? 1000;
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 0;
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(opts: KubeApiOptions = {}): Promise<KubeApiServer> {
    const s = new KubeApiServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, '127.0.0.1', () => resolve());
    });
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  get url(): string { return `http://127.0.0.1:${this.port}`; }
  /** Open watch streams. */
  get watchCount(): number { return this.watchers.size; }
  /** The current (latest) resourceVersion. */
  get resourceVersion(): string { return String(this.rv); }
  get bearerToken(): string | null { return this.token; }

  /** Requests matching a path (and optionally watch or list only). */
  requestsTo(path: string, watch?: boolean): RequestRecord[] {
    return this.requests.filter((r) => r.path === path && (watch === undefined || r.watch === watch));
  }

  // ---- state changes ----

  /** Create an object (kind from obj.kind); throws if it exists. */
  add(obj: ApiObject): ApiObject {
    const { info, key } = this.locate(obj);
    const objects = this.store.get(info.kind)!;
    if (objects.has(key)) throw new Error(`${info.kind} ${key} already exists`);
    const stored = this.stamp(obj, info, true);
    this.itemText(stored); // encoded now, while the bench loads the cluster, not while a client lists
    objects.set(key, stored);
    this.record({ rv: this.rv, kind: info.kind, type: 'ADDED', obj: stored });
    return clone(stored);
  }

  /** Replace an existing object; throws if it does not exist. */
  update(obj: ApiObject): ApiObject {
    const { info, key } = this.locate(obj);
    const objects = this.store.get(info.kind)!;
    const prev = objects.get(key);
    if (!prev) throw new Error(`${info.kind} ${key} does not exist`);
    const stored = this.stamp(obj, info, false, prev);
    this.itemText(stored);
    objects.set(key, stored);
    this.record({ rv: this.rv, kind: info.kind, type: 'MODIFIED', obj: stored, prev });
    return clone(stored);
  }

  /** Delete an object; throws if it does not exist. */
  remove(kind: ResourceKind, namespace: string | undefined, name: string): void {
    const objects = this.store.get(kind)!;
    const key = keyOf(byKind.get(kind)!.namespaced ? namespace : undefined, name);
    const prev = objects.get(key);
    if (!prev) throw new Error(`${kind} ${key} does not exist`);
    objects.delete(key);
    const gone = clone(prev);
    gone.metadata.resourceVersion = String(++this.rv);
    this.record({ rv: this.rv, kind, type: 'DELETED', obj: gone });
  }

  /** The stored object (a copy), or undefined. */
  get(kind: ResourceKind, namespace: string | undefined, name: string): ApiObject | undefined {
    const o = this.store.get(kind)!.get(keyOf(byKind.get(kind)!.namespaced ? namespace : undefined, name));
    return o ? clone(o) : undefined;
  }

  /** Sort each kind's objects now (after a bulk load), so that the first list does not pay for it. */
  prepareLists(): void {
    for (const r of resources) this.current(r, undefined, parseSelector(''));
  }

  // ---- failure injection ----

  /** End every open watch stream (cleanly by default; `abrupt` destroys the connections instead). */
  dropWatches(opts: { abrupt?: boolean } = {}): void {
    for (const w of [...this.watchers]) this.endWatch(w, opts.abrupt ?? false);
  }

  /** Forget the event history (and paging snapshots): resuming from any older resourceVersion gets 410. */
  compactHistory(): void {
    this.history = [];
    this.compactedRv = this.rv;
    this.snapshots.clear();
  }

  /**
   * Take the API down: open watches are cut and every request fails, with HTTP 500 ('error') or with the
   * connection reset ('reset'). setDown(false) brings it back.
   */
  setDown(down: boolean, how: 'error' | 'reset' = 'error'): void {
    this.down = down ? how : false;
    if (down) this.dropWatches({ abrupt: true });
  }

  /** Send a BOOKMARK at the current resourceVersion to every watch that allows bookmarks. */
  sendBookmarks(): void {
    for (const w of this.watchers) if (w.bookmarks) this.bookmark(w);
  }

  /** Write a kubeconfig for this server (plain http, bearer token) into dir; returns its path. */
  kubeconfigFile(dir: string, opts: { context?: string; token?: string } = {}): string {
    const context = opts.context ?? 'test';
    const file = join(dir, 'kubeconfig');
    // JSON is YAML; client-node only allows http:// servers with insecure-skip-tls-verify set.
    writeFileSync(file, JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test-cluster', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'test-user', user: { token: opts.token ?? this.token ?? 'unused' } }],
      contexts: [{ name: context, context: { cluster: 'test-cluster', user: 'test-user' } }],
      'current-context': context,
    }, null, 2));
    return file;
  }

  async close(): Promise<void> {
    this.dropWatches({ abrupt: true });
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const s of this.sockets) s.destroy();
    });
  }

  // ---- internals ----

  private locate(obj: ApiObject): { info: ResourceInfo; key: string } {
    const info = byKind.get(obj.kind as ResourceKind);
    if (!info) throw new Error(`unsupported kind ${String(obj.kind)}`);
    const name = obj.metadata?.name;
    if (typeof name !== 'string' || name === '') throw new Error('object without metadata.name');
    const ns = info.namespaced ? obj.metadata.namespace : undefined;
    if (info.namespaced && !ns) throw new Error(`${info.kind} ${name} without metadata.namespace`);
    return { info, key: keyOf(ns, name) };
  }

  private stamp(obj: ApiObject, info: ResourceInfo, create: boolean, prev?: ApiObject): ApiObject {
    const o = clone(obj);
    o.apiVersion = info.apiVersion;
    o.kind = info.kind;
    o.metadata.resourceVersion = String(++this.rv);
    o.metadata.uid = (create ? undefined : prev?.metadata.uid) ?? o.metadata.uid ?? randomUUID();
    o.metadata.creationTimestamp = (create ? undefined : prev?.metadata.creationTimestamp) ?? o.metadata.creationTimestamp ?? new Date().toISOString();
    return o;
  }

  private record(ev: HistoryEvent): void {
    this.sorted.delete(ev.kind);
    this.history.push(ev);
    if (this.history.length > this.historySize) {
      const dropped = this.history.splice(0, this.history.length - this.historySize);
      this.compactedRv = dropped[dropped.length - 1]!.rv;
    }
    for (const w of this.watchers) if (w.kind === ev.kind) this.deliver(w, ev);
  }

  /** The event a watcher sees for a change, after its namespace and label filters (or none). */
  private filtered(w: Watcher, ev: HistoryEvent): { type: EventType; object: ApiObject } | undefined {
    const passes = (o: ApiObject | undefined) =>
      o !== undefined && (w.namespace === undefined || o.metadata.namespace === w.namespace) && matches(w.selector, o.metadata.labels);
    const now = passes(ev.obj);
    if (ev.type !== 'MODIFIED') return now ? { type: ev.type, object: ev.obj } : undefined;
    const before = passes(ev.prev);
    if (now && before) return { type: 'MODIFIED', object: ev.obj };
    if (now) return { type: 'ADDED', object: ev.obj };
    if (before) {
      // Left the selection: the API server sends the previous state, at the new resourceVersion.
      const gone = clone(ev.prev!);
      gone.metadata.resourceVersion = ev.obj.metadata.resourceVersion;
      return { type: 'DELETED', object: gone };
    }
    return undefined;
  }

  private deliver(w: Watcher, ev: HistoryEvent): void {
    const e = this.filtered(w, ev);
    if (e) this.send(w, e);
  }

  private send(w: Watcher, event: { type: string; object: unknown }): void {
    if (!w.res.writableEnded && !w.res.destroyed) w.res.write(JSON.stringify(event) + '\n');
  }

  private bookmark(w: Watcher): void {
    const info = byKind.get(w.kind)!;
    this.send(w, { type: 'BOOKMARK', object: { kind: info.kind, apiVersion: info.apiVersion, metadata: { resourceVersion: String(this.rv) } } });
  }

  private endWatch(w: Watcher, abrupt: boolean): void {
    if (!this.watchers.delete(w)) return;
    for (const t of w.timers) clearTimeout(t);
    if (abrupt) w.res.socket?.destroy();
    else w.res.end();
  }

  private reply(res: ServerResponse, rec: RequestRecord, code: number, body: unknown): void {
    rec.status = code;
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    const q = Object.fromEntries(url.searchParams);
    const watch = q.watch === 'true' || q.watch === '1';
    const rec: RequestRecord = { method: req.method ?? 'GET', path: url.pathname, query: q, watch, at: Date.now() };
    this.requests.push(rec);

    if (this.down === 'reset') { req.socket.destroy(); return; }
    if (this.down === 'error') {
      this.reply(res, rec, 500, status(500, 'InternalError', 'etcdserver: request timed out'));
      return;
    }
    if (this.token !== null && req.headers.authorization !== `Bearer ${this.token}`) {
      this.reply(res, rec, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (req.method !== 'GET') {
      this.reply(res, rec, 405, status(405, 'MethodNotAllowed', 'the test API server is read-only'));
      return;
    }
    const route = this.route(url.pathname);
    if (!route) {
      this.reply(res, rec, 404, status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
      return;
    }
    let selector: Selector;
    try {
      selector = parseSelector(q.labelSelector ?? '');
    } catch (err) {
      this.reply(res, rec, 400, status(400, 'BadRequest', `unable to parse requirement: ${(err as Error).message}`));
      return;
    }
    if (watch) this.watch(res, rec, route, selector, q);
    else this.list(res, rec, route, selector, q);
  }

  private route(path: string): { info: ResourceInfo; namespace: string | undefined } | undefined {
    let m = /^\/api\/v1\/(services|pods|namespaces)$/.exec(path);
    if (m) return { info: resources.find((r) => r.plural === m![1])!, namespace: undefined };
    m = /^\/api\/v1\/namespaces\/([^/]+)\/(services|pods)$/.exec(path);
    if (m) return { info: resources.find((r) => r.plural === m![2])!, namespace: m[1] };
    if (path === '/apis/discovery.k8s.io/v1/endpointslices') return { info: byKind.get('EndpointSlice')!, namespace: undefined };
    m = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/.exec(path);
    if (m) return { info: byKind.get('EndpointSlice')!, namespace: m[1] };
    return undefined;
  }

  private current(info: ResourceInfo, namespace: string | undefined, selector: Selector): ApiObject[] {
    let all = this.sorted.get(info.kind);
    if (!all) {
      all = [...this.store.get(info.kind)!.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([, o]) => o);
      this.sorted.set(info.kind, all);
    }
    if (namespace === undefined && selector.requirements.length === 0) return all;
    return all.filter((o) => (namespace === undefined || o.metadata.namespace === namespace) && matches(selector, o.metadata.labels));
  }

  /** The list item JSON of a stored object (cached). */
  private itemText(o: ApiObject): string {
    let text = this.itemJson.get(o);
    if (text === undefined) {
      // List items carry no kind/apiVersion, as with the real API server.
      const { kind: _k, apiVersion: _a, ...rest } = o;
      text = JSON.stringify(rest);
      this.itemJson.set(o, text);
    }
    return text;
  }

  private list(res: ServerResponse, rec: RequestRecord, route: { info: ResourceInfo; namespace: string | undefined }, selector: Selector, q: Record<string, string>): void {
    const { info } = route;
    let rv = this.rv;
    let items: ApiObject[];
    let offset = 0;
    if (q.continue) {
      const snap = this.snapshots.get(q.continue);
      if (!snap || snap.kind !== info.kind) {
        this.reply(res, rec, 410, status(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.'));
        return;
      }
      this.snapshots.delete(q.continue);
      rv = snap.rv;
      items = snap.items;
      offset = snap.offset;
    } else {
      items = this.current(info, route.namespace, selector);
    }
    const limit = q.limit ? Number(q.limit) : 0;
    const metadata: Record<string, unknown> = { resourceVersion: String(rv) };
    let end = items.length;
    if (limit > 0 && items.length - offset > limit) {
      end = offset + limit;
      const token = randomUUID();
      this.snapshots.set(token, { kind: info.kind, rv, items, offset: end });
      metadata.continue = token;
      metadata.remainingItemCount = items.length - end;
    }
    const parts: string[] = [];
    for (let i = offset; i < end; i++) parts.push(this.itemText(items[i]!));
    rec.status = 200;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`{"kind":${JSON.stringify(`${info.kind}List`)},"apiVersion":${JSON.stringify(info.apiVersion)},"metadata":${JSON.stringify(metadata)},"items":[${parts.join(',')}]}`);
  }

  private watch(res: ServerResponse, rec: RequestRecord, route: { info: ResourceInfo; namespace: string | undefined }, selector: Selector, q: Record<string, string>): void {
    rec.status = 200;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = { kind: route.info.kind, namespace: route.namespace, selector, bookmarks: q.allowWatchBookmarks === 'true', res, timers: [] };
    const from = q.resourceVersion ?? '';
    if (from !== '' && from !== '0') {
      const n = Number(from);
      if (!Number.isInteger(n) || n < this.compactedRv) {
        res.end(JSON.stringify({
          type: 'ERROR',
          object: status(410, 'Expired', `too old resource version: ${from} (${this.compactedRv + 1})`),
        }) + '\n');
        return;
      }
      this.watchers.add(w);
      for (const ev of this.history) if (ev.rv > n && ev.kind === w.kind) this.deliver(w, ev);
    } else {
      this.watchers.add(w);
      for (const o of this.current(route.info, route.namespace, selector)) this.send(w, { type: 'ADDED', object: o });
    }
    const timeout = Number(q.timeoutSeconds ?? 0);
    if (timeout > 0) {
      w.timers.push(setTimeout(() => {
        // Like the API server: a last bookmark so the client resumes from the newest resourceVersion.
        if (w.bookmarks) this.bookmark(w);
        this.endWatch(w, false);
      }, timeout * 1000));
    }
    if (this.bookmarkIntervalMs > 0 && w.bookmarks) {
      w.timers.push(setInterval(() => this.bookmark(w), this.bookmarkIntervalMs));
    }
    res.on('close', () => {
      this.watchers.delete(w);
      for (const t of w.timers) clearTimeout(t);
    });
  }
}

/** Start a test API server on 127.0.0.1 (random port). */
export function startKubeApi(opts: KubeApiOptions = {}): Promise<KubeApiServer> {
  return KubeApiServer.start(opts);
}
