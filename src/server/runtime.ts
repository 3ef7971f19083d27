// The process-level runtime: owns sockets (DNS and HTTP) and metrics across configurations, and runs
// one Instance (a configuration's set-up plugins and compiled chains) at a time.
import type { CounterChild } from '../fastmetrics.ts';
import { buildPlan, type BlockPlan, type Plan } from '../config.ts';
import { loadCorefile, parseCorefile } from '../corefile/parser.ts';
import type { Corefile } from '../corefile/types.ts';
import { buildQuery } from '../dns/build.ts';
import { parseQuery, type ParsedQuery } from '../dns/query.ts';
import { type Msg, Rcode } from '../dns/types.ts';
import type { Logger } from '../log.ts';
import { Metrics } from '../metrics.ts';
import {
  DnsError, type ErrorObserver, type Handler, type InstanceApi, type Next, type PluginDef, type PluginLink,
  type ResponseObserver, type Role, type SetupEnv,
} from '../plugin.ts';
import { Request } from '../request.ts';
import { HttpMux } from './http.ts';
import { DnsListener, type ListenerOptions } from './listener.ts';
import { Router, type BlockRuntime, type PipelineContext } from './pipeline.ts';
import { ReplyMemo, defaultMemoOptions, newMemoCounts, type MemoCounts } from './memo.ts';
import { ZoneStats, replyMemoMetrics, serverMetricFamilies, udpBufferMetrics, udpKernelMetrics, type ServerMetricFamilies, type UdpListenAddress } from './stats.ts';

type Hook = () => void | Promise<void>;

export interface RuntimeOptions {
  log: Logger;
  /** Port for server blocks that name none (-dns.port). */
  defaultPort: number;
  /** Largest UDP reply and the size we advertise (clamped by each client's own). */
  maxUdpSize?: number;
  /** Reply memo slots per listen address (src/server/memo.ts); 0 turns it off. Default 8192. */
  memoEntries?: number;
  listener?: Partial<ListenerOptions>;
  /** How long to let in-flight queries finish when listeners close. */
  drainMs?: number;
  /**
   * `single` (default): this runtime answers DNS and serves HTTP. `main`: control plane only, DNS is
   * served by `dataPlane` (workers). `worker`: DNS only, no HTTP listeners.
   */
  role?: Role;
  /** role `main`: the workers, started, reloaded and stopped in step with this runtime. */
  dataPlane?: DataPlane;
  /** role `main`: a fresh link per configuration, for plugins with a half in each thread. */
  newLink?: () => PluginLink;
}

/**
 * The threads that answer DNS for a `main` runtime. A reload is two-phase: every worker prepares the
 * new configuration (set up, started) before any switches to it, so a configuration that fails to set
 * up in a worker is abandoned everywhere and the running one stays.
 */
export interface DataPlane {
  /** The main instance is set up (sources synced): start the workers on its configuration. */
  start(inst: Instance): Promise<void>;
  /** Reload, phase 1: every worker sets up `inst`'s configuration beside the running one. */
  prepare(inst: Instance): Promise<void>;
  /** Phase 2: every worker switches to the prepared configuration. */
  commit(): Promise<void>;
  /** A prepared configuration is abandoned. */
  abort(): Promise<void>;
  /** Drain and stop every worker (after lameduck). */
  stop(): Promise<void>;
}

/** Is a plugin set up in a runtime of this role? */
export function placedIn(def: PluginDef<unknown>, role: Role): boolean {
  if (role === 'single') return true;
  const p = def.placement ?? 'workers';
  return p === 'both' || (role === 'main' ? p === 'main' : p === 'workers');
}

/** Compile handlers into one function; each hop records the plugin it reached (for the responses metric). */
export function compileChain(handlers: Handler[]): Next | null {
  if (handlers.length === 0) return null;
  let next: Next = () => { throw new DnsError(Rcode.SERVFAIL, 'server', 'no next plugin found'); };
  for (let i = handlers.length - 1; i >= 0; i--) {
    const h = handlers[i]!;
    const n = next;
    next = (req) => { req.plugin = h.name; return h.serveDNS(req, n); };
  }
  return next;
}

/** One configuration, set up: plugins' handlers, hooks and readiness checks. */
export class Instance implements InstanceApi {
  readonly plan: Plan;
  readonly blocks: BlockRuntime[] = [];
  readonly startup: Hook[] = [];
  readonly shutdown: Hook[] = [];
  readonly finalShutdown: Hook[] = [];
  readonly readiness = new Map<string, () => boolean>();
  draining = false;
  /** With workers: this configuration's link between plugin halves. */
  readonly link: PluginLink | undefined;
  private readonly runtime: Runtime;

