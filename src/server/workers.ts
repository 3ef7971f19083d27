// `-workers N`: the main thread is the control plane (Corefile, kubernetes watch and zone, HTTP
// endpoints, signals, reload); N worker threads are the data plane, each with its own plugin chains
// and its own SO_REUSEPORT sockets on every DNS address, so the kernel spreads clients across them.
//
// Plugins with a half in each thread (kubernetes) talk over a PluginLink: main offers a service per
// configuration ("generation") and key, optionally with shared memory; a worker's calls name the
// generation they were set up with, so a worker still finishing queries of the old configuration
// during a reload reaches the old service.
import { Worker } from 'node:worker_threads';
import type { MetricValue } from 'prom-client';
import type { Corefile } from '../corefile/types.ts';
import type { Logger } from '../log.ts';
import type { RemoteMetrics } from '../metrics.ts';
import type { LinkClient, LinkService, PluginLink } from '../plugin.ts';
import type { ListenerOptions } from './listener.ts';
import { Rpc } from './rpc.ts';
import type { DataPlane, Instance } from './runtime.ts';

/** What a worker is started with (workerData). */
export interface WorkerInit {
  index: number;
  defaultPort: number;
  maxUdpSize: number | undefined;
  drainMs: number;
  listener: Partial<ListenerOptions>;
  /** How long a worker waits for main to answer a call (a kubernetes lookup) before SERVFAIL. */
  callTimeoutMs: number;
  /** Reply memo slots per listen address (-memo); undefined: the default. */
  memoEntries: number | undefined;
}

/** Main → worker requests. */
export type ControlRequest =
  | { op: 'start' | 'prepare'; gen: number; corefile: Corefile; shared: Record<string, SharedArrayBuffer | null> }
  | { op: 'commit' | 'abort' | 'stop' | 'metrics' };

/** Worker → main requests. */
export interface CallRequest { op: 'call'; gen: number; key: string; body: unknown }

export interface WorkerMetrics { metrics: RemoteMetrics; heapUsed: number }

/** One configuration's services, in main. */
export class MainLink implements PluginLink {
  readonly gen: number;
  readonly services = new Map<string, LinkService>();
  constructor(gen: number) { this.gen = gen; }
  serve(key: string, service: LinkService): void {
    if (this.services.has(key)) throw new Error(`link key ${key} offered twice`);
    this.services.set(key, service);
  }
  connect(): LinkClient | undefined { return undefined; }
  /** What workers get: each key's shared memory (null when the service has none). */
  sharedMap(): Record<string, SharedArrayBuffer | null> {
    const out: Record<string, SharedArrayBuffer | null> = {};
    for (const [k, s] of this.services) out[k] = s.shared ?? null;
    return out;
  }
}

export interface WorkerPoolOptions {
  count: number;
  log: Logger;
  defaultPort: number;
  maxUdpSize?: number;
  drainMs?: number;
  listener?: Partial<ListenerOptions>;
  callTimeoutMs?: number;
  /** Reply memo slots per listen address in each worker (-memo). */
  memoEntries?: number;
  /** Young generation of each worker's heap, MiB (default 16). */
  youngGenerationMb?: number;
  /** A worker died outside shutdown (a crash, or loop's fatal exit). Default: exit the process. */
  onWorkerExit?: (index: number, code: number) => void;
}

interface Member { index: number; worker: Worker; rpc: Rpc; exited: Promise<number> }

const workerEntry = new URL(import.meta.url.endsWith('.ts') ? './worker-main.ts' : './worker-main.js', import.meta.url);

export class WorkerPool implements DataPlane {
  private readonly opts: WorkerPoolOptions;
  private readonly log: Logger;
  private readonly links = new Map<number, MainLink>();
  private members: Member[] = [];
  private nextGen = 1;
  private servingGen = 0;
  private preparedGen = 0;
  private stopping = false;
  private serving = false;

  constructor(opts: WorkerPoolOptions) {
    this.opts = opts;
    this.log = opts.log.child('workers');
  }

  get size(): number { return this.members.length; }
  /** Thread ids of the workers (tests). */
  get threadIds(): number[] { return this.members.map((m) => m.worker.threadId); }

  /** A link for the next configuration; links of abandoned configurations are dropped. */
  newLink = (): PluginLink => {
    for (const gen of this.links.keys()) if (gen !== this.servingGen) this.links.delete(gen);
    const link = new MainLink(this.nextGen++);
    this.links.set(link.gen, link);
    return link;
  };

  async start(inst: Instance): Promise<void> {
    const link = this.linkOf(inst);
    inst.readiness.set('workers', () => this.serving);
    const n = this.opts.count;
    for (let i = 0; i < n; i++) this.members.push(this.spawn(i));
    try {
      await this.all({ op: 'start', gen: link.gen, corefile: inst.plan.corefile, shared: link.sharedMap() });
    } catch (e) {
      await this.terminateAll();
      throw e;
    }
    this.servingGen = link.gen;
    this.serving = true;
    this.log.info(`${n} workers serving`);
  }

  async prepare(inst: Instance): Promise<void> {
    const link = this.linkOf(inst);
    inst.readiness.set('workers', () => this.serving);
    this.preparedGen = link.gen;
    await this.all({ op: 'prepare', gen: link.gen, corefile: inst.plan.corefile, shared: link.sharedMap() });
  }

