// The manifests source: Services, EndpointSlices, Namespaces and Pods from YAML/JSON files, for running
// without a cluster (the bundled example, tests, air-gapped demos). Files or folders (searched
// recursively for *.yaml, *.yml, *.json; dot-files skipped), multi-document YAML, `List` kinds.
//
// - Unknown kinds are ignored. An invalid object is skipped and logged with its file.
// - A file that fails to parse is logged and its objects from the last good load are kept, so a typo
//   while editing never empties the zone. A deleted file drops its objects.
// - Namespaces are implied: a namespace that objects live in but that has no Namespace document is
//   created (labels only `kubernetes.io/metadata.name`, which the API server sets on every namespace), so
//   small manifest sets need no Namespace documents. `namespaceLabels` applies to implied ones too.
// - `labels` filters Services and EndpointSlices, `namespaceLabels` Namespaces, as the API source does
//   on the server.
// - With `watch`, changes are picked up through fs.watch (debounced) plus a poll of mtimes and sizes
//   (fs.watch misses editors' rename-over-writes and network filesystems); each change re-feeds every
//   kind whose content changed with one replaceAll.
// - Objects without metadata.namespace go to "default", as `kubectl apply` would put them there.
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { CORE_SCHEMA, loadAll } from 'js-yaml';
import type { Logger } from '../../src/log.ts';
import type { Metrics } from '../../src/metrics.ts';
import {
  describeObject, isInvalid, toSlimEndpointSlice, toSlimNamespace, toSlimPod, toSlimService, type Converted,
} from './convert.ts';
import type { Kind, SlimEndpointSlice, SlimNamespace, SlimPod, SlimService, SourceHandle, ZoneSink } from './objects.ts';
import { everything, matches, parseSelector, type Selector } from './selector.ts';

export interface ManifestSourceOptions {
  /** Reload on change (fs.watch + poll). */
  watch?: boolean;
  /** Label selector for Services and EndpointSlices. */
  labels?: string;
  /** Label selector for Namespaces. */
  namespaceLabels?: string;
  /** Quiet time after a file event before reloading (default 100 ms). */
  debounceMs?: number;
  /** Poll interval comparing mtimes and sizes (default 2 s, 30 s while every path has a file-system watch). */
  pollMs?: number;
}

export interface ManifestSourceEnv {
  /** Already prefixed `plugin/kubernetes`. */
  log: Logger;
  /** Accepted so callers can pass the same env as to the API source; the manifests source exports none. */
  metrics?: Metrics;
}

const extensions = new Set(['.yaml', '.yml', '.json']);
const nsNameLabel = 'kubernetes.io/metadata.name';

type Loaded =
  | { kind: 'Service'; key: string; labels: Record<string, string>; slim: SlimService }
  | { kind: 'EndpointSlice'; key: string; labels: Record<string, string>; slim: SlimEndpointSlice }
  | { kind: 'Namespace'; key: string; labels: Record<string, string>; slim: SlimNamespace }
  | { kind: 'Pod'; key: string; labels: Record<string, string>; slim: SlimPod };

interface FileState { mtimeMs: number; size: number; objects: Loaded[] }

function labelsOf(obj: unknown): Record<string, string> {
  const labels = (obj as { metadata?: { labels?: unknown } }).metadata?.labels;
  return typeof labels === 'object' && labels !== null ? (labels as Record<string, string>) : {};
}

function kindOf(obj: Record<string, unknown>): Kind | undefined {
  const kind = obj.kind;
  const apiVersion = typeof obj.apiVersion === 'string' ? obj.apiVersion : undefined;
  switch (kind) {
    case 'Service':
    case 'Namespace':
    case 'Pod':
      return apiVersion === undefined || apiVersion === 'v1' ? kind : undefined;
    case 'EndpointSlice':
      return apiVersion === undefined || apiVersion.startsWith('discovery.k8s.io/') ? kind : undefined;
    default:
      return undefined;
  }
}

function parseError(err: unknown): string {
  const e = err as { reason?: unknown; mark?: { line: number; column: number }; message?: unknown };
  if (typeof e.reason === 'string' && e.mark) return `${e.reason} (line ${e.mark.line + 1}, column ${e.mark.column + 1})`;
  return typeof e.message === 'string' ? e.message.split('\n')[0]! : String(err);
}

/** Every document in a file's text, Lists flattened. Throws on a syntax error. */
function documents(file: string, text: string): unknown[] {
  const docs = extname(file) === '.json' ? [JSON.parse(text) as unknown] : loadAll(text, { schema: CORE_SCHEMA });
  const out: unknown[] = [];
  const add = (doc: unknown, impliedKind?: string) => {
    if (doc === null || doc === undefined) return;
    if (typeof doc !== 'object' || Array.isArray(doc)) { out.push(doc); return; }
    const o = doc as Record<string, unknown>;
    if (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items)) {
      // Items of typed lists (ServiceList) may omit kind, as API list responses do.
      const itemKind = o.kind === 'List' ? undefined : o.kind.slice(0, -'List'.length);
      for (const item of o.items) add(item, itemKind);
      return;
    }
    out.push(impliedKind && o.kind === undefined ? { ...o, kind: impliedKind } : o);
  };
  for (const d of docs) add(d);
  return out;
}