  constructor(runtime: Runtime, plan: Plan, link?: PluginLink) {
    this.runtime = runtime;
    this.plan = plan;
    this.link = link;
  }

  async setup(): Promise<void> {
    for (const bp of this.plan.blocks) this.blocks.push(await this.setupBlock(bp));
  }

  private async setupBlock(bp: BlockPlan): Promise<BlockRuntime> {
    const handlers: Handler[] = [];
    const responseObservers: ResponseObserver[] = [];
    const errorObservers: ErrorObserver[] = [];
    const block: BlockRuntime = { index: bp.index, zones: bp.zones, chain: null, responseObservers, errorObservers, metrics: false, memo: false };
    const peers = new Map<string, Handler>();
    const servers = this.plan.listeners.filter((l) => l.blocks.includes(bp)).map((l) => l.label);
    const pluginNames = bp.directives.map((d) => d.def.name);
    const role = this.runtime.role;
    for (const d of bp.directives) {
      if (!placedIn(d.def, role)) continue;
      const env: SetupEnv = {
        block: { zones: bp.zones, servers, index: bp.index, plugins: pluginNames },
        log: this.runtime.log.child(`plugin/${d.def.name}`),
        metrics: this.runtime.metrics,
        http: (addr) => this.runtime.http(addr),
        onStartup: (f) => { this.startup.push(f); },
        onShutdown: (f) => { this.shutdown.push(f); },
        onFinalShutdown: (f) => { this.finalShutdown.push(f); },
        onResponse: (f) => { responseObservers.push(f); },
        onError: (f) => { errorObservers.push(f); },
        enableServerMetrics: () => { block.metrics = true; },
        readiness: (p, f) => { this.readiness.set(p, f); },
        readinessChecks: () => this.readiness,
        peer: <T extends Handler>(name: string) => peers.get(name) as T | undefined,
        instance: this,
        corefile: { file: this.plan.corefile.file, files: this.plan.corefile.files },
        ...(role !== 'single' ? { role } : {}),
        ...(this.link ? { link: this.link } : {}),
      };
      const h = await d.def.setup(d.config, env);
      if (h) { handlers.push(h); peers.set(d.def.name, h); }
    }
    block.chain = compileChain(handlers);
    block.memo = handlers.length > 0 && handlers.every((h) => h.memo === true) && responseObservers.length === 0;
    return block;
  }

  async query(blockIndex: number, name: string, type: number): Promise<Msg> {
    const block = this.blocks.find((b) => b.index === blockIndex);
    if (!block?.chain) throw new Error(`block ${blockIndex} has no plugin chain`);
    const raw = buildQuery(name, type);
    const q = parseQuery(raw) as ParsedQuery;
    const req = new Request(q, raw, 'udp', '127.0.0.1', 0, 'internal');
    req.zone = block.zones[0] ?? '.';
    return await block.chain(req);
  }

  reload(): Promise<void> { return this.runtime.reload(); }
}

export class Runtime {
  readonly log: Logger;
  readonly metrics = new Metrics();
  readonly families: ServerMetricFamilies;
  readonly opts: Required<Pick<RuntimeOptions, 'log' | 'defaultPort' | 'maxUdpSize' | 'drainMs'>> & RuntimeOptions & { listener: Partial<ListenerOptions> };
  readonly role: Role;
  private readonly dns = new Map<string, DnsListener>();
  /** Reply memo counts by listen address label, kept across reloads. */
  private readonly memoCounts = new Map<string, MemoCounts>();
  private readonly muxes = new Map<string, HttpMux>();
  private current: Instance | undefined;
  private reloading: Promise<unknown> = Promise.resolve();

