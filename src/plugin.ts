import type { Controller } from './corefile/controller.ts';
import type { Msg } from './dns/types.ts';
import type { Request } from './request.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { HttpMux } from './server/http.ts';

/** What a handler gives back: a reply, now or later. Sync returns keep the hot path free of promises. */
export type Reply = Msg | Promise<Msg>;
export type Next = (req: Request) => Reply;

/**
 * One plugin in a server block's chain. A handler returns the reply instead of writing it; the server
 * writes exactly once. To fail, throw a DnsError (or anything: the server answers SERVFAIL).
 * Mutate only copies: replies may be shared, prebuilt objects.
 */
export interface Handler {
  readonly name: string;
  serveDNS(req: Request, next: Next): Reply;
  /**
   * Memo-aware: this handler tells the request what its replies depend on (Request.noMemo,
   * memoValidUntil, memoDependsOn, memoOnHit, memoShuffleRuns), so the server may reuse a finished
   * reply for the same question without running the chain (src/server/memo.ts). A block with any
   * handler that is not memo-aware never reuses replies.
   */
  readonly memo?: boolean;
}

/** A failure with the rcode the client should see; the errors plugin logs `cause`. */
export class DnsError extends Error {
  readonly rcode: number;
  readonly plugin: string;
  constructor(rcode: number, plugin: string, cause?: unknown) {
    super(cause instanceof Error ? cause.message : cause === undefined ? `rcode ${rcode}` : String(cause), { cause });
    this.name = 'DnsError';
    this.rcode = rcode;
    this.plugin = plugin;
  }
}

/**
 * Await a Reply only when it is a promise: `andThen(next(req), (m) => ...)`. (Not named `then`: a
 * module exporting `then` is a thenable, and `await import()` of it resolves to garbage.)
 */
export function andThen<T>(r: Reply, f: (m: Msg) => T | Promise<T>): T | Promise<T> {
  return r instanceof Promise ? r.then(f) : f(r);
}

/** Facts about the server block a plugin is set up in. */
export interface BlockInfo {
  /** Canonical zones of the block's keys. */
  zones: string[];
  /** Listen address labels of the block, CoreDNS style: "dns://:53". */
  servers: string[];
  /** The block's index in the Corefile (stable across one configuration). */
  index: number;
  /** Names of the plugins configured in this block, in chain order (coredns_plugin_enabled). */
  plugins: string[];
}

/** Called after the server wrote a reply: `size` is the bytes written, `durationMs` from receipt. */
export type ResponseObserver = (req: Request, reply: Msg, size: number, durationMs: number) => void;
/** Called when the chain threw. `panic` is true for anything but a DnsError (a bug: SERVFAIL + coredns_panics_total). */
export type ErrorObserver = (req: Request, err: unknown, panic: boolean) => void;

/**
 * Everything a plugin's setup may use. Hooks run in registration order; shutdown hooks of all plugins
 * run before listeners close (health's lameduck goes first because health sets up first).
 */
export interface SetupEnv {
  block: BlockInfo;
  log: Logger;
  /** The instance's metrics registry (no globals: two instances in one test never collide). */
  metrics: Metrics;
  /** Shared HTTP listeners by address ("127.0.0.1:8080", ":9153"); they survive reloads. */
  http(addr: string): HttpMux;
  /** Called once the instance is listening. May be async (kubernetes waits for sync there). */
  onStartup(fn: () => void | Promise<void>): void;
  /** Called on SIGTERM/stop while DNS still answers (lameduck), before listeners close. */
  onShutdown(fn: () => void | Promise<void>): void;
  /** Called after listeners closed: release watches, timers, HTTP routes. */
  onFinalShutdown(fn: () => void | Promise<void>): void;
  /** Observe every reply this block writes (log plugin). Registered once at setup: no per-query closures. */
  onResponse(fn: ResponseObserver): void;
  /** Observe chain failures in this block (errors plugin). */
  onError(fn: ErrorObserver): void;
  /** Record coredns_dns_* request/response metrics for this block (prometheus plugin). */
  enableServerMetrics(): void;
  /** Register a readiness check reported by the `ready` plugin under this plugin's name. */
  readiness(plugin: string, isReady: () => boolean): void;
  /** Every readiness check registered in this instance so far (all blocks), for the ready plugin. */
  readinessChecks(): ReadonlyMap<string, () => boolean>;
  /** Handlers of other plugins in the same block, by name (after the block is set up; e.g. autopath → kubernetes). */
  peer<T extends Handler = Handler>(name: string): T | undefined;
  /** The instance, for plugins that act on it (loop sends a query through the chain, reload restarts it). */
  instance: InstanceApi;
  /** The Corefile files, for reload. */
  corefile: { file: string; files: string[] };
  /**
   * Which thread this setup runs in: `single` (one thread does everything, the default), or with
   * `-workers N`: `main` (the control plane: sources, HTTP endpoints, reload; no DNS sockets) or
   * `worker` (a data plane thread answering DNS). Absent means `single`.
   */
  role?: Role;
  /** With workers: how a plugin's main-thread half and its worker halves talk (see PluginLink). */
  link?: PluginLink;
}

export type Role = 'single' | 'main' | 'worker';

/**
 * Where a plugin is set up when the server runs workers: `workers` (the default: in every worker,
 * with per-worker state), `main` (once, in the main thread: HTTP endpoints, reload), or `both` (a
 * plugin with a half in each; it looks at `env.role`).
 */
export type Placement = 'workers' | 'main' | 'both';

/** What a plugin's main-thread half offers its worker halves. */
export interface LinkService {
  /** Memory the worker halves read without asking (e.g. change counters). */
  shared?: SharedArrayBuffer;
  /** Answer a worker's call; the value must survive structured cloning. */
  handle(body: unknown): unknown;
}

/** A worker half's view of its main-thread half. */
export interface LinkClient {
  readonly shared: SharedArrayBuffer | undefined;
  call(body: unknown): Promise<unknown>;
}

/**
 * Per configuration: in `main`, `serve` offers a service under a key unique to the plugin and block
 * (`kubernetes#0`); in a worker, `connect` reaches it (undefined when main offered none).
 */
export interface PluginLink {
  serve(key: string, service: LinkService): void;
  connect(key: string): LinkClient | undefined;
}

export interface InstanceApi {
  /** Send a query through a block's chain as if it came from 127.0.0.1 over UDP (loop, tests). */
  query(blockIndex: number, name: string, type: number): Promise<Msg>;
  /**
   * Re-read the Corefile (same path) and replace the running instance with it. Rejects, leaving the
   * current configuration serving, when the new one fails to parse or set up.
   */
  reload(): Promise<void>;
  /** Is the instance in lameduck / shutting down? (ready reports 503 then). */
  readonly draining: boolean;
}

/**
 * A plugin's definition: a pure parse of its directive into a typed config, and a setup that wires it.
 * `setup` may return a Handler (it joins the chain at the plugin's place in src/directives.ts) or nothing.
 */
export interface PluginDef<C = unknown> {
  name: string;
  /** May the directive appear more than once in a server block? */
  multiple?: boolean;
  /** Where it is set up with `-workers N` (default `workers`); ignored in single-threaded mode. */
  placement?: Placement;
  parse(c: Controller): C;
  setup(cfg: C, env: SetupEnv): Handler | undefined | Promise<Handler | undefined>;
}

export function definePlugin<C>(def: PluginDef<C>): PluginDef<C> {
  return def;
}