  async commit(): Promise<void> {
    const results = await Promise.allSettled(this.members.map((m) => m.rpc.call({ op: 'commit' } satisfies ControlRequest)));
    results.forEach((r, i) => {
      // Set up everywhere but could not take its sockets: that worker keeps the old configuration.
      if (r.status === 'rejected') this.log.error(`worker ${i} could not switch to the new configuration: ${(r.reason as Error).message}`);
    });
    const old = this.servingGen;
    this.servingGen = this.preparedGen;
    this.preparedGen = 0;
    if (results.every((r) => r.status === 'fulfilled')) this.links.delete(old);
  }

  async abort(): Promise<void> {
    await Promise.allSettled(this.members.map((m) => m.rpc.call({ op: 'abort' } satisfies ControlRequest)));
    if (this.preparedGen) this.links.delete(this.preparedGen);
    this.preparedGen = 0;
  }

  /** Drain every worker (each closes its sockets, answering what it holds), then end the threads. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.serving = false;
    const budget = (this.opts.drainMs ?? 5_000) + 5_000;
    await Promise.allSettled(this.members.map((m) => m.rpc.call({ op: 'stop' } satisfies ControlRequest, budget)));
    await this.terminateAll();
    this.links.clear();
  }

  /** Every worker's metrics registry as JSON, plus per-worker figures; a worker that does not answer is left out. */
  async collect(timeoutMs = 2_000): Promise<RemoteMetrics[]> {
    const answers = await Promise.allSettled(this.members.map((m) => m.rpc.call({ op: 'metrics' } satisfies ControlRequest, timeoutMs)));
    const out: RemoteMetrics[] = [];
    const requests: MetricValue<string>[] = [];
    const heap: MetricValue<string>[] = [];
    answers.forEach((a, i) => {
      if (a.status === 'rejected') { this.log.warn(`worker ${i} gave no metrics: ${(a.reason as Error).message}`); return; }
      const wm = a.value as WorkerMetrics;
      out.push(wm.metrics);
      let total = 0;
      for (const v of wm.metrics.find((m) => m.name === 'coredns_dns_requests_total')?.values ?? []) total += v.value;
      requests.push({ labels: { worker: String(i) }, value: total });
      heap.push({ labels: { worker: String(i) }, value: wm.heapUsed });
    });
    out.push([
      { name: 'clusterdns_worker_dns_requests_total', help: 'DNS requests answered by each worker thread (their sum is coredns_dns_requests_total).', type: 'counter', values: requests, aggregator: 'sum' },
      { name: 'clusterdns_worker_heap_used_bytes', help: 'V8 heap in use by each worker thread.', type: 'gauge', values: heap, aggregator: 'sum' },
    ]);
    return out;
  }

  private linkOf(inst: Instance): MainLink {
    // Each worker binds the address itself: port 0 would give each a different port.
    const any = inst.plan.listeners.find((l) => l.port === 0);
    if (any) throw new Error(`${any.label}: workers need a fixed port, not 0`);
    const link = inst.link;
    if (!(link instanceof MainLink) || this.links.get(link.gen) !== link) throw new Error('instance was not set up with this pool\'s link');
    return link;
  }

  /** Send a request to every worker; rejects with the first failure once all have answered. */
  private async all(req: ControlRequest): Promise<void> {
    const results = await Promise.allSettled(this.members.map((m) => m.rpc.call(req)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private spawn(index: number): Member {
    const init: WorkerInit = {
      index,
      defaultPort: this.opts.defaultPort,
      maxUdpSize: this.opts.maxUdpSize,
      drainMs: this.opts.drainMs ?? 5_000,
      listener: this.opts.listener ?? {},
      callTimeoutMs: this.opts.callTimeoutMs ?? 5_000,
      memoEntries: this.opts.memoEntries,
    };
    // V8 grows a busy isolate's young generation up to 128 MiB here; with a thread per core that
    // adds up. Replies die young, so a small one costs little: the scavenges stay cheap.
    const worker = new Worker(workerEntry, {
      workerData: init, name: `clusterdns-worker-${index}`,
      resourceLimits: { maxYoungGenerationSizeMb: this.opts.youngGenerationMb ?? 16 },
    });
    const rpc = new Rpc(worker, (body) => this.serveCall(body as CallRequest));
    const exited = new Promise<number>((resolve) => {
      worker.once('exit', (code) => {
        rpc.close(`worker ${index} exited`);
        resolve(code);
        if (this.stopping) return;
        this.serving = false;
        this.log.error(`worker ${index} exited with code ${code}`);
        (this.opts.onWorkerExit ?? ((_i: number, c: number) => process.exit(c || 1)))(index, code);
      });
    });
    worker.on('error', (e) => this.log.error(`worker ${index}: ${e.stack ?? String(e)}`));
    return { index, worker, rpc, exited };
  }

  private serveCall(req: CallRequest): unknown {
    if (req?.op !== 'call') throw new Error('unknown request');
    const svc = this.links.get(req.gen)?.services.get(req.key);
    if (!svc) throw new Error(`no service ${req.key} in configuration ${req.gen}`);
    return svc.handle(req.body);
  }

  private async terminateAll(): Promise<void> {
    const members = this.members;
    this.members = [];
    const wasStopping = this.stopping;
    this.stopping = true;
    await Promise.all(members.map(async (m) => { await m.worker.terminate(); await m.exited; }));
    this.stopping = wasStopping;
  }
}