const POLL_MS = 2_000;
const WATCHED_POLL_MS = 30_000;

class ManifestSource implements SourceHandle {
  readonly synced: Promise<void>;
  private resolveSynced!: () => void;
  private syncedFlag = false;
  private lastContactMs = 0;
  private stopped = false;
  private readonly files = new Map<string, FileState>();
  private readonly fed = new Map<Kind, string>();
  private readonly missing = new Set<string>();
  private readonly watchers = new Map<string, FSWatcher>();
  private debounce: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly labels: Selector;
  private readonly namespaceLabels: Selector;

  private readonly paths: string[];
  private readonly sink: ZoneSink;
  private readonly log: Logger;
  private readonly opts: ManifestSourceOptions;

  constructor(paths: string[], sink: ZoneSink, env: ManifestSourceEnv, opts: ManifestSourceOptions) {
    this.paths = paths;
    this.sink = sink;
    this.log = env.log;
    this.opts = opts;
    this.labels = opts.labels ? parseSelector(opts.labels) : everything;
    this.namespaceLabels = opts.namespaceLabels ? parseSelector(opts.namespaceLabels) : everything;
    this.synced = new Promise((resolve) => { this.resolveSynced = resolve; });
    this.reload();
  }

  isSynced(): boolean { return this.syncedFlag; }
  lastContact(): number { return this.lastContactMs; }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearTimeout(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.running;
  }

  /** Run a reload now, or once more after the one in progress. */
  private reload(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    this.running = this.load()
      .catch((err: unknown) => this.log.error(`loading manifests: ${(err as Error).message}`))
      .finally(() => {
        this.running = undefined;
        if (this.again) { this.again = false; this.reload(); } else this.schedulePoll();
      });
  }

  /**
   * The next poll, if none is pending: every 2 s while a path has no file-system watch, every 30 s
   * (a safety net) while all have one. A poll stats every file on the DNS event loop; at 2 s it was a
   * 1-2 ms stall every other second that production (the API source) does not have.
   */
  private schedulePoll(): void {
    if (!this.opts.watch || this.stopped || this.poll) return;
    const every = this.opts.pollMs ?? (this.paths.every((p) => this.watchers.has(p)) ? WATCHED_POLL_MS : POLL_MS);
    this.poll = setTimeout(() => { this.poll = undefined; this.reload(); }, every);
    this.poll.unref();
  }