  constructor(opts: RuntimeOptions) {
    this.log = opts.log;
    this.opts = { maxUdpSize: 1232, drainMs: 5_000, listener: {}, ...opts };
    this.role = opts.role ?? 'single';
    if ((this.role === 'main') !== (opts.dataPlane !== undefined)) throw new Error('a main runtime needs a data plane, and only it');
    this.families = serverMetricFamilies(this.metrics);
    if (this.role !== 'worker') udpKernelMetrics(this.metrics, () => this.udpAddresses());
    if (this.role !== 'main') {
      udpBufferMetrics(this.metrics, () => this.listeners.flatMap((l) => {
        const b = l.udpBuffers;
        return b ? [{ label: l.ctx.server, ...b }] : [];
      }));
      replyMemoMetrics(this.metrics, () => {
        // Listeners with one label (several bind addresses) share their counts: one row each.
        const rows = new Map<string, { label: string; counts: MemoCounts; entries: number; bytes: number }>();
        for (const l of this.listeners) {
          const m = l.ctx.memo;
          if (!m) continue;
          const r = rows.get(l.ctx.server);
          if (r) { r.entries += m.size; r.bytes += m.heldBytes; } else rows.set(l.ctx.server, { label: l.ctx.server, counts: m.counts, entries: m.size, bytes: m.heldBytes });
        }
        return [...rows.values()];
      });
    }
  }

  /** The DNS addresses this process serves on UDP: its own listeners', or (main) the workers'. */
  private udpAddresses(): UdpListenAddress[] {
    if (this.role === 'main') return (this.current?.plan.listeners ?? []).map((l) => ({ label: l.label, host: l.host, port: l.port }));
    return this.listeners.filter((l) => l.udpPort > 0).map((l) => ({ label: l.ctx.server, host: l.host, port: l.udpPort }));
  }

  get instance(): Instance | undefined { return this.current; }
  get panics(): CounterChild { return this.families.panics; }

  http(addr: string): HttpMux {
    let m = this.muxes.get(addr);
    if (!m) { m = new HttpMux(addr); this.muxes.set(addr, m); }
    return m;
  }

  /** The listener for host:port (after start), for tests that bind port 0. */
  listener(host = '', port?: number): DnsListener | undefined {
    for (const l of this.dns.values()) if (l.host === host && (port === undefined || l.port === port)) return l;
    return undefined;
  }
  get listeners(): DnsListener[] { return [...this.dns.values()]; }

  /** Parse and plan a Corefile; throws CorefileError without touching anything running. */
  plan(corefile: Corefile): Plan {
    return buildPlan(corefile, { defaultPort: this.opts.defaultPort });
  }

  /** Start serving a configuration. On failure, everything opened is closed again. */
  async start(plan: Plan, link?: PluginLink): Promise<Instance> {
    const inst = await this.prepare(plan, link);
    try {
      if (this.opts.dataPlane) await this.opts.dataPlane.start(inst);
      else await this.attach(inst);
    } catch (e) {
      await this.discard(inst);
      throw e;
    }
    this.current = inst;
    return inst;
  }

  /**
   * Set a configuration up beside the running one (plugins, HTTP routes, startup hooks such as the
   * kubernetes sync) without giving it any DNS traffic yet. On failure it is discarded.
   */
  async prepare(plan: Plan, link?: PluginLink): Promise<Instance> {
    const inst = new Instance(this, plan, link ?? this.opts.newLink?.());
    try {
      await inst.setup();
      // Workers serve no HTTP: the main thread does (health, ready, metrics).
      if (this.role !== 'worker') for (const m of this.muxes.values()) if (m.routeCount > 0) await m.listen();
      // Plugins that must be ready before DNS answers (kubernetes' first sync) wait here.
      for (const h of inst.startup) await h();
    } catch (e) {
      await this.discard(inst);
      throw e;
    }
    return inst;
  }

  /** Undo a prepared configuration that will not serve (routes, timers, watches). */
  async discard(inst: Instance): Promise<void> {
    await this.runHooks(inst.finalShutdown);
    await this.closeUnusedMuxes();
  }

  private contextFor(inst: Instance, label: string, blocks: BlockRuntime[]): PipelineContext {
    const routes = blocks.flatMap((b) => b.zones.map((zone) => ({
      zone, block: b, stats: b.metrics ? new ZoneStats(this.families, label, zone) : null,
    })));
    void inst;
    const entries = this.opts.memoEntries ?? defaultMemoOptions.entries;
    let counts = this.memoCounts.get(label);
    if (!counts) { counts = newMemoCounts(); this.memoCounts.set(label, counts); }
    const memo = entries > 0 && blocks.some((b) => b.memo) ? new ReplyMemo(this.opts.maxUdpSize, { entries }, counts) : null;
    return { server: label, router: new Router(routes), log: this.log, panics: this.families.panics, maxUdpSize: this.opts.maxUdpSize, memo };
  }