  private scheduleReload(): void {
    if (this.stopped) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => { this.debounce = undefined; this.reload(); }, this.opts.debounceMs ?? 100);
  }

  private async findFiles(): Promise<string[]> {
    const found: string[] = [];
    const walk = async (dir: string) => {
      const entries = await readdir(dir, { withFileTypes: true });
      for (const e of entries) {
        if (e.name.startsWith('.')) continue;
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if ((e.isFile() || e.isSymbolicLink()) && extensions.has(extname(e.name))) found.push(p);
      }
    };
    for (const path of this.paths) {
      let st;
      try {
        st = await stat(path);
      } catch (err) {
        if (!this.missing.has(path)) {
          this.missing.add(path);
          this.log.error(`manifests ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
        continue;
      }
      this.missing.delete(path);
      if (st.isDirectory()) await walk(path);
      else found.push(path);
      if (this.opts.watch) this.watchPath(path, st.isDirectory());
    }
    return [...new Set(found)].sort();
  }

  private watchPath(path: string, isDir: boolean): void {
    if (this.watchers.has(path) || this.stopped) return;
    try {
      // A file is watched through its folder: editors replace files by renaming over them.
      const w = isDir
        ? fsWatch(path, { recursive: true, persistent: false }, () => this.scheduleReload())
        : fsWatch(dirname(path), { persistent: false }, (_ev, name) => { if (!name || name === basename(path)) this.scheduleReload(); });
      w.on('error', () => { w.close(); this.watchers.delete(path); });
      this.watchers.set(path, w);
    } catch {
      // The poll still notices changes.
    }
  }

  private async load(): Promise<void> {
    const files = await this.findFiles();
    let changed = !this.syncedFlag;
    for (const gone of [...this.files.keys()].filter((f) => !files.includes(f))) {
      this.files.delete(gone);
      changed = true;
    }
    for (const file of files) {
      let st;
      try {
        st = await stat(file);
      } catch {
        if (this.files.delete(file)) changed = true;
        continue;
      }
      const prev = this.files.get(file);
      if (prev && prev.mtimeMs === st.mtimeMs && prev.size === st.size) continue;
      changed = true;
      let objects: Loaded[];
      try {
        objects = this.parse(file, await readFile(file, 'utf8'));
      } catch (err) {
        this.log.error(`manifests ${file}: ${parseError(err)}; ${prev ? 'keeping its last good objects' : 'no objects loaded from it'}`);
        // Remember the stat so the same broken version is not re-parsed (and re-logged) on every poll.
        this.files.set(file, { mtimeMs: st.mtimeMs, size: st.size, objects: prev?.objects ?? [] });
        continue;
      }
      this.files.set(file, { mtimeMs: st.mtimeMs, size: st.size, objects });
    }
    if (this.stopped) return;
    if (changed) this.feed();
    this.lastContactMs = Date.now();
    if (!this.syncedFlag) {
      this.syncedFlag = true;
      this.resolveSynced();
    }
  }

  private parse(file: string, text: string): Loaded[] {
    const out: Loaded[] = [];
    for (const doc of documents(file, text)) {
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
        this.log.warn(`manifests ${file}: skipping a document that is not an object`);
        continue;
      }
      const kind = kindOf(doc as Record<string, unknown>);
      if (!kind) continue;
      const opts = { defaultNamespace: 'default' };
      let c: Converted<SlimService | SlimEndpointSlice | SlimNamespace | SlimPod>;
      switch (kind) {
        case 'Service': c = toSlimService(doc, opts); break;
        case 'EndpointSlice': c = toSlimEndpointSlice(doc, opts); break;
        case 'Namespace': c = toSlimNamespace(doc); break;
        case 'Pod': c = toSlimPod(doc, opts); break;
      }
      if (isInvalid(c)) {
        this.log.warn(`skipping ${kind} ${describeObject(doc)} in ${file}: ${c}`);
        continue;
      }
      if (c === null) continue;
      const key = 'namespace' in c ? `${c.namespace}/${c.name}` : c.name;
      out.push({ kind, key, labels: labelsOf(doc), slim: c } as Loaded);
    }
    return out;
  }

  private feed(): void {
    const byKind = {
      Service: new Map<string, SlimService>(),
      EndpointSlice: new Map<string, SlimEndpointSlice>(),
      Namespace: new Map<string, SlimNamespace>(),
      Pod: new Map<string, SlimPod>(),
    };
    const origin = new Map<string, string>();
    const usedNamespaces = new Set<string>();
    for (const [file, st] of [...this.files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      for (const o of st.objects) {
        if ((o.kind === 'Service' || o.kind === 'EndpointSlice') && !matches(this.labels, o.labels)) continue;
        const id = `${o.kind} ${o.key}`;
        const first = origin.get(id);
        if (first !== undefined && first !== file) this.log.warn(`${id} is defined in ${first} and ${file}; using ${file}`);
        origin.set(id, file);
        (byKind[o.kind] as Map<string, typeof o.slim>).set(o.key, o.slim);
        if (o.kind !== 'Namespace') usedNamespaces.add(o.slim.namespace);
      }
    }
    for (const ns of usedNamespaces) {
      if (!byKind.Namespace.has(ns)) byKind.Namespace.set(ns, { name: ns, labels: {} });
    }
    for (const [name, ns] of byKind.Namespace) {
      // The API server labels every namespace with its name; selectors on that label should work here too.
      const labels = { ...ns.labels, [nsNameLabel]: ns.labels[nsNameLabel] ?? name };
      if (matches(this.namespaceLabels, labels)) byKind.Namespace.set(name, { name, labels });
      else byKind.Namespace.delete(name);
    }
    this.replace('Namespace', [...byKind.Namespace.values()]);
    this.replace('Service', [...byKind.Service.values()]);
    this.replace('EndpointSlice', [...byKind.EndpointSlice.values()]);
    this.replace('Pod', [...byKind.Pod.values()]);
  }

  /** replaceAll a kind, unless it holds exactly what was fed last time (changedAt aside). */
  private replace(kind: Kind, items: Array<SlimService | SlimEndpointSlice | SlimNamespace | SlimPod>): void {
    const fingerprint = JSON.stringify(items, (k, v: unknown) => (k === 'changedAt' ? undefined : v));
    if (this.fed.get(kind) === fingerprint) return;
    this.fed.set(kind, fingerprint);
    try {
      switch (kind) {
        case 'Service': this.sink.replaceAll(kind, items as SlimService[]); break;
        case 'EndpointSlice': this.sink.replaceAll(kind, items as SlimEndpointSlice[]); break;
        case 'Namespace': this.sink.replaceAll(kind, items as SlimNamespace[]); break;
        case 'Pod': this.sink.replaceAll(kind, items as SlimPod[]); break;
      }
    } catch (err) {
      this.fed.delete(kind);
      this.log.error(`applying manifests (${kind}): ${(err as Error).message}`);
    }
  }
}

/**
 * Load manifests from files or folders and feed them to the sink; with `watch`, keep them current.
 * Paths are used as given (relative ones against the working directory): the caller resolves them.
 * Throws on a bad label selector. `synced` resolves after the first load, even if some paths were missing
 * or broken (those are logged).
 */
export function startManifestSource(paths: string[], sink: ZoneSink, env: ManifestSourceEnv, opts: ManifestSourceOptions = {}): SourceHandle {
  return new ManifestSource(paths, sink, env, opts);
}