  /** Point listeners at an instance's blocks, opening new addresses; returns listeners no longer used. */
  private async attach(inst: Instance): Promise<DnsListener[]> {
    const wanted = new Set<string>();
    for (const lp of inst.plan.listeners) {
      const key = `${lp.host}|${lp.port}`;
      wanted.add(key);
      const blocks = inst.blocks.filter((b) => lp.blocks.some((x) => x.index === b.index));
      const ctx = this.contextFor(inst, lp.label, blocks);
      const existing = this.dns.get(key);
      if (existing && lp.port !== 0) { existing.ctx = ctx; continue; }
      const l = new DnsListener(lp.host, lp.port, ctx, this.opts.listener);
      await l.listen();
      this.dns.set(key, l);
    }
    const unused: DnsListener[] = [];
    for (const [key, l] of this.dns) if (!wanted.has(key)) { unused.push(l); this.dns.delete(key); }
    return unused;
  }

  /** Replace the running instance with a new plan (reload): new sockets first, old hooks after. */
  async replace(plan: Plan): Promise<Instance> {
    const inst = await this.prepare(plan);
    const dp = this.opts.dataPlane;
    if (dp) {
      try {
        await dp.prepare(inst);
      } catch (e) {
        await dp.abort();
        await this.discard(inst);
        throw e;
      }
      await dp.commit();
    }
    await this.commit(inst);
    return inst;
  }

  /** Switch DNS to a prepared instance, then retire the old one. On failure the old one keeps serving. */
  async commit(inst: Instance): Promise<void> {
    const old = this.current;
    let unused: DnsListener[] = [];
    if (this.role !== 'main') {
      try {
        unused = await this.attach(inst);
      } catch (e) {
        await this.discard(inst);
        if (old) {
          // Listeners the new configuration opened before failing are not the old one's: close them.
          const stray = await this.attach(old).catch(() => [] as DnsListener[]);
          await Promise.all(stray.map((l) => l.close(0)));
        }
        throw e;
      }
    }
    this.current = inst;
    await Promise.all(unused.map((l) => l.close(this.opts.drainMs)));
    if (old) await this.runHooks(old.finalShutdown);
    await this.closeUnusedMuxes();
  }

  /**
   * Re-read the running Corefile and switch to it. One reload at a time; a failure (parse or setup)
   * leaves the running configuration in place and rejects with the reason.
   */
  reload(): Promise<void> {
    const run = async () => {
      const file = this.current?.plan.corefile.file;
      if (!file) throw new Error('nothing to reload: no running configuration from a file');
      const plan = this.plan(loadCorefile(file));
      await this.replace(plan);
    };
    const p = this.reloading.then(run, run);
    this.reloading = p.catch(() => undefined);
    return p;
  }

  /** Lameduck, then close: shutdown hooks (DNS still answering), listeners drained, final hooks, HTTP. */
  async stop(): Promise<void> {
    const inst = this.current;
    if (inst) {
      inst.draining = true;
      await this.runHooks(inst.shutdown);
    }
    // Workers drain while main still answers their calls (kubernetes lookups).
    if (this.opts.dataPlane) await this.opts.dataPlane.stop().catch((e: unknown) => this.log.error(`stopping workers: ${String(e)}`));
    await Promise.all([...this.dns.values()].map((l) => l.close(this.opts.drainMs)));
    this.dns.clear();
    if (inst) await this.runHooks(inst.finalShutdown);
    await Promise.all([...this.muxes.values()].map((m) => m.close()));
    this.muxes.clear();
    this.current = undefined;
  }

  private async runHooks(hooks: Hook[]): Promise<void> {
    for (const h of hooks) {
      try { await h(); } catch (e) { this.log.error(`shutdown hook failed: ${String(e)}`); }
    }
  }

  private async closeUnusedMuxes(): Promise<void> {
    for (const [addr, m] of this.muxes) {
      if (m.routeCount === 0) { await m.close(); this.muxes.delete(addr); }
    }
  }
}

/** Convenience for tests and the CLI: parse text or a file, plan, start. */
export async function startFromText(text: string, opts: RuntimeOptions & { file?: string; env?: Record<string, string | undefined> }): Promise<Runtime> {
  const rt = new Runtime(opts);
  const corefile = parseCorefile(text, { file: opts.file ?? 'Corefile', ...(opts.env ? { env: opts.env } : {}) });
  await rt.start(rt.plan(corefile));
  return rt;
}

export async function startFromFile(path: string, opts: RuntimeOptions): Promise<Runtime> {
  const rt = new Runtime(opts);
  await rt.start(rt.plan(loadCorefile(path)));
  return rt;
}
